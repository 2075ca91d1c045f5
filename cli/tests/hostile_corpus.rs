//! The hostile corpus: every `fail_*` input under testdata/ goes through `weightgate verify`
//! and must be denied (never a panic, never exit 2 for a judged input) with the reason code
//! written next to it (`fail_X.code`). Envelope and statement vectors are generated here and
//! held byte-exact (ed25519 is deterministic); `WEIGHTGATE_WRITE_VECTORS=1` rewrites them.
//! Each run is also measured with `/usr/bin/time -v`: no input may make `verify` use more than
//! 64 MiB beyond the bytes it maps.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, run, td, testdata};
use weightgate_attest::signing::{Ed25519FileSigner, sign_envelope};
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Digest, Envelope, Ops, Reference, ReferenceKind, Statement,
};

const ISSUED_AT: &str = "2026-11-01T00:00:00Z";
const NOW: &str = "2026-11-20T00:00:00Z";
const MEMORY_BUDGET_KIB: u64 = 64 * 1024;

/// What `verify` of the small tiny checkpoint keeps resident: the binary's own pages (the
/// debug build's code alone is over 20 MiB, and grows with every feature) and a few hundred
/// KiB of heap. The budget is for what an input makes weightgate hold beyond that.
fn baseline_rss_kib() -> u64 {
    static BASELINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASELINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        attested(dir.path(), "claims/tiny-below.toml");
        let ck = dir.path().join("tiny");
        let m = verify_measured(&[ck.to_str().unwrap(), "--policy", &td("hostile/policy.toml")]);
        m.max_rss_kib
    })
}

/// The budget of one run that maps `mapped_bytes` of files.
fn memory_budget_kib(mapped_bytes: u64) -> u64 {
    baseline_rss_kib() + MEMORY_BUDGET_KIB + mapped_bytes / 1024
}

fn attested(dir: &Path, claims: &str) -> Vec<u8> {
    let ck = dir.join("tiny");
    let _ = fs::remove_dir_all(&ck);
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td(claims),
        "--issued-at",
        ISSUED_AT,
        "--per-tensor",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    fs::read(ck.join("weightgate.att")).unwrap()
}

fn sign(st: &Statement) -> Vec<u8> {
    let key = Ed25519FileSigner::load(&testdata().join("keys/test-lab.key")).unwrap();
    sign_envelope(ATTESTATION_PAYLOAD_TYPE, st.encode(), &key)
        .unwrap()
        .encode()
}

fn sign_raw(payload: Vec<u8>) -> Vec<u8> {
    let key = Ed25519FileSigner::load(&testdata().join("keys/test-lab.key")).unwrap();
    sign_envelope(ATTESTATION_PAYLOAD_TYPE, payload, &key)
        .unwrap()
        .encode()
}

fn ops(s: &str) -> Ops {
    s.parse().unwrap()
}

fn rehash_root(st: &mut Statement) {
    st.subject.root_sha256 = Digest(weightgate_attest::hashing::root_digest(
        st.subject.files.iter().map(|f| &f.sha256.0),
    ));
}

