//! What the tests share: paths to the vectors, policies parsed from text, and `verify` of a
//! checkpoint on disk.

use std::path::{Path, PathBuf};

use weightgate_attest::reading::OpenOptions;
use weightgate_verifier::policy::{Context, Policy};
use weightgate_verifier::reason::ReasonCode;
use weightgate_verifier::stages::{SubjectScope, SubjectSource};
use weightgate_verifier::{Decision, VerifyRequest, verify};

pub fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(p)
}

pub fn read(p: &str) -> Vec<u8> {
    std::fs::read(testdata(p)).unwrap()
}

/// Unix seconds of an RFC 3339 time.
pub fn at(time: &str) -> i64 {
    time.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// A policy from TOML text; key paths are relative to `testdata/policy/` (so `../keys/X.pub`),
/// as for the example policies there.
pub fn policy(text: &str) -> Policy {
    Policy::parse(text, "test policy", &testdata("policy"))
        .unwrap_or_else(|e| panic!("policy does not parse: {e}\n{text}"))
}

/// `[policy]` with `settings`, trusting the test keys named (`test-lab`, ...).
pub fn policy_trusting(keys: &[&str], settings: &str) -> Policy {
    let mut text = format!("[policy]\nname = \"test\"\n{settings}\n");
    for key in keys {
        text.push_str(&format!(
            "[[trusted_key]]\nname = \"{key}\"\npath = \"../keys/{key}.pub\"\n"
        ));
    }
    policy(&text)
}

/// What one `verify` call looks at besides the envelope and the policy.
pub struct Judged {
    pub checkpoint: PathBuf,
    pub now: &'static str,
    pub destination: Option<&'static str>,
    pub grants: Vec<Vec<u8>>,
}

impl Judged {
    /// The tiny checkpoint of testdata, judged on 2026-11-20 with no destination.
    pub fn tiny() -> Self {
        Self::of(testdata("checkpoints/tiny"))
    }

    pub fn of(checkpoint: PathBuf) -> Self {
        Judged {
            checkpoint,
            now: "2026-11-20T00:00:00Z",
            destination: None,
            grants: Vec::new(),
        }
    }

    pub fn verify(&self, envelope: &[u8], policy: &Policy) -> Decision {
        let req = VerifyRequest {
            envelope,
            subject: SubjectSource::OnDisk {
                checkpoint: &self.checkpoint,
                open: OpenOptions::default(),
                full: false,
                threads: 1,
                oms: None,
                scope: SubjectScope::Whole,
            },
            policy,
            context: Context {
                now: at(self.now),
                destination: self.destination.map(str::to_string),
            },
            grants: self.grants.clone(),
            base_envelope: None,
        };
        verify(&req, &|_| {}).expect("the checkpoint root is readable")
    }
}

/// The tiny checkpoint copied into a temp dir (tests change the copy, never testdata/).
pub fn tiny_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tiny");
    copy_dir(&testdata("checkpoints/tiny"), &copy);
    (dir, copy)
}

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

/// The decision's reason codes as their stable strings.
pub fn codes(d: &Decision) -> Vec<&'static str> {
    d.codes().into_iter().map(ReasonCode::as_str).collect()
}

/// What the decision says of regime `id` (`below-threshold`, `reference-ok`, `denied`, ...).
pub fn regime_result(d: &Decision, id: &str) -> String {
    let fact = d
        .facts
        .regimes
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no regime {id} in {:?}", d.facts.regimes));
    // As `--json` names it.
    serde_json::to_value(fact.result)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
