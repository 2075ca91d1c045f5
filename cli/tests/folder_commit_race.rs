//! Two gate processes over one folder store, their commits racing on one branch (the folder
//! version of the bucket race in cli/tests/hf/bucket_upload.py): sent at the same moment with
//! the same `parentCommit`, exactly one wins, the other gets the Hub's 412, and the ref, the
//! revision records and what both gates serve are the winner's.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::{self, copy_dir, http_get, policy_trusting, run, td, testdata};
use crate::support::serve::Server;

/// A commit of `envelope` as `weightgate.att` to `lab/tiny@main` naming `parent`: status, the
/// answer's text.
fn commit(addr: &str, token: &str, envelope: &[u8], parent: &str) -> (u16, String) {
    let content = base64::engine::general_purpose::STANDARD.encode(envelope);
    let body = format!(
        "{{\"key\":\"header\",\"value\":{{\"summary\":\"race\",\"parentCommit\":\"{parent}\"}}}}\n\
         {{\"key\":\"file\",\"value\":{{\"path\":\"weightgate.att\",\"encoding\":\"base64\",\"content\":\"{content}\"}}}}\n"
    );
    let path = "/api/models/lab/tiny/commit/main";
    common::bearer_request(addr, "POST", path, token, body.as_bytes())
}

/// The revision `main` of `lab/tiny` resolves to on the gate at `addr`.
fn head(addr: &str) -> String {
    let (status, body) = http_get(addr, "/api/models/lab/tiny/revision/main", &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    let sha = text.split("\"sha\":\"").nth(1).expect("a sha");
    sha[..40].to_string()
}

/// `head` on both gates once both answer `expected` (each caches a resolution for the current
/// second), or what they answer after 5 s.
fn settled_heads(a: &str, b: &str, expected: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let heads = (head(a), head(b));
        if (heads.0.as_str(), heads.1.as_str()) == (expected, expected) || Instant::now() > deadline
        {
            return heads;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn attest(dir: &Path, out: &Path, issued_at: i64) {
    let r = run([
        "attest",
        dir.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--out",
        out.to_str().unwrap(),
        "--issued-at",
        &issued_at.to_string(),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn two_gates_over_one_folder_racing_commits_on_one_branch_one_wins() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let good = p("good");
    copy_dir(&testdata().join("checkpoints/tiny"), &good);
    common::attest_as_lab(&good);
    const ROUNDS: usize = 4;
    let envelopes: Vec<Vec<u8>> = (0..2 * ROUNDS as i64)
        .map(|i| {
            let out = p(&format!("race-{i}.att"));
            attest(&good, &out, 1_767_225_601 + i);
            fs::read(out).unwrap()
        })
        .collect();
    let store = p("store");
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let token = common::write_token(&store, "lab-ci", &["lab"]);
    let gate = || {
        let mut cmd = common::bin();
        cmd.args(["serve", "--store", store.to_str().unwrap()])
            .args(["--policy", policy.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"]);
        Server::spawn(cmd)
    };
    let (a, b) = (gate(), gate());
    let push = common::bin()
        .args(["push", good.to_str().unwrap(), "--repo", "lab/tiny"])
        .args(["--endpoint", &a.url()])
        .env("HF_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let mut parent = head(&a.addr);

    let mut store_conflicts = 0;
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [a.addr.clone(), b.addr.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, addr)| {
                let (barrier, token, parent) = (barrier.clone(), token.clone(), parent.clone());
                let envelope = envelopes[2 * round + i].clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    commit(&addr, &token, &envelope, &parent)
                })
            })
            .collect();
        let out: Vec<(u16, String)> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let mut codes: Vec<u16> = out.iter().map(|(s, _)| *s).collect();
        codes.sort();
        assert_eq!(codes, [200, 412], "round {round}: {out:#?}");
        let won = out.iter().position(|(s, _)| *s == 200).unwrap();
        let loser = &out[1 - won].1;
        assert!(loser.contains("A commit has happened since"), "{loser}");
        store_conflicts += loser.contains("another commit won") as usize;
        let winner = out[won].1.split("\"commitOid\":\"").nth(1).unwrap()[..40].to_string();
        assert_eq!(
            settled_heads(&a.addr, &b.addr, &winner),
            (winner.clone(), winner.clone()),
            "round {round}"
        );
        // The ref names the winner, and both gates serve the winner's attestation.
        let ref_file = fs::read_to_string(store.join("repos/lab/tiny/refs/main")).unwrap();
        assert_eq!(ref_file.trim(), winner);
        for gate in [&a, &b] {
            let (status, att) = http_get(&gate.addr, "/lab/tiny/resolve/main/weightgate.att", &[]);
            assert_eq!(status, 200);
            assert!(
                att == envelopes[2 * round + won],
                "round {round}: not the winner's"
            );
        }
        parent = winner;
    }
    // One record per published revision: the pushed one and each round's winner; no loser's.
    let records = fs::read_dir(store.join("repos/lab/tiny/revisions"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count();
    assert_eq!(records, 1 + ROUNDS);
    // At least one loser passed its gate's own check and lost at the store's lock.
    eprintln!("store-level conflicts: {store_conflicts} of {ROUNDS}");
    assert!(
        store_conflicts >= 1,
        "no round raced past the gates' own checks"
    );
    eprintln!("folder commit race test: {:?}", started.elapsed());
}