fn at(date: &str) -> i64 {
    date.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Statements that decode, carry a valid signature, and lie: (name, envelope, reason code).
fn statement_lies(below: &[u8], above: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let base = Statement::decode_strict(&Envelope::decode_strict(below).unwrap().payload).unwrap();
    let frontier =
        Statement::decode_strict(&Envelope::decode_strict(above).unwrap().payload).unwrap();
    let mut v = Vec::new();
    let mut lie = |name, code, edit: &dyn Fn(&mut Statement), from: &Statement| {
        let mut st = from.clone();
        edit(&mut st);
        v.push((name, sign(&st), code));
    };
    lie(
        "fail_total_not_sum",
        "compute.total_mismatch",
        &|s| s.compute.total = ops("3e12"),
        &base,
    );
    lie(
        "fail_components_overflow",
        "compute.total_mismatch",
        &|s| {
            s.compute.components.pre_training = Ops(u128::MAX);
            s.compute.components.post_training = Ops(u128::MAX);
        },
        &base,
    );
    lie(
        "fail_parameter_count",
        "subject.parameter_mismatch",
        &|s| s.compute.inputs.params_total = Some(999),
        &base,
    );
    lie(
        "fail_active_exceeds_headers",
        "compute.active_exceeds_total",
        &|s| s.compute.inputs.params_active = Some(1_000_000),
        &base,
    );
    lie(
        "fail_implausibly_low",
        "compute.inconsistent_inputs",
        &|s| s.compute.inputs.tokens = Some(ops("1e15")),
        &base,
    );
    lie(
        "fail_wrong_root",
        "subject.root_mismatch",
        &|s| s.subject.root_sha256 = Digest([0x42; 32]),
        &base,
    );
    lie(
        "fail_files_out_of_order",
        "subject.root_mismatch",
        &|s| {
            s.subject.files.reverse();
            rehash_root(s);
        },
        &base,
    );
    lie(
        "fail_sha256_lie",
        "subject.digest_mismatch",
        &|s| {
            s.subject.files[0].sha256 = Digest([0x11; 32]);
            rehash_root(s);
        },
        &base,
    );
    lie(
        "fail_blake3_lie",
        "subject.digest_mismatch",
        &|s| s.subject.files[1].blake3 = Digest([0x22; 32]),
        &base,
    );
    lie(
        "fail_size_lie",
        "subject.size_mismatch",
        &|s| s.subject.files[1].size += 1,
        &base,
    );
    lie(
        "fail_attests_absent_file",
        "subject.missing_file",
        &|s| {
            let mut ghost = s.subject.files[0].clone();
            ghost.path = "zz-ghost.safetensors".into();
            s.subject.files.push(ghost);
            rehash_root(s);
        },
        &base,
    );
    lie(
        "fail_omits_a_file",
        "subject.extra_file",
        &|s| {
            s.subject.files.remove(0);
            rehash_root(s);
        },
        &base,
    );
    lie(
        "fail_issued_in_future",
        "time.issued_in_future",
        &|s| s.issued_at = at("2027-06-01T00:00:00Z"),
        &base,
    );
    lie(
        "fail_expired",
        "time.expired",
        &|s| s.expires_at = Some(at("2026-11-10T00:00:00Z")),
        &base,
    );
    lie(
        "fail_framework_missing",
        "regime.reference_missing",
        &|s| {
            s.references
                .retain(|r| r.kind != ReferenceKind::SafetyFramework)
        },
        &frontier,
    );
    lie(
        "fail_licence_expired",
        "regime.reference_expired",
        &|s| {
            for r in &mut s.references {
                if r.kind == ReferenceKind::ExportLicence {
                    r.valid_until = Some(at("2026-02-01T00:00:00Z"));
                }
            }
        },
        &frontier,
    );
    lie(
        "fail_licence_other_destination",
        "regime.destination_not_covered",
        &|s| {
            for r in &mut s.references {
                if r.kind == ReferenceKind::ExportLicence {
                    r.destinations = vec!["JP".into()];
                }
            }
        },
        &frontier,
    );
    lie(
        "fail_notification_missing",
        "regime.reference_missing",
        &|s| {
            s.references
                .retain(|r| r.kind != ReferenceKind::Notification)
        },
        &frontier,
    );
    lie(
        "fail_notification_not_yet_valid",
        "regime.reference_not_yet_valid",
        &|s| {
            for r in &mut s.references {
                if r.kind == ReferenceKind::Notification {
                    r.valid_from = at("2027-01-01T00:00:00Z");
                }
            }
        },
        &frontier,
    );
    lie(
        "fail_forged_authority",
        "regime.authority_not_accepted",
        &|s| {
            s.references.push(Reference {
                kind: ReferenceKind::ExportLicence,
                holder: None,
                number: "FORGED-1".into(),
                made_at: None,
                authority: "Ministry of Truth".into(),
                valid_from: at("2026-01-01T00:00:00Z"),
                valid_until: None,
                destinations: vec![],
            });
            s.references.retain(|r| r.authority != "US BIS");
        },
        &frontier,
    );
    v
}

/// Envelopes beyond vectors.rs's: (name, bytes, `inspect` message or "signature", code).
fn envelope_attacks(golden: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let env = Envelope::decode_strict(golden).unwrap();
    let mut v = Vec::new();
    v.push((
        "fail_empty",
        vec![],
        "input ends inside an item",
        "envelope.malformed",
    ));
    v.push((
        "fail_not_a_map",
        vec![0x83, 0x01, 0x02, 0x03],
        "invalid type: sequence, expected map",
        "envelope.malformed",
    ));
    v.push((
        "fail_text_not_cbor",
        b"{\"payload\": \"eyJ9\"}".to_vec(),
        "invalid type: string, expected map",
        "envelope.malformed",
    ));
    let mut no_sigs = env.clone();
    no_sigs.signatures.clear();
    v.push((
        "fail_no_signatures",
        no_sigs.encode(),
        "signature",
        "signature.too_few",
    ));
    let mut short_sig = env.clone();
    short_sig.signatures[0].sig.pop();
    v.push((
        "fail_short_signature",
        short_sig.encode(),
        "signature",
        "signature.invalid",
    ));
    let mut zero_sig = env.clone();
    zero_sig.signatures[0].sig = vec![0; 64];
    v.push((
        "fail_zero_signature",
        zero_sig.encode(),
        "signature",
        "signature.invalid",
    ));
    let other = Ed25519FileSigner::load(&testdata().join("keys/test-other.key")).unwrap();
    v.push((
        "fail_untrusted_signer",
        sign_envelope(ATTESTATION_PAYLOAD_TYPE, env.payload.clone(), &other)
            .unwrap()
            .encode(),
        "signature",
        "signature.untrusted_key",
    ));
    v.push((
        "fail_statement_not_a_map",
        sign_raw(vec![0x01]),
        "payload: malformed CBOR: invalid type: integer `1`, expected map",
        "statement.malformed",
    ));
    v.push((
        "fail_statement_empty",
        sign_raw(vec![]),
        "payload: malformed CBOR: input ends inside an item",
        "statement.malformed",
    ));
    // compute.total as a tag-2 bignum although it fits in a u64: not canonical.
    let st = Statement::decode_strict(&env.payload).unwrap();
    let total = st.compute.total.0 as u64;
    let mut canonical = vec![0x1b];
    canonical.extend_from_slice(&total.to_be_bytes());
    let mut bignum = vec![0xc2, 0x48];
    bignum.extend_from_slice(&total.to_be_bytes());
    let at = env
        .payload
        .windows(canonical.len())
        .position(|w| w == canonical.as_slice());
    if let Some(at) = at {
        let p = [
            &env.payload[..at],
            &bignum[..],
            &env.payload[at + canonical.len()..],
        ]
        .concat();
        v.push((
            "fail_bignum_fits_u64",
            sign_raw(p),
            "payload: not in canonical form",
            "statement.malformed",
        ));
    }
    // A float where an integer belongs (issued_at).
    let mut float = env.payload.clone();
    let key = [&[0x69][..], b"issued_at"].concat();
    let at = float.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    float.splice(
        at..at + 5,
        [0xfb, 0x41, 0xda, 0xb8, 0x5e, 0x00, 0x00, 0x00, 0x00],
    );
    v.push((
        "fail_float_issued_at",
        sign_raw(float),
        "payload: malformed CBOR: invalid type: floating point",
        "statement.malformed",
    ));
    v
}

/// The envelope vectors vectors.rs writes, with the code `verify` must give.
const VECTOR_CODES: &[(&str, &str)] = &[
    ("fail_bad_signature", "signature.invalid"),
    ("fail_payload_altered", "signature.invalid"),
    ("fail_wrong_payload_type", "envelope.wrong_payload_type"),
    ("fail_non_shortest_length", "envelope.malformed"),
    ("fail_indefinite_length", "envelope.malformed"),
    ("fail_duplicate_key", "envelope.malformed"),
    ("fail_reordered_keys", "envelope.malformed"),
    ("fail_trailing_bytes", "envelope.malformed"),
    ("fail_huge_length", "envelope.malformed"),
    ("fail_deep_nesting", "envelope.malformed"),
    ("fail_statement_deep_nesting", "statement.malformed"),
    ("fail_unknown_field", "envelope.malformed"),
    ("fail_unknown_schema_version", "statement.unknown_version"),
    ("fail_statement_trailing_bytes", "statement.malformed"),
];

/// Writes (with WEIGHTGATE_WRITE_VECTORS) or checks each generated file.
fn hold(files: &[(PathBuf, Vec<u8>)]) {
    let write = std::env::var_os("WEIGHTGATE_WRITE_VECTORS").is_some();
    for (path, bytes) in files {
        if write {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        let on_disk = fs::read(path).unwrap_or_else(|_| {
            panic!(
                "missing {}; run with WEIGHTGATE_WRITE_VECTORS=1",
                path.display()
            )
        });
        assert!(
            on_disk == *bytes,
            "{} differs from what the generator now produces",
            path.display()
        );
    }
}

struct Measured {
    code: i32,
    reasons: Vec<String>,
    max_rss_kib: u64,
    stderr: String,
}

/// `weightgate verify ARGS --json` under `/usr/bin/time -v`.
fn verify_measured(args: &[&str]) -> Measured {
    let out = Command::new("/usr/bin/time")
        // One malloc arena per core at most: how many more glibc opens depends on how the
        // hashing threads happen to be scheduled (other tests share the two cores), which moved
        // the peak by about 1 MiB between runs; the budget is about weightgate's own data.
        .env("MALLOC_ARENA_MAX", "2")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_weightgate"))
        .arg("verify")
        .args(args)
        .args(["--json", "--now", NOW, "--destination", "DE", "--full"])
        .output()
        .expect("/usr/bin/time missing: .ci/run installs it (Debian package `time`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("Command terminated by signal"),
        "killed by a signal: {stderr}"
    );
    let max_rss_kib = stderr
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
    let reasons = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| {
            v["reasons"].as_array().map(|a| {
                a.iter()
                    .map(|r| r["code"].as_str().unwrap_or("").to_string())
                    .collect()
            })
        })
        .unwrap_or_default();
    Measured {
        code,
        reasons,
        max_rss_kib,
        stderr,
    }
}

fn size_of(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    size_of(&e.path())
                } else {
                    e.metadata().map(|m| m.len()).unwrap_or(0)
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

/// Denied with `code`, within the memory budget.
fn expect_denied(what: &str, m: &Measured, code: &str, mapped_bytes: u64) {
    assert_eq!(m.code, 1, "{what}: exit {} ({})", m.code, m.stderr);
    assert!(
        m.reasons.iter().any(|r| r == code),
        "{what}: want {code}, got {:?}",
        m.reasons
    );
    let budget = memory_budget_kib(mapped_bytes);
    assert!(
        m.max_rss_kib <= budget,
        "{what}: {} KiB resident, budget {budget} KiB",
        m.max_rss_kib
    );
}

#[test]
fn every_hostile_input_is_denied_with_its_reason_code_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let below = attested(dir.path(), "claims/tiny-below.toml");
    let above = attested(dir.path(), "claims/tiny-above.toml");
    // The checkpoint every envelope is judged against: tiny, attested below the threshold.
    let ck = dir.path().join("tiny");
    fs::write(ck.join("weightgate.att"), &below).unwrap();
    let ck_bytes = size_of(&ck);
    let policy = td("hostile/policy.toml");

    // Generated vectors, held byte-exact.
    let mut files = Vec::new();
    let mut cases: Vec<(PathBuf, String)> = Vec::new();
    for (name, bytes, code) in statement_lies(&below, &above) {
        let p = testdata()
            .join("hostile/statements")
            .join(format!("{name}.att"));
        files.push((p.clone(), bytes));
        files.push((p.with_extension("code"), format!("{code}\n").into_bytes()));
    }
    for (name, bytes, msg, code) in envelope_attacks(&below) {
        let p = testdata().join("envelopes").join(format!("{name}.att"));
        files.push((p.clone(), bytes));
        files.push((
            p.with_extension("expected"),
            format!("{msg}\n").into_bytes(),
        ));
        files.push((p.with_extension("code"), format!("{code}\n").into_bytes()));
    }
    for (name, code) in VECTOR_CODES {
        let p = testdata().join("envelopes").join(format!("{name}.code"));
        files.push((p, format!("{code}\n").into_bytes()));
    }
    hold(&files);

    // Walk every envelope-level vector on disk: each has its code.
    for sub in ["envelopes", "hostile/statements"] {
        for e in fs::read_dir(testdata().join(sub)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if name.starts_with("fail_") && name.ends_with(".att") {
                let code = fs::read_to_string(p.with_extension("code"))
                    .unwrap_or_else(|_| panic!("{name} has no .code file"));
                cases.push((p, code.trim().to_string()));
            }
        }
    }
    let (mut envelopes, mut lies) = (0, 0);
    for (p, code) in &cases {
        let m = verify_measured(&[
            ck.to_str().unwrap(),
            "--attestation",
            p.to_str().unwrap(),
            "--policy",
            &policy,
        ]);
        expect_denied(&p.display().to_string(), &m, code, ck_bytes);
        if p.to_str().unwrap().contains("statements") {
            lies += 1;
        } else {
            envelopes += 1;
        }
    }
    assert!(envelopes >= 25, "only {envelopes} hostile envelopes");
    assert!(lies >= 15, "only {lies} statement lies");

    // Every malformed header, in place of a shard of the attested checkpoint.
    let mut headers = 0;
    for e in fs::read_dir(testdata().join("headers")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            let case = dir.path().join("header-case");
            let _ = fs::remove_dir_all(&case);
            copy_dir(&ck, &case);
            fs::copy(&p, case.join("model-00001-of-00002.safetensors")).unwrap();
            let m = verify_measured(&[case.to_str().unwrap(), "--policy", &policy]);
            expect_denied(
                &p.display().to_string(),
                &m,
                "subject.header_invalid",
                size_of(&case),
            );
            headers += 1;
        }
    }
    assert!(headers >= 40, "only {headers} hostile headers");
    // Every malformed sharded checkpoint.
    for e in fs::read_dir(testdata().join("checkpoints")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("fail_") && p.is_dir() {
            let case = dir.path().join(&name);
            copy_dir(&p, &case);
            fs::write(case.join("weightgate.att"), &below).unwrap();
            let m = verify_measured(&[case.to_str().unwrap(), "--policy", &policy]);
            expect_denied(&name, &m, "subject.header_invalid", size_of(&case));
        }
    }
}

