//! Helpers for tests that drive the real `weightgate` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightgate"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_env(&[], args)
}

/// `run` with environment variables set for the child.
pub fn run_env<I, S>(env: &[(&str, &str)], args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = bin()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run weightgate");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "panic: {}", r.stderr);
    r
}

/// Copies a folder tree (tests mutate copies, never `testdata/`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A path under `testdata/`, as a string argument.
pub fn td(p: &str) -> String {
    testdata().join(p).to_str().unwrap().to_string()
}

/// The Python of the pinned venv `.ci/run` installs (`WEIGHTGATE_PYTHON` overrides it).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIGHTGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run .ci/run, which installs the pinned huggingface_hub and model-signing there (this test is never skipped)",
        p.display()
    );
    p
}

/// Attests the checkpoint at `checkpoint` (writing `weightgate.att` into it) with the test lab's
/// key and the tiny model's below-threshold claims, as most tests start.
pub fn attest_as_lab(checkpoint: &Path) {
    let r = run([
        "attest",
        checkpoint.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "attest: {}", r.stderr);
}

/// The tiny checkpoint, copied into a fresh temp dir and attested by [`attest_as_lab`].
pub struct AttestedTiny {
    pub dir: tempfile::TempDir,
    /// `dir/tiny`.
    pub model: PathBuf,
}

impl AttestedTiny {
    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn attested_tiny() -> AttestedTiny {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &model);
    attest_as_lab(&model);
    AttestedTiny { dir, model }
}

/// Writes `dir/policy.toml`: a policy with `settings` (lines of its `[policy]` table, then any
/// further tables) that trusts the keys of `testdata/keys/` named in `keys` (e.g. `test-lab`,
/// trusted under the name `lab`).
pub fn policy_trusting(dir: &Path, keys: &[&str], settings: &str) -> PathBuf {
    let mut text = format!("[policy]\nname = \"test\"\n{settings}\n");
    for key in keys {
        let name = key.strip_prefix("test-").unwrap_or(key);
        let path = td(&format!("keys/{key}.pub"));
        text.push_str(&format!(
            "[[trusted_key]]\nname = \"{name}\"\npath = \"{path}\"\n"
        ));
    }
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, text).unwrap();
    policy
}

/// The 40-hex revision id `admit` printed ("... (revision ID, ...").
pub fn revision_of(stdout: &str) -> String {
    stdout
        .split("(revision ")
        .nth(1)
        .and_then(|s| s.get(..40))
        .unwrap_or_else(|| panic!("no revision in {stdout}"))
        .to_string()
}

/// Status and body of one GET to `addr` with `headers`, on its own connection.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => buf[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

/// A write token named `name` for `orgs`, created in `store` by `weightgate token create`.
pub fn write_token(store: &Path, name: &str, orgs: &[&str]) -> String {
    let mut args = vec![
        "token",
        "create",
        "--store",
        store.to_str().unwrap(),
        "--name",
        name,
    ];
    for org in orgs {
        args.extend(["--write", org]);
    }
    let r = run(args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

/// One request on its own connection (`Connection: close`), with a bearer token unless
/// `token` is empty: the status and the whole answer as text (0 if none came).
pub fn bearer_request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let auth = match token {
        "" => String::new(),
        t => format!("Authorization: Bearer {t}\r\n"),
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A valid safetensors file image: BF16 tensors of the given shapes, bytes counting up from 0.
pub fn bf16_safetensors(tensors: &[(&str, &[u64])]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let n: u64 = shape.iter().product::<u64>() * 2;
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"BF16\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + n
        ));
        offset += n;
    }
    let mut header = format!(
        "{{\"__metadata__\":{{\"format\":\"pt\"}},{}}}",
        entries.join(",")
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend((0..offset).map(|i| i as u8));
    out
}
