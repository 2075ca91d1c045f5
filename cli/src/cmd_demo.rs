//! `weightgate demo`: the whole story on the bundled tiny checkpoint, in a temporary folder,
//! by running this same binary's commands and showing what they print.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Args;

use crate::Exit;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo folder instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Where `testdata/` is (default: the source checkout this binary was built from).
    #[arg(long)]
    pub testdata: Option<PathBuf>,
}

const POLICY: &str = r#"# The hub's policy for the demo (see docs/policy.md).
[policy]
name = "demo hub"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
# The gate reads each download's destination from the header its CDN sets.
destination_header = "CF-IPCountry"

[[trusted_key]]
name = "demo lab"
path = "keys/lab.pub"

[[issuer]]
name = "demo licensing authority"
authority = "US BIS"
path = "keys/licensing-authority.pub"

# HISTORICAL: the 2025 BIS rule was rescinded (2025-05-13) before its compliance date
# (2025-05-15) and was never enforced. The demo SIMULATES it, with licences countersigned by the
# issuer; no export licence is needed for model weights today.
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
require_grant = true
"#;

struct Demo {
    dir: PathBuf,
    exe: PathBuf,
}

impl Demo {
    fn say(&self, text: &str) {
        println!("\n## {text}");
    }

    /// Runs `weightgate ARGS` in the demo folder, shows it, and insists on the expected exit code.
    fn run(&self, args: &[&str], expect: i32) -> anyhow::Result<String> {
        self.run_env(args, expect, &[])
    }

    /// [`Demo::run`] with environment variables set (not shown: they hold secrets).
    fn run_env(&self, args: &[&str], expect: i32, env: &[(&str, &str)]) -> anyhow::Result<String> {
        self.run_shown(args, expect, env, true)
    }

    /// [`Demo::run`] for a command whose standard output is a secret: only its stderr is shown.
    fn run_secret(&self, args: &[&str], expect: i32) -> anyhow::Result<String> {
        self.run_shown(args, expect, &[], false)
    }