/// Path tricks and resource attacks git cannot carry portably (control characters in names,
/// case-only twins, symlink loops, a million-entry index): built here, judged the same way.
#[test]
fn path_tricks_and_resource_attacks_are_denied_in_bounded_memory() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let below = attested(dir.path(), "claims/tiny-below.toml");
    let ck = dir.path().join("tiny");
    let policy = td("hostile/policy.toml");
    type Build = fn(&Path);
    let cases: Vec<(&str, Build, &[&str], &str)> = vec![
        (
            "case_only_twin",
            |c| {
                fs::copy(c.join("config.json"), c.join("Config.json")).unwrap();
            },
            &[],
            "subject.unsafe_path",
        ),
        (
            "unicode_look_alike",
            |c| {
                // Cyrillic "о" for the Latin "o": not the attested shard.
                fs::rename(c.join("config.json"), c.join("c\u{043e}nfig.json")).unwrap();
            },
            &[],
            "subject.extra_file",
        ),
        (
            "newline_in_name",
            |c| {
                fs::write(c.join("evil\nname.json"), "{}").unwrap();
            },
            &[],
            "subject.unsafe_path",
        ),
        (
            "escape_in_name",
            |c| {
                fs::write(c.join("\u{1b}[2Jclear.json"), "{}").unwrap();
            },
            &[],
            "subject.unsafe_path",
        ),
        (
            "symlink_refused",
            |c| {
                symlink("config.json", c.join("link.json")).unwrap();
            },
            &[],
            "subject.unsafe_path",
        ),
        (
            "symlink_loop",
            |c| {
                symlink("b.json", c.join("a.json")).unwrap();
                symlink("a.json", c.join("b.json")).unwrap();
            },
            &["--allow-symlinks"],
            "subject.unsafe_path",
        ),
        (
            "symlink_outside",
            |c| {
                symlink("/etc/passwd", c.join("passwd")).unwrap();
            },
            &["--allow-symlinks"],
            "subject.unsafe_path",
        ),
        (
            "index_million_entries",
            |c| {
                let mut s = String::from("{\"weight_map\":{");
                for i in 0..1_000_000 {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&format!("\"t{i}\":\"s{i}.safetensors\""));
                }
                s.push_str("}}");
                fs::write(c.join("model.safetensors.index.json"), s).unwrap();
            },
            &[],
            "subject.header_invalid",
        ),
        (
            "index_padded_to_gigabytes",
            |c| {
                // A sparse 2 GiB index: refused by its size before anything is read.
                let f = fs::File::create(c.join("model.safetensors.index.json")).unwrap();
                f.set_len(2 << 30).unwrap();
            },
            &[],
            "subject.header_invalid",
        ),
        (
            "header_with_200k_tensors",
            |c| {
                let mut h = String::from("{");
                for i in 0..200_000u64 {
                    if i > 0 {
                        h.push(',');
                    }
                    h.push_str(&format!(
                        "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[{i},{}]}}",
                        i + 1
                    ));
                }
                h.push('}');
                let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
                bytes.extend_from_slice(h.as_bytes());
                bytes.extend(std::iter::repeat_n(0u8, 200_000));
                fs::write(c.join("model-00001-of-00002.safetensors"), bytes).unwrap();
            },
            &[],
            "subject.header_invalid",
        ),
    ];
    for (name, build, extra, code) in cases {
        let case = dir.path().join(name);
        copy_dir(&ck, &case);
        fs::write(case.join("weightgate.att"), &below).unwrap();
        build(&case);
        let mut args = vec![case.to_str().unwrap(), "--policy", &policy];
        args.extend_from_slice(extra);
        let m = verify_measured(&args);
        // Mapped bytes: only real files; the sparse index is never mapped.
        let mapped = if name == "index_padded_to_gigabytes" {
            0
        } else {
            size_of(&case)
        };
        expect_denied(name, &m, code, mapped);
    }
}

