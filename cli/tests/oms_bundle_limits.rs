//! A `model.sig` is bounded before it is parsed and checked for shape while it is parsed:
//! hostile bundles are refused quickly, in little memory (measured with `/usr/bin/time -v`).

use crate::common;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::run;

/// Peak memory allowed for refusing a hostile bundle: the threat model's 64 MiB (measured:
/// 29-36 MiB for the debug binary).
const BUDGET_KIB: u64 = 64 << 10;
/// Time allowed: the debug binary takes 1.5-2.5 s alone (it walks 15 MiB of JSON twice); the
/// bound leaves room for a loaded CI machine and still fails a search that blows up.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// `weightgate verify-oms MODEL --signature SIG --key PUB --json` under `/usr/bin/time -v`:
/// (exit code, stdout, stderr, peak RSS in KiB, wall time).
fn verify_oms_measured(
    model: &Path,
    sig: &Path,
    key: &Path,
) -> (i32, String, String, u64, Duration) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .env("MALLOC_ARENA_MAX", "2")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_weightgate"))
        .args(["verify-oms"])
        .arg(model)
        .arg("--signature")
        .arg(sig)
        .arg("--key")
        .arg(key)
        .arg("--json")
        .output()
        .expect("/usr/bin/time missing: .ci/run installs it (Debian package `time`)");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("no RSS from /usr/bin/time");
    let code = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Exit status: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        rss,
        took,
    )
}

/// Writes `head`, `count` copies of `unit`, then `tail`.
fn write_repeated(path: &Path, head: &str, unit: &str, count: usize, tail: &str) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    f.write_all(head.as_bytes()).unwrap();
    for _ in 0..count {
        f.write_all(unit.as_bytes()).unwrap();
    }
    f.write_all(tail.as_bytes()).unwrap();
    f.flush().unwrap();
}

#[test]
fn hostile_model_sig_bundles_are_refused_quickly_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fs::create_dir(&model).unwrap();
    fs::write(model.join("weights.bin"), b"weights").unwrap();
    let key = dir.path().join("k");
    assert_eq!(
        run(["keygen", "--out", key.to_str().unwrap(), "--type", "p256"]).code,
        0
    );
    let public = dir.path().join("k.pub");
    let media = "application/vnd.dev.sigstore.bundle.v0.3+json";

    // 100 MiB of a JSON array of zeros: over the 16 MiB limit, refused before it is read.
    let huge = dir.path().join("huge.sig");
    write_repeated(&huge, "[", "0,", 50 << 20, "0]");
    let (code, _, stderr, rss, took) = verify_oms_measured(&model, &huge, &public);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("104857603 bytes is over the limit of 16777216 bytes"),
        "{stderr}"
    );
    assert!(rss < BUDGET_KIB && took < TIME_LIMIT, "{rss} KiB, {took:?}");

    // Under the limit, hostile shapes: an unread member holding 7.5 MiB of zeros (skipped
    // unkept), and five million empty log entries (refused at the 17th).
    let cases = [
        (
            "unread.sig",
            format!("{{\"mediaType\":\"{media}\",\"x\":["),
            "0,",
            4 << 20,
            "0]}".to_string(),
            "`verificationMaterial` is missing",
        ),
        (
            "entries.sig",
            format!(
                "{{\"mediaType\":\"{media}\",\"verificationMaterial\":{{\"certificate\":{{\"rawBytes\":\"AQID\"}},\"tlogEntries\":["
            ),
            "{},",
            5 << 20,
            "{}]}}".to_string(),
            "more than 16 elements",
        ),
    ];
    for (name, head, unit, count, tail, needle) in cases {
        let sig = dir.path().join(name);
        write_repeated(&sig, &head, unit, count, &tail);
        assert!(fs::metadata(&sig).unwrap().len() < 16 << 20);
        let (code, stdout, stderr, rss, took) = verify_oms_measured(&model, &sig, &public);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["problems"][0]["code"], "oms.malformed", "{name}: {v}");
        let message = v["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{name}: {message}");
        assert!(
            rss < BUDGET_KIB && took < TIME_LIMIT,
            "{name}: {rss} KiB, {took:?}"
        );
    }
}
