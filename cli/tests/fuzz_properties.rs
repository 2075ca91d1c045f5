//! The fuzz targets' properties (fuzz/src/oracles.rs, included here) under proptest, so plain
//! `cargo test` feeds every hostile-input parser a few hundred mutated inputs: random bytes,
//! and the repository's own vectors with bytes overwritten, inserted, deleted or cut off.
//! Inputs that once broke a target are kept in testdata/fuzz/TARGET/ and replayed here.

#[allow(dead_code)]
#[path = "../../fuzz/src/oracles.rs"]
mod oracles;

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::{Index, select};

fn testdata() -> PathBuf {
    oracles::testdata()
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

/// Every file in `dir` whose name passes `keep`, sorted by name.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file() && keep(p.file_name().unwrap().to_str().unwrap()))
        .map(|p| fs::read(p).unwrap())
        .collect()
}

fn ends(ext: &'static str) -> impl Fn(&str) -> bool {
    move |n: &str| n.ends_with(ext)
}

/// Seed inputs per target, the same run.sh gives libFuzzer.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let td = testdata();
    let mut v = match target {
        "safetensors_header" => {
            let mut v = files(&td.join("headers"), ends(".safetensors"));
            v.extend(files(&td.join("checkpoints/tiny"), ends(".safetensors")));
            v.extend(files(&td.join("checkpoints"), ends(".safetensors")));
            v
        }
        "shard_index" => {
            let mut v = Vec::new();
            for e in fs::read_dir(td.join("checkpoints")).unwrap() {
                let p = e.unwrap().path().join("model.safetensors.index.json");
                if p.is_file() {
                    v.push(fs::read(p).unwrap());
                }
            }
            v
        }
        "envelope" => {
            let mut v = files(&td.join("envelopes"), ends(".att"));
            v.extend(files(&td.join("hostile/statements"), ends(".att")));
            v
        }
        "claims_toml" => files(&td.join("claims"), ends(".toml")),
        "oms_bundle" => oms_seeds(),
        "policy_toml" => {
            let mut v = files(&td.join("policy"), ends(".toml"));
            v.extend(files(&td.join("hostile"), ends(".toml")));
            v
        }
        _ => Vec::new(),
    };
    v.extend(files(&seeds_dir().join(target), |_| true));
    v.extend(files(&td.join("fuzz").join(target), |_| true));
    assert!(!v.is_empty(), "no seeds for {target}");
    v
}

/// A `model.sig` for the tiny checkpoint (fresh P-256 key), the 0.2.0 and 0.3.1 fixtures, and
/// the in-toto statement in each.
fn oms_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let td = testdata();
    let ck = dir.path().join("tiny");
    fs::create_dir(&ck).unwrap();
    for e in fs::read_dir(td.join("checkpoints/tiny")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), ck.join(e.file_name())).unwrap();
    }
    let key = dir.path().join("oms");
    let weightgate = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weightgate"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    weightgate(&[
        "keygen".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
        "--type".as_ref(),
        "p256".as_ref(),
    ]);
    weightgate(&[
        "attest".as_ref(),
        ck.as_os_str(),
        "--key".as_ref(),
        td.join("keys/test-lab.key").as_os_str(),
        "--claims".as_ref(),
        td.join("claims/tiny-below.toml").as_os_str(),
        "--oms-key".as_ref(),
        key.with_extension("key").as_os_str(),
        "--quiet".as_ref(),
    ]);
    let bundle = fs::read(ck.join("model.sig")).unwrap();
    let payload = weightgate_schemas::oms::decode_bundle(&bundle)
        .unwrap()
        .payload;
    let mut seeds = vec![bundle, payload];
    // Genuine model_signing 0.2.0 (the deprecated predicate) and 0.3.1 bundles and their
    // statements.
    let older = ["oms-v0.2", "oms-v0.3.1"].map(|d| files(&td.join(d), ends(".sig")));
    for b in older.into_iter().flatten() {
        let payload = weightgate_schemas::oms::decode_bundle(&b).unwrap().payload;
        seeds.extend([b, payload]);
    }
    seeds
}

#[derive(Debug, Clone)]
enum Edit {
    Overwrite(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match e {
            Edit::Overwrite(i, b) if len > 0 => bytes[i.index(len)] = *b,
            Edit::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
            Edit::Delete(i) if len > 0 => {
                bytes.remove(i.index(len));
            }
            Edit::Truncate(i) => bytes.truncate(i.index(len + 1)),
            _ => {}
        }
    }
    bytes
}