/// Files whose size the attacker picks are read only up to their cap: a sparse 2 GiB
/// attestation or grant, and a policy naming `/dev/zero` as a key, are input errors (exit 2)
/// named in the message, in bounded memory.
#[test]
fn oversized_attestations_grants_and_keys_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let below = attested(dir.path(), "claims/tiny-below.toml");
    let ck = dir.path().join("tiny");
    fs::write(ck.join("weightgate.att"), &below).unwrap();
    let huge = dir.path().join("huge.bin");
    fs::File::create(&huge).unwrap().set_len(2 << 30).unwrap();
    let zero_key_policy = dir.path().join("zero-key.toml");
    fs::write(
        &zero_key_policy,
        "[policy]\nname = \"z\"\n[[trusted_key]]\nname = \"zero\"\npath = \"/dev/zero\"\n",
    )
    .unwrap();
    let policy = td("hostile/policy.toml");
    let ck_s = ck.to_str().unwrap();
    let huge_s = huge.to_str().unwrap();
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "attestation",
            vec![ck_s, "--attestation", huge_s, "--policy", &policy],
            "cannot read the attestation: 2147483648 bytes is over the limit of 17825792 bytes",
        ),
        (
            "grant",
            vec![ck_s, "--grant", huge_s, "--policy", &policy],
            "cannot read the grant: 2147483648 bytes is over the limit of 65536 bytes",
        ),
        (
            "key",
            vec![ck_s, "--policy", zero_key_policy.to_str().unwrap()],
            "/dev/zero: the content is over the limit of 65536 bytes",
        ),
    ];
    for (what, args, message) in cases {
        let m = verify_measured(&args);
        assert_eq!(m.code, 2, "{what}: {}", m.stderr);
        assert!(m.stderr.contains(message), "{what}: {}", m.stderr);
        assert!(
            m.max_rss_kib <= memory_budget_kib(0),
            "{what}: {} KiB resident",
            m.max_rss_kib
        );
    }
}

