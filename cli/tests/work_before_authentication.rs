//! Nothing expensive happens before the signatures are checked: a checkpoint of 32 hard links
//! to one file with a 131,072-tensor header (8 MB on disk) and an envelope signed by an
//! untrusted key is refused without parsing those headers (it used to take `verify` to
//! 859 MiB for the progress bar alone).

use crate::common;

use std::fs;
use std::process::Command;

use common::{copy_dir, testdata};
use weightgate_attest::signing::{Ed25519FileSigner, sign_envelope};
use weightgate_schemas::ATTESTATION_PAYLOAD_TYPE;

/// 32 hard links to one file whose header holds 131,072 one-byte tensors (8 MB on disk).
fn hostile_checkpoint(dir: &std::path::Path) -> std::path::PathBuf {
    let ck = dir.join("ck");
    fs::create_dir(&ck).unwrap();
    let tensors = 131_072usize;
    let mut header = String::from("{");
    for i in 0..tensors {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[{i},{}]}}",
            i + 1
        ));
    }
    header.push('}');
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(vec![0u8; tensors]);
    fs::write(ck.join("s00.safetensors"), &file).unwrap();
    for i in 1..32 {
        fs::hard_link(
            ck.join("s00.safetensors"),
            ck.join(format!("s{i:02}.safetensors")),
        )
        .unwrap();
    }
    ck
}

/// Once signatures hold (or for `inspect`, which checks none), the headers are read, but all
/// files together are capped: the ninth file at the per-file cap is refused.
#[test]
fn tensors_are_capped_over_all_files_together() {
    let dir = tempfile::tempdir().unwrap();
    let ck = hostile_checkpoint(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_weightgate"))
        .args(["inspect", ck.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tensors in the checkpoint's files together"),
        "{stderr}"
    );
}

#[test]
fn a_hostile_checkpoint_with_a_bad_signature_is_refused_before_its_headers_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let ck = hostile_checkpoint(dir.path());
    // Any payload, signed by a key the policy does not trust.
    let key = Ed25519FileSigner::load(&testdata().join("keys/test-other.key")).unwrap();
    let env = sign_envelope(
        ATTESTATION_PAYLOAD_TYPE,
        b"not even a statement".to_vec(),
        &key,
    )
    .unwrap();
    let att = dir.path().join("evil.att");
    fs::write(&att, env.encode()).unwrap();
    let trust = testdata().join("keys/test-lab.pub");
    // The same refusal of a small checkpoint: the binary's own pages, which grow with its code.
    let small = dir.path().join("small");
    copy_dir(&testdata().join("checkpoints/tiny"), &small);
    let peak_kib = |ck: &std::path::Path, json: bool| -> u64 {
        let mut cmd = Command::new("/usr/bin/time");
        // As in hostile_corpus: glibc's arena count depends on thread scheduling, not on us.
        cmd.env("MALLOC_ARENA_MAX", "2")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_weightgate"))
            .args(["verify", ck.to_str().unwrap(), "--attestation"])
            .arg(&att)
            .arg("--trust")
            .arg(&trust);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .output()
            .expect("/usr/bin/time missing: .ci/run installs it");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("signature.untrusted_key"),
            "{stdout}{stderr}"
        );
        stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|n| n.trim().parse().ok())
            .expect("no RSS from /usr/bin/time")
    };
    for json in [false, true] {
        let baseline_kib = peak_kib(&small, json);
        let rss_kib = peak_kib(&ck, json);
        // One header parsed costs ~30 MiB; all 32 cost ~860 MiB.
        assert!(
            rss_kib < baseline_kib + 4 * 1024,
            "verify held {} KiB more for the hostile checkpoint than for a small one ({baseline_kib} KiB) before refusing the signature",
            rss_kib.saturating_sub(baseline_kib)
        );
    }
}
