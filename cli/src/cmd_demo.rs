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

[[trusted_key]]
name = "demo lab"
path = "keys/lab.pub"

[[issuer]]
name = "demo licensing authority"
authority = "US BIS"
path = "keys/licensing-authority.pub"

# The 2025 BIS rule is rescinded; the demo simulates it, with licences countersigned by the issuer.
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
        println!("$ weightgate {}", args.join(" "));
        let out = Command::new(&self.exe)
            .args(args)
            .env_remove("WEIGHTGATE_KEY")
            .current_dir(&self.dir)
            .output()
            .context("running weightgate")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stdout.lines().chain(stderr.lines()) {
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

    demo.say("A lab makes its signing key and a licensing authority makes its own.");
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

    demo.say("The lab attests it again with its EU notification, its California framework and report, and an export licence for DE, FR and JP, which the licensing authority countersigns.");
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

    demo.say("Serving it into Germany, a covered destination: allowed.");
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

    demo.say("Serving it into Brazil, which the licence does not cover: denied.");
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

    println!("\nEvery step ran the real commands; see README.md for what each one does.");
    Ok(())
}