/// The largest envelopes the format allows, validly signed, stay inside the memory budget: a
/// giant text field is refused as such, and a statement filled to the cap with per-tensor
/// digests (the legitimate way to be large) is judged.
#[test]
fn maximum_size_envelopes_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let below = attested(dir.path(), "claims/tiny-below.toml");
    let ck = dir.path().join("tiny");
    let st = Statement::decode_strict(&Envelope::decode_strict(&below).unwrap().payload).unwrap();
    let max = weightgate_schemas::MAX_STATEMENT_LEN;

    let mut giant_name = st.clone();
    let base = giant_name.encode().len() - giant_name.model.name.len();
    giant_name.model.name = "x".repeat(max - base - 4); // the length header grows by 4 bytes
    let mut many_tensors = st.clone();
    let per = weightgate_schemas::TensorDigest {
        name: "model.layers.00000.mlp.experts.000.down_proj.weight".into(),
        blake3: Digest([7; 32]),
    };
    let name_of = |i: usize| {
        format!(
            "model.layers.{:05}.mlp.experts.{:03}.down_proj.weight",
            i / 1000,
            i % 1000
        )
    };
    let entry = |i: usize| weightgate_schemas::TensorDigest {
        name: name_of(i),
        blake3: per.blake3,
    };
    // Bytes one entry costs, measured on a thousand.
    let empty_len = many_tensors.encode().len();
    let mut probe = many_tensors.clone();
    probe.subject.files[1]
        .tensors
        .get_or_insert_with(Vec::new)
        .extend((0..1000).map(entry));
    let each = (probe.encode().len() - empty_len).div_ceil(1000);
    let room = (max - empty_len) / each - 16;
    many_tensors.subject.files[1]
        .tensors
        .get_or_insert_with(Vec::new)
        .extend((0..room).map(entry));
    for (name, st, want) in [
        ("giant name", giant_name, Some("statement.malformed")),
        ("per-tensor digests to the cap", many_tensors, None),
    ] {
        let payload = st.encode();
        assert!(
            payload.len() <= max && payload.len() > max - (1 << 20),
            "{name}: {}",
            payload.len()
        );
        let att = dir.path().join("max.att");
        fs::write(&att, sign_raw(payload)).unwrap();
        let m = verify_measured(&[
            ck.to_str().unwrap(),
            "--attestation",
            att.to_str().unwrap(),
            "--policy",
            &td("hostile/policy.toml"),
        ]);
        assert!(
            m.code == 0 || m.code == 1,
            "{name}: exit {}: {}",
            m.code,
            m.stderr
        );
        if let Some(code) = want {
            assert!(
                m.reasons.iter().any(|r| r == code),
                "{name}: {:?}",
                m.reasons
            );
        }
        // The attestation is mapped too.
        let mapped = size_of(&ck) + fs::metadata(&att).unwrap().len();
        let budget = memory_budget_kib(mapped);
        assert!(
            m.max_rss_kib <= budget,
            "{name}: {} KiB resident, budget {budget} KiB",
            m.max_rss_kib
        );
        eprintln!("{name}: {} KiB resident", m.max_rss_kib);
    }
}