/// Bytes that matter to the formats: JSON/TOML structure, CBOR heads of each major type.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        select(b"{}[]\",:=.-+e0129 \n\\#'".to_vec()),
        select(vec![
            0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x58, 0x5b, 0x5f, 0x60, 0x78, 0x7f,
            0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xf6, 0xf7, 0xfb, 0xff
        ]),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        3 => (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// A seed with up to 8 edits, or up to 512 random bytes.
fn input(target: &str) -> impl Strategy<Value = Vec<u8>> + use<> {
    let seeds = seeds(target);
    prop_oneof![
        4 => (select(seeds), prop::collection::vec(edit(), 0..8))
            .prop_map(|(seed, edits)| apply(seed, &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn safetensors_header(data in input("safetensors_header")) {
        oracles::safetensors_header(&data);
    }

    #[test]
    fn shard_index(data in input("shard_index")) {
        oracles::shard_index(&data);
    }

    #[test]
    fn envelope(data in input("envelope")) {
        oracles::envelope(&data);
    }

    #[test]
    fn statement(data in input("statement")) {
        oracles::statement(&data);
    }

    #[test]
    fn claims_toml(data in input("claims_toml")) {
        oracles::claims_toml(&data);
    }

    #[test]
    fn policy_toml(data in input("policy_toml")) {
        oracles::policy_toml(&data);
    }

    #[test]
    fn oms_bundle(data in input("oms_bundle")) {
        oracles::oms_bundle(&data);
    }
}

// The server properties share one store; fewer cases, each is a request through the router.
#[test]
fn server_path_and_range() {
    let server = oracles::Server::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    runner
        .run(&input("server_path"), |data| {
            oracles::server_path(&server, &data);
            Ok(())
        })
        .unwrap();
    runner
        .run(&input("server_range"), |data| {
            oracles::server_range(&server, &data);
            Ok(())
        })
        .unwrap();
    runner
        .run(&input("server_destination"), |data| {
            oracles::server_destination(&server, &data);
            Ok(())
        })
        .unwrap();
}

/// Every input kept in testdata/fuzz/ (found by fuzzing) and every seed passes its target.
#[test]
fn regression_cases_and_seeds_pass() {
    let server = oracles::Server::new();
    type Check<'a> = &'a dyn Fn(&[u8]);
    let targets: [(&str, Check); 10] = [
        ("safetensors_header", &oracles::safetensors_header),
        ("shard_index", &oracles::shard_index),
        ("envelope", &oracles::envelope),
        ("statement", &oracles::statement),
        ("claims_toml", &oracles::claims_toml),
        ("policy_toml", &oracles::policy_toml),
        ("oms_bundle", &oracles::oms_bundle),
        ("server_path", &|d| oracles::server_path(&server, d)),
        ("server_range", &|d| oracles::server_range(&server, d)),
        ("server_destination", &|d| {
            oracles::server_destination(&server, d)
        }),
    ];
    for (name, check) in targets {
        for data in seeds(name) {
            check(&data);
        }
    }
}

/// The statement target's seeds are the payloads of the envelope vectors (the signed statements
/// and the malformed ones), held byte-exact; `WEIGHTGATE_WRITE_VECTORS=1` rewrites them.
#[test]
fn statement_seeds_are_the_envelope_vectors_payloads() {
    let dir = seeds_dir().join("statement");
    let write = std::env::var_os("WEIGHTGATE_WRITE_VECTORS").is_some();
    let mut count = 0;
    for sub in ["envelopes", "hostile/statements"] {
        let mut paths: Vec<PathBuf> = fs::read_dir(testdata().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "att"))
            .collect();
        paths.sort();
        for p in paths {
            let Ok(env) = weightgate_schemas::Envelope::decode_strict(&fs::read(&p).unwrap())
            else {
                continue;
            };
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let seed = dir.join(format!("{name}.cbor"));
            if write {
                fs::create_dir_all(&dir).unwrap();
                fs::write(&seed, &env.payload).unwrap();
            }
            let held = fs::read(&seed).unwrap_or_else(|_| {
                panic!(
                    "missing {}; run with WEIGHTGATE_WRITE_VECTORS=1",
                    seed.display()
                )
            });
            assert!(held == env.payload, "{} is stale", seed.display());
            count += 1;
        }
    }
    assert!(count >= 20, "only {count} statement seeds");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A signed-statement shape with one file listed twice, spelt the same, in another case
    /// or in another Unicode normalization, is refused when decoded.
    #[test]
    fn statements_listing_one_file_twice_are_refused(
        which in any::<Index>(),
        spelling in 0u8..4,
        before in any::<bool>(),
    ) {
        let env = weightgate_schemas::Envelope::decode_strict(
            &fs::read(testdata().join("envelopes/golden_tiny.att")).unwrap(),
        )
        .unwrap();
        let mut st = weightgate_schemas::Statement::decode_strict(&env.payload).unwrap();
        let i = which.index(st.subject.files.len());
        if spelling >= 2 {
            // A name with an accent, precomposed in one entry and decomposed in the other.
            st.subject.files[i].path = format!("caf\u{e9}-{}", st.subject.files[i].path);
        }
        let mut twin = st.subject.files[i].clone();
        twin.path = match spelling {
            0 => twin.path,
            1 => twin.path.to_uppercase(),
            2 => twin.path.replace('\u{e9}', "e\u{301}"),
            _ => twin.path.replace('\u{e9}', "E\u{301}"),
        };
        st.subject.files.insert(if before { i } else { i + 1 }, twin);
        let err = weightgate_schemas::Statement::decode_strict(&st.encode()).unwrap_err();
        prop_assert!(err.to_string().contains("name the same file"), "{err}");
    }
}
