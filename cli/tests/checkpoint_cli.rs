//! `inspect` and `hash` through the real binary, on good and hostile checkpoints.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;

use common::{copy_dir, run, run_env, testdata};
use sha2::{Digest, Sha256};

fn expected(path: &std::path::Path) -> String {
    let e = path.with_extension("expected");
    fs::read_to_string(&e)
        .unwrap_or_else(|_| panic!("{} has no .expected file", path.display()))
        .trim_end()
        .to_string()
}

/// Every `fail_*` vector is refused by both `inspect` and `hash` with exit 2 and a message naming
/// the file and the problem.
#[test]
fn every_fail_vector_is_refused_with_its_message() {
    let mut cases = Vec::new();
    for dir in ["headers", "checkpoints"] {
        for e in fs::read_dir(testdata().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if name.starts_with("fail_") && !name.ends_with(".expected") {
                cases.push(p);
            }
        }
    }
    assert!(cases.len() >= 20, "only {} fail vectors", cases.len());
    for case in cases {
        let want = expected(&case);
        let file_named = if case.is_dir() {
            "model.safetensors.index.json".to_string()
        } else {
            case.file_name().unwrap().to_str().unwrap().to_string()
        };
        for cmd in ["inspect", "hash"] {
            let r = run([cmd, case.to_str().unwrap()]);
            assert_eq!(r.code, 2, "{cmd} {}: {}", case.display(), r.stderr);
            assert!(
                r.stderr.contains(&want),
                "{cmd} {}: got {:?}, want {want:?}",
                case.display(),
                r.stderr
            );
            assert!(
                r.stderr.contains(&file_named),
                "{}: {:?} does not name the file",
                case.display(),
                r.stderr
            );
            assert!(
                r.stdout.is_empty(),
                "{cmd} printed output for a bad checkpoint"
            );
        }
    }
}