    fn run_shown(
        &self,
        args: &[&str],
        expect: i32,
        env: &[(&str, &str)],
        show_stdout: bool,
    ) -> anyhow::Result<String> {
        println!("$ weightgate {}", args.join(" "));
        let out = Command::new(&self.exe)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("WEIGHTGATE_KEY")
            .current_dir(&self.dir)
            .output()
            .context("running weightgate")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !show_stdout && !stdout.is_empty() {
            println!("  (its output, a secret, is not shown)");
        }
        let shown = if show_stdout { stdout.as_ref() } else { "" };
        for line in shown.lines().chain(stderr.lines()) {
            println!("  {line}");
        }
        let code = out.status.code().unwrap_or(-1);
        if code != expect {
            bail!(
                "demo step `weightgate {}` exited {code}, expected {expect}",
                args.join(" ")
            );
        }
        Ok(stdout.into_owned())
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// The claims text up to its first `[[reference]]`.
fn without_references(claims: &str) -> String {
    claims
        .split("[[reference]]")
        .next()
        .unwrap_or(claims)
        .to_string()
}

pub fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let testdata = args
        .testdata
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"));
    if !testdata.join("checkpoints/tiny").is_dir() {
        bail!(
            "{}: bundled example not found; pass --testdata PATH/testdata",
            testdata.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("weightgate-demo-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.join("keys"))?;
    let demo = Demo {
        dir: dir.clone(),
        exe: std::env::current_exe()?,
    };
    let result = story(&demo, &testdata);
    if args.keep || result.is_err() {
        println!("\n(demo folder kept: {})", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| Exit::Ok)
}

fn story(demo: &Demo, testdata: &Path) -> anyhow::Result<()> {
    let dir = &demo.dir;
    copy_dir(&testdata.join("checkpoints/tiny"), &dir.join("tiny-lm"))?;
    std::fs::write(dir.join("policy.toml"), POLICY)?;
    let below = std::fs::read_to_string(testdata.join("claims/tiny-below.toml"))?;
    let above = std::fs::read_to_string(testdata.join("claims/tiny-above.toml"))?;
    std::fs::write(dir.join("claims-below.toml"), &below)?;
    std::fs::write(
        dir.join("claims-above-no-refs.toml"),
        without_references(&above),
    )?;
    std::fs::write(dir.join("claims-above.toml"), &above)?;
    println!("weightgate demo, in {}", dir.display());

    demo.say("A lab makes its signing key and a licensing authority makes its own. The hub's policy enforces the EU AI Act and California SB 53, and SIMULATES the US BIS AI Diffusion rule of 2025, which is HISTORICAL: rescinded before its compliance date and never enforced (see `weightgate policy presets`).");
    demo.run(&["keygen", "--out", "keys/lab"], 0)?;
    demo.run(&["keygen", "--out", "keys/licensing-authority"], 0)?;
    demo.run(&["keygen", "--out", "keys/lab-oms", "--type", "p256"], 0)?;

    demo.say("The lab inspects a small two-shard checkpoint (headers only) and attests it: trained with 2.1e12 operations, far below every threshold. It also writes model.sig, the OpenSSF model-signing bundle (ECDSA P-256) that `model_signing verify key` accepts, naming the same root digest.");
    demo.run(&["inspect", "tiny-lm"], 0)?;
    demo.run(
        &[
            "attest",
            "tiny-lm",
            "--key",
            "keys/lab.key",
            "--claims",
            "claims-below.toml",
            "--per-tensor",
            "--oms-key",
            "keys/lab-oms.key",
        ],
        0,
    )?;

    demo.say("A hub verifies the upload against its policy, and the model.sig beside it: allowed.");
    demo.run(
        &[
            "verify",
            "tiny-lm",
            "--policy",
            "policy.toml",
            "--oms-key",
            "keys/lab-oms.pub",
            "--quiet",
        ],
        0,
    )?;

    demo.say("Someone flips one byte in the second shard. The hub refuses it and names the file and the tensor.");
    let shard = dir.join("tiny-lm/model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&shard, bytes)?;
    demo.run(
        &["verify", "tiny-lm", "--policy", "policy.toml", "--quiet"],
        1,
    )?;

    demo.say("A frontier-scale model (3e26 operations) attested without any licence or notification: denied by each regime that applies.");
    copy_dir(&testdata.join("checkpoints/tiny"), &dir.join("frontier"))?;
    demo.run(
        &[
            "attest",
            "frontier",
            "--key",
            "keys/lab.key",
            "--claims",
            "claims-above-no-refs.toml",
            "--quiet",
        ],
        0,
    )?;
    demo.run(
        &[
            "verify",
            "frontier",
            "--policy",
            "policy.toml",
            "--destination",
            "DE",
            "--quiet",
        ],
        1,
    )?;

    demo.say("The lab attests it again with its EU notification, its California framework and report, and (for the simulated, historical BIS rule) an export licence for DE, FR and JP, which the licensing authority countersigns.");
    demo.run(
        &[
            "attest",
            "frontier",
            "--key",
            "keys/lab.key",
            "--claims",
            "claims-above.toml",
            "--quiet",
        ],
        0,
    )?;
    demo.run(
        &[
            "grant",
            "frontier/weightgate.att",
            "--reference",
            "D1234567",
            "--key",
            "keys/licensing-authority.key",
            "--out",
            "licence-D1234567.grant",
        ],
        0,
    )?;

    demo.say("Serving it into Germany: allowed (under the simulated BIS rule Germany is a Tier 1 destination, licence exception AIA).");
    demo.run(
        &[
            "verify",
            "frontier",
            "--policy",
            "policy.toml",
            "--grant",
            "licence-D1234567.grant",
            "--destination",
            "DE",
            "--quiet",
        ],
        0,
    )?;

    demo.say("Serving it into Brazil, which the licence does not cover: denied by the simulated, historical BIS rule (today no licence would be needed).");
    demo.run(
        &[
            "verify",
            "frontier",
            "--policy",
            "policy.toml",
            "--grant",
            "licence-D1234567.grant",
            "--destination",
            "BR",
            "--quiet",
        ],
        1,
    )?;

    gate_story(demo, testdata)?;

    println!("\nEvery step ran the real commands; see README.md for what each one does.");
    Ok(())
}

/// The distribution side: a hub admits releases into its store, serves them through the gate
/// on a free loopback port, and refuses what its policy refuses; a downstream user checks what
/// they downloaded.
fn gate_story(demo: &Demo, testdata: &Path) -> anyhow::Result<()> {
    let dir = &demo.dir;
    copy_dir(&testdata.join("checkpoints/tiny"), &dir.join("release"))?;
    copy_dir(&testdata.join("checkpoints/tiny"), &dir.join("unlicensed"))?;
    demo.say("The lab publishes a fresh release; another frontier-scale release comes without any licence or notification.");
    for (folder, claims) in [
        ("release", "claims-below.toml"),
        ("unlicensed", "claims-above-no-refs.toml"),
    ] {
        demo.run(
            &[
                "attest",
                folder,
                "--key",
                "keys/lab.key",
                "--claims",
                claims,
                "--quiet",
            ],
            0,
        )?;
    }
    copy_dir(&dir.join("release"), &dir.join("tampered"))?;
    let shard = dir.join("tampered/model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard)?;
    if let Some(last) = bytes.last_mut() {
        *last ^= 1;
    }
    std::fs::write(&shard, bytes)?;
    demo.say("The hub gives the lab's release job a write token for its organisation (only its hash is stored).");
    let token = demo.run_secret(
        &[
            "token",
            "create",
            "--store",
            "store",
            "--name",
            "lab-release",
            "--write",
            "lab",
        ],
        0,
    )?;
    let token = token.trim().to_string();
    demo.say("The hub's operator admits the licensed frontier release from its own disk, with the licensing authority's grant: served only where the licence and the regimes allow.");
    demo.run(
        &[
            "admit",
            "frontier",
            "--repo",
            "lab/frontier-licensed",
            "--store",
            "store",
            "--policy",
            "policy.toml",
            "--grant",
            "licence-D1234567.grant",
            "--quiet",
        ],
        0,
    )?;
    demo.say("The hub starts the gate on a free loopback port (Hugging Face clients use it with HF_ENDPOINT).");
    println!("$ weightgate serve --store store --policy policy.toml --listen 127.0.0.1:0");
    let mut gate = Gate::start(demo)?;
    let result = (|| -> anyhow::Result<()> {
        println!("  listening on http://{}", gate.addr);
        let endpoint = format!("http://{}", gate.addr);
        demo.say("The lab pushes both releases with `weightgate push` (the Hugging Face LFS upload path, token in HF_TOKEN). The gate judges each commit like `admit`: every byte hashed as it arrives, the attestation checked against exactly the files committed. The allowed release is published.");
        demo.run_env(
            &[
                "push",
                "release",
                "--repo",
                "lab/tiny-lm",
                "--endpoint",
                &endpoint,
            ],
            0,
            &[("HF_TOKEN", token.as_str())],
        )?;
        demo.say("The unlicensed frontier release is refused at the commit: the regimes refuse it for every destination a download could name, so no request could ever be served. The reason codes are in the error; nothing of it is kept.");
        demo.run_env(
            &[
                "push",
                "unlicensed",
                "--repo",
                "lab/frontier-lm",
                "--endpoint",
                &endpoint,
            ],
            1,
            &[("HF_TOKEN", token.as_str())],
        )?;
        demo.say("A tampered copy pushed over the release is refused at the commit with its reason; the branch does not move and nothing of it is kept.");
        demo.run_env(
            &[
                "push",
                "tampered",
                "--repo",
                "lab/tiny-lm",
                "--endpoint",
                &endpoint,
            ],
            1,
            &[("HF_TOKEN", token.as_str())],
        )?;
        demo.say("A user downloads the allowed release, file by file as the Hub client does, with its attestation.");
        let listing = http_get(&gate.addr, "/api/models/lab/tiny-lm/tree/main", &[])?;
        show_status("GET /api/models/lab/tiny-lm/tree/main", &listing);
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&listing.body).context("the gate's tree listing is not JSON")?;
        std::fs::create_dir_all(dir.join("downloaded"))?;
        for e in entries.iter().filter(|e| e["type"] == "file") {
            let Some(path) = e["path"].as_str() else {
                continue;
            };
            let r = http_get(
                &gate.addr,
                &format!("/lab/tiny-lm/resolve/main/{path}"),
                &[],
            )?;
            show_status(&format!("GET /lab/tiny-lm/resolve/main/{path}"), &r);
            if r.status != 200 {
                bail!(
                    "the allowed release was not served: {path} answered {}",
                    r.status
                );
            }
            let dest = dir.join("downloaded").join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(dest, &r.body)?;
        }
        demo.say("The licensed frontier release is served into Germany, and refused into Brazil (which its licence does not cover) with HTTP 451 and the reason, which the Hugging Face client raises as GatedRepoError.");
        for (country, want) in [("DE", 200), ("BR", 451)] {
            let path = "/lab/frontier-licensed/resolve/main/config.json";
            let r = http_get(&gate.addr, path, &[("CF-IPCountry", country)])?;
            show_status(&format!("GET {path} (CF-IPCountry: {country})"), &r);
            if r.status != want {
                bail!(
                    "the licensed release answered {} into {country}, not {want}",
                    r.status
                );
            }
        }
        demo.say("The user checks the provenance of what they downloaded, trusting only the lab's public key.");
        demo.run(
            &["verify", "downloaded", "--trust", "keys/lab.pub", "--quiet"],
            0,
        )?;
        Ok(())
    })();
    gate.stop();
    println!("\n(the gate is stopped)");
    result
}

/// `weightgate serve` as a child process, stopped when dropped.
struct Gate {
    child: std::process::Child,
    addr: String,
}

impl Gate {
    fn start(demo: &Demo) -> anyhow::Result<Gate> {
        use std::io::BufRead;
        let mut child = Command::new(&demo.exe)
            .args([
                "serve",
                "--store",
                "store",
                "--policy",
                "policy.toml",
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(&demo.dir)
            // Its first log line names the address; whatever level the user asked for.
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting the gate")?;
        let stderr = child.stderr.take().context("the gate's stderr")?;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("http://").nth(1) {
                        break rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("the gate stopped before it was listening");
                }
            }
        };
        // Keep reading its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Gate { child, addr })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop();
    }
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// One HTTP/1.1 GET on a fresh connection (the demo needs no client library).
fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).context("connecting to the gate")?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .context("reading the gate's answer")?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the gate's answer has no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("the gate's answer has no status")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Prints a request's status and the headers that matter to a Hugging Face client.
fn show_status(request: &str, r: &HttpResponse) {
    println!("$ {request}");
    println!("  HTTP {} ({} bytes)", r.status, r.body.len());
    for (k, v) in &r.headers {
        if [
            "x-error-code",
            "x-error-message",
            "x-repo-commit",
            "x-linked-etag",
        ]
        .contains(&k.as_str())
        {
            let v: String = v.chars().take(160).collect();
            println!("  {k}: {v}");
        }
    }
}
