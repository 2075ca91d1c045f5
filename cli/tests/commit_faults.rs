//! Faults during uploads and commits to a folder store, with real processes: a gate killed
//! with SIGKILL at points spread over a `weightgate push` leaves the branch as it was or with
//! the new revision complete, and the next gate serves it whole; a full disk (a small tmpfs)
//! during an upload and during a commit answers 507 naming the problem, loses nothing stored,
//! and the gate keeps serving.

use crate::common;
use crate::support::serve::Server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{copy_dir, http_get, policy_trusting, run, run_env, testdata};

fn token(store: &Path) -> String {
    common::write_token(store, "release-job", &["lab"])
}

fn serve(store: &Path, policy: &Path) -> Server {
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
    Server::spawn(cmd)
}

/// Version `n` of a release: the tiny checkpoint plus `weights.bin` (`size` bytes of its own),
/// attested by the test lab.
fn version(dir: &Path, n: u32, size: usize) -> PathBuf {
    let ck = dir.join(format!("v{n}"));
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let bytes: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_add(n).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(ck.join("weights.bin"), bytes).unwrap();
    common::attest_as_lab(&ck);
    ck
}

fn push_cmd(ck: &Path, repo: &str, url: &str, token: &str) -> Command {
    let mut cmd = common::bin();
    cmd.args([
        "push",
        ck.to_str().unwrap(),
        "--repo",
        repo,
        "--endpoint",
        url,
    ])
    .env("HF_TOKEN", token)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Every file of `ck` as `repo@main` serves it, byte for byte.
fn serves_whole(addr: &str, repo: &str, ck: &Path) {
    for e in fs::read_dir(ck).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let (status, body) = http_get(addr, &format!("/{repo}/resolve/main/{name}"), &[]);
        assert_eq!(status, 200, "{repo}: {name}");
        assert!(
            body == fs::read(e.path()).unwrap(),
            "{repo}: {name} differs"
        );
    }
}

/// Which of `versions` `repo@main` is, by its attestation; `None` when the repository has none.
fn served_version(addr: &str, repo: &str, versions: &[(u32, PathBuf)]) -> Option<usize> {
    let (status, att) = http_get(addr, &format!("/{repo}/resolve/main/weightgate.att"), &[]);
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200);
    let found = versions
        .iter()
        .position(|(_, ck)| fs::read(ck.join("weightgate.att")).unwrap() == att);
    Some(found.expect("main serves an attestation of none of the pushed versions"))
}

#[test]
fn a_gate_killed_during_a_push_leaves_the_branch_as_it_was_or_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let token = token(&store);
    let size = 1 << 20;
    let mut versions = vec![(0, version(dir.path(), 0, size))];

    // An undisturbed push, to spread the kill points over its duration.
    let gate = serve(&store, &policy);
    let started = Instant::now();
    let out = push_cmd(&versions[0].1, "lab/model", &gate.url(), &token)
        .output()
        .unwrap();
    let whole = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(gate);

    let mut published = 0;
    let mut outcomes = Vec::new();
    // From early in the upload to after the commit would have answered.
    for (n, fraction) in (1..).zip([0.2, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1]) {
        versions.push((n, version(dir.path(), n, size)));
        let mut gate = serve(&store, &policy);
        let mut push = push_cmd(&versions[n as usize].1, "lab/model", &gate.url(), &token)
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(fraction));
        gate.child.kill().unwrap(); // SIGKILL
        gate.child.wait().unwrap();
        let pushed = push.wait().unwrap().success();
        drop(gate);

        let gate = serve(&store, &policy);
        let now = served_version(&gate.addr, "lab/model", &versions)
            .expect("the branch existed before the push and must still");
        assert!(
            now == published || now == n as usize,
            "main moved to version {now}: neither the one before ({published}) nor the pushed {n}"
        );
        if pushed {
            assert_eq!(now, n as usize, "the push succeeded but main did not move");
        }
        serves_whole(&gate.addr, "lab/model", &versions[now].1);
        outcomes.push((fraction, pushed, now == n as usize));
        published = now;
    }
    eprintln!("kill points (fraction of a push, push succeeded, published): {outcomes:?}");

    // What the killed gates left is collected, and the store takes the next push.
    let r = run([
        "store",
        "gc",
        "--store",
        store.to_str().unwrap(),
        "--grace",
        "0",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let leftovers: Vec<_> = fs::read_dir(store.join("uploads/lab"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let gate = serve(&store, &policy);
    let last = version(dir.path(), 99, size);
    let out = push_cmd(&last, "lab/model", &gate.url(), &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serves_whole(&gate.addr, "lab/model", &last);
}

/// A tmpfs of `mib` MiB mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(parent: &Path, mib: u32) -> SmallDisk {
        let path = parent.join("small-disk");
        fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the full-disk test mounts a tmpfs (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Fills the disk but for `spare` bytes (the filler can be removed to free it again).
    fn fill(&self, spare: u64) {
        let free = {
            let st = nix_free(&self.path);
            st.saturating_sub(spare)
        };
        let filler = self.path.join("filler");
        let _ = fs::write(&filler, vec![0u8; free as usize]);
    }

    fn unfill(&self) {
        fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Free bytes on the filesystem of `path`.
fn nix_free(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_full_disk_during_an_upload_or_a_commit_answers_507_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path(), 8);
    let store = disk.path.join("store");
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let token = token(&store);
    let gate = serve(&store, &policy);
    let push = |ck: &Path, repo: &str| {
        run_env(
            &[("HF_TOKEN", token.as_str())],
            [
                "push",
                ck.to_str().unwrap(),
                "--repo",
                repo,
                "--endpoint",
                &gate.url(),
            ],
        )
    };
    let first = version(dir.path(), 0, 1 << 20);
    let r = push(&first, "lab/first");
    assert_eq!(r.code, 0, "{}", r.stderr);

    // An upload larger than the space left.
    disk.fill(512 << 10);
    let big = version(dir.path(), 1, 1 << 20);
    let r = push(&big, "lab/big");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("507") && r.stderr.contains("the store is full"),
        "{}",
        r.stderr
    );
    // Nothing of it kept, nothing stored lost, still serving.
    let receipts: Vec<_> = fs::read_dir(store.join("uploads/lab"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(receipts.is_empty(), "{receipts:?}");
    serves_whole(&gate.addr, "lab/first", &first);

    // A commit whose bytes the namespace already holds writes only small files: with no byte
    // left, it too answers 507, and the repository does not appear.
    disk.unfill();
    disk.fill(0);
    let r = push(&first, "lab/again");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("507") && r.stderr.contains("the store is full"),
        "{}",
        r.stderr
    );
    let (status, _) = http_get(&gate.addr, "/api/models/lab/again", &[]);
    assert_eq!(status, 404);
    serves_whole(&gate.addr, "lab/first", &first);

    // Space again: both go through, and everything is served whole.
    disk.unfill();
    for (ck, repo) in [(&big, "lab/big"), (&first, "lab/again")] {
        let r = push(ck, repo);
        assert_eq!(r.code, 0, "{repo}: {}", r.stderr);
        serves_whole(&gate.addr, repo, ck);
    }
    serves_whole(&gate.addr, "lab/first", &first);
    drop(gate);
}