#[test]
fn inspect_reports_files_tensors_parameters_and_metadata() {
    let tiny = testdata().join("checkpoints/tiny");
    let r = run(["inspect", "--json", tiny.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"
        ]
    );
    assert_eq!(v["parameters"]["tensors"], 4);
    // 16*8 + 8*8 + 8*16 + 8*4
    assert_eq!(v["parameters"]["total"], 352);
    assert_eq!(v["parameters"]["by_dtype"]["BF16"], 192);
    assert_eq!(v["parameters"]["by_dtype"]["F32"], 160);
    assert_eq!(v["files"][1]["kind"], "safetensors");
    assert_eq!(v["files"][3]["kind"], "safetensors-index");
    assert_eq!(v["files"][1]["header"]["metadata"]["format"], "pt");

    let r = run(["inspect", tiny.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("parameters: 352"), "{}", r.stdout);
    assert!(r.stdout.contains("agrees with the shard headers"));
}

fn file_sha256(p: &std::path::Path) -> [u8; 32] {
    Sha256::digest(fs::read(p).unwrap()).into()
}

/// Both ways of reading files for hashing (through the mapping, or streamed past the page
/// cache with O_DIRECT) give the same digests.
#[test]
fn hash_matches_independent_digests_and_the_openssf_root() {
    for read in ["mapped", "streamed"] {
        hash_matches_independent_digests_reading(read);
    }
}

fn hash_matches_independent_digests_reading(read: &str) {
    let env = [("WEIGHTGATE_HASH_READ", read)];
    let tiny = testdata().join("checkpoints/tiny");
    let r = run_env(
        &env,
        ["hash", "--json", "--per-tensor", tiny.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut root = Sha256::new();
    for f in v["files"].as_array().unwrap() {
        let path = tiny.join(f["path"].as_str().unwrap());
        let bytes = fs::read(&path).unwrap();
        let sha = file_sha256(&path);
        assert_eq!(f["sha256"], hex::encode(sha));
        assert_eq!(f["blake3"], blake3::hash(&bytes).to_hex().as_str());
        assert_eq!(f["size"], bytes.len());
        root.update(sha);
        if let Some(tensors) = f["tensors"].as_array() {
            // Tensor digests cover exactly each tensor's bytes.
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            for t in tensors {
                let off = &header[t["name"].as_str().unwrap()]["data_offsets"];
                let (s, e) = (
                    off[0].as_u64().unwrap() as usize,
                    off[1].as_u64().unwrap() as usize,
                );
                assert_eq!(
                    t["blake3"],
                    blake3::hash(&bytes[8 + n + s..8 + n + e]).to_hex().as_str()
                );
            }
        }
    }
    assert_eq!(v["root_sha256"], hex::encode(root.finalize()));

    let b3 = run_env(
        &env,
        ["hash", "--json", "--blake3-only", tiny.to_str().unwrap()],
    );
    let b3: serde_json::Value = serde_json::from_str(&b3.stdout).unwrap();
    assert!(b3.get("root_sha256").is_none());
    for (a, b) in b3["files"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["files"].as_array().unwrap())
    {
        assert_eq!(a["blake3"], b["blake3"]);
        assert!(a.get("sha256").is_none());
    }
}

#[test]
fn checksum_formats_pass_the_coreutils_checker() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = testdata().join("checkpoints/tiny");
    let r = run(["hash", "--format", "sha256sum", tiny.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sums = dir.path().join("sums");
    fs::write(&sums, &r.stdout).unwrap();
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(&sums)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout)
            .matches(": OK")
            .count(),
        4
    );

    // b3sum lines: `<hex>  <path>`, the same layout; checked against the blake3 crate here
    // (b3sum itself is exercised by bench/hash.sh).
    let r = run(["hash", "--format", "b3sum", tiny.to_str().unwrap()]);
    for line in r.stdout.lines() {
        let (hex, path) = line.split_once("  ").unwrap();
        assert_eq!(
            hex,
            blake3::hash(&fs::read(path).unwrap()).to_hex().as_str()
        );
    }
    let r = run([
        "hash",
        "--format",
        "sha256sum",
        "--blake3-only",
        tiny.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
}

#[test]
fn single_file_checkpoint_hashes_like_a_folder_of_one() {
    let single = testdata().join("checkpoints/single.safetensors");
    let r = run(["hash", "--json", single.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["files"][0]["path"], "single.safetensors");
    let sha = file_sha256(&single);
    assert_eq!(v["root_sha256"], hex::encode(Sha256::digest(sha)));
}

#[test]
fn symlinks_are_refused_unless_allowed_and_never_escape() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    fs::write(dir.path().join("secret.txt"), b"outside").unwrap();

    // A link inside the root: refused by default, accepted with --allow-symlinks.
    symlink("config.json", ck.join("config-link.json")).unwrap();
    let r = run(["hash", ck.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("config-link.json: symbolic link refused"),
        "{}",
        r.stderr
    );
    let r = run(["hash", "--allow-symlinks", ck.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("config-link.json"));

    // A link escaping the root: refused even when links are allowed.
    symlink("../secret.txt", ck.join("escape.txt")).unwrap();
    let r = run(["hash", "--allow-symlinks", ck.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("escape.txt: symbolic link refused (target"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("is outside"), "{}", r.stderr);
    fs::remove_file(ck.join("escape.txt")).unwrap();

    // A loop.
    symlink("loop-b", ck.join("loop-a")).unwrap();
    symlink("loop-a", ck.join("loop-b")).unwrap();
    let r = run(["hash", "--allow-symlinks", ck.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("link loop"), "{}", r.stderr);
}

#[test]
fn hugging_face_cache_snapshot_links_into_blobs_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models--org--tiny");
    let snap = repo.join("snapshots/0123456789abcdef0123456789abcdef01234567");
    fs::create_dir_all(&snap).unwrap();
    fs::create_dir_all(repo.join("blobs")).unwrap();
    let src = testdata().join("checkpoints/tiny");
    for e in fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let blob = hex::encode(file_sha256(&e.path()));
        fs::copy(e.path(), repo.join("blobs").join(&blob)).unwrap();
        symlink(format!("../../blobs/{blob}"), snap.join(e.file_name())).unwrap();
    }
    let direct = run(["hash", "--json", src.to_str().unwrap()]);
    let cached = run(["hash", "--json", "--allow-symlinks", snap.to_str().unwrap()]);
    assert_eq!(cached.code, 0, "{}", cached.stderr);
    assert_eq!(direct.stdout, cached.stdout);
    // Outside the repo's cache folder is still refused.
    fs::write(dir.path().join("other"), b"x").unwrap();
    symlink("../../../other", snap.join("other.txt")).unwrap();
    let r = run(["hash", "--allow-symlinks", snap.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("other.txt: symbolic link refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn unsafe_names_and_special_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    fs::write(ck.join("bad\nname.txt"), b"x").unwrap();
    let r = run(["hash", ck.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unsafe path: control character U+000A"),
        "{}",
        r.stderr
    );
    fs::remove_file(ck.join("bad\nname.txt")).unwrap();

    let fifo = ck.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let r = run(["hash", ck.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("pipe: not a regular file"),
        "{}",
        r.stderr
    );
}

#[test]
fn git_metadata_and_attestation_files_are_not_part_of_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let before = run(["hash", "--json", ck.to_str().unwrap()]).stdout;
    fs::create_dir(ck.join(".git")).unwrap();
    fs::write(ck.join(".git/HEAD"), b"ref").unwrap();
    fs::write(ck.join(".gitattributes"), b"*.safetensors filter=lfs").unwrap();
    fs::write(ck.join("weightgate.att"), b"x").unwrap();
    assert_eq!(run(["hash", "--json", ck.to_str().unwrap()]).stdout, before);
    fs::write(ck.join("notes.txt"), b"x").unwrap();
    assert_ne!(run(["hash", "--json", ck.to_str().unwrap()]).stdout, before);
    assert_eq!(
        run([
            "hash",
            "--json",
            "--ignore",
            "notes.txt",
            ck.to_str().unwrap()
        ])
        .stdout,
        before
    );
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let secret = ck.join("config.json");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Root reads any file, so drop to `nobody` when running as root.
    let mut cmd = if unsafe_geteuid_is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_weightgate"),
        ]);
        c
    } else {
        common::bin()
    };
    let out = cmd.args(["hash", ck.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config.json: Permission denied"),
        "{stderr}"
    );
}

fn unsafe_geteuid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// Through the mapping (SIGBUS caught) and streamed (a short read), a file truncated while it
/// is hashed is the "file changed" error, never a crash or a digest.
#[test]
fn a_file_truncated_while_it_is_hashed_is_an_error_not_sigbus() {
    for read in ["mapped", "streamed"] {
        a_file_truncated_while_it_is_hashed_is_an_error_reading(read);
    }
}

fn a_file_truncated_while_it_is_hashed_is_an_error_reading(read: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    let big = ck.join("big.bin");
    let mut hits = 0;
    for attempt in 0..40u64 {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(256 << 20).unwrap();
        drop(f);
        let child = common::bin()
            .env("WEIGHTGATE_HASH_READ", read)
            .args(["hash", ck.to_str().unwrap(), "--quiet"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + attempt * 7 % 60));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{read}: killed by a signal: {:?}\n{stderr}", out.status));
        match code {
            0 => continue, // finished before the truncation
            2 => {
                assert!(
                    stderr.contains("big.bin: file changed while it was being hashed"),
                    "{read}: {stderr}"
                );
                hits += 1;
                break;
            }
            other => panic!("{read}: exit {other}: {stderr}"),
        }
    }
    assert!(hits > 0, "{read}: never truncated in time");
}

#[test]
fn an_unknown_read_path_is_refused_by_name() {
    let tiny = testdata().join("checkpoints/tiny");
    let r = run_env(
        &[("WEIGHTGATE_HASH_READ", "fast")],
        ["hash", tiny.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("invalid value 'fast' for '--hash-read <HOW>'")
            && r.stderr.contains("must be auto, mapped or streamed"),
        "{}",
        r.stderr
    );
}
