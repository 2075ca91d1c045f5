//! Tenants sharing one store: nothing one tenant admits changes another tenant's decision or
//! bytes. Through the real binary (`admit`, `cosign`, `serve`) and HTTP.

use crate::common;
use crate::support::serve;

use std::fs;
use std::path::{Path, PathBuf};

use common::{attest_as_lab, copy_dir, run, td, testdata};
use serve::Server;

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

/// Status and body of a GET with a destination header.
fn get(addr: &str, path: &str, country: &str) -> (u16, Vec<u8>) {
    common::http_get(addr, path, &[("CF-IPCountry", country)])
}

const POLICY: &str = r#"
[policy]
name = "tenants"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
destination_header = "CF-IPCountry"
[[trusted_key]]
name = "lab"
path = "KEYS/test-lab.pub"
[[trusted_key]]
name = "other lab"
path = "KEYS/test-other.pub"
[[issuer]]
name = "issuer"
authority = "US BIS"
path = "KEYS/test-issuer.pub"
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
require_grant = true
"#;

struct Tenants {
    dir: tempfile::TempDir,
}

impl Tenants {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn admit(&self, ck: &str, repo: &str, extra: &[&str]) -> common::Run {
        let store = self.path("store");
        let policy = self.path("policy.toml");
        let mut args = vec![
            "admit",
            ck,
            "--repo",
            repo,
            "--store",
            store.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ];
        args.extend(extra);
        run(args)
    }
}

fn setup() -> Tenants {
    let t = Tenants {
        dir: tempfile::tempdir().unwrap(),
    };
    let keys = testdata().join("keys");
    fs::write(
        t.path("policy.toml"),
        POLICY.replace("KEYS", keys.to_str().unwrap()),
    )
    .unwrap();
    let ck = t.path("licensed");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    // The export licence for Brazil: not a licence-exception destination, so only the
    // issuer's grant makes it count.
    let claims = fs::read_to_string(testdata().join("claims/tiny-above.toml"))
        .unwrap()
        .replace(
            r#"destinations = ["DE", "FR", "JP"]"#,
            r#"destinations = ["BR"]"#,
        );
    assert!(claims.contains(r#"destinations = ["BR"]"#));
    fs::write(t.path("licensed.toml"), claims).unwrap();
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        t.path("licensed.toml").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    t
}

#[test]
fn one_attestation_admitted_with_and_without_a_grant_is_judged_per_repo() {
    let t = setup();
    let ck = t.path("licensed");
    let grant = t.path("licence.grant");
    let r = run([
        "grant",
        ck.join("weightgate.att").to_str().unwrap(),
        "--reference",
        "D1234567",
        "--key",
        &td("keys/test-issuer.key"),
        "--out",
        grant.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ck = ck.to_str().unwrap();
    let r = t.admit(ck, "lab/granted", &["--grant", grant.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = t.admit(ck, "other/ungranted", &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let server = serve(&t.path("store"), &t.path("policy.toml"));
    let want = fs::read(t.path("licensed/config.json")).unwrap();
    // Alternating, many times within one second: each repo keeps its own decision.
    for _ in 0..20 {
        let (s, body) = get(&server.addr, "/lab/granted/resolve/main/config.json", "BR");
        assert_eq!((s, &body), (200, &want));
        let (s, body) = get(
            &server.addr,
            "/other/ungranted/resolve/main/config.json",
            "BR",
        );
        assert_eq!(s, 451);
        assert!(String::from_utf8_lossy(&body).contains("regime.grant_missing"));
        assert!(
            !body.windows(want.len()).any(|w| w == want),
            "refused bytes served"
        );
    }
}

#[test]
fn a_cosigned_copy_cannot_change_the_victims_decision_and_altered_blobs_are_not_reblessed() {
    let t = setup();
    // A below-threshold model: allowed for everyone.
    let victim = t.path("victim");
    copy_dir(&testdata().join("checkpoints/tiny"), &victim);
    attest_as_lab(&victim);
    let r = t.admit(victim.to_str().unwrap(), "lab/victim", &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Another lab copies the public release, cosigns the same payload and admits the copy.
    let copy = t.path("copy");
    copy_dir(&victim, &copy);
    let r = run([
        "cosign",
        copy.join("weightgate.att").to_str().unwrap(),
        "--key",
        &td("keys/test-other.key"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = t.admit(copy.to_str().unwrap(), "other/copy", &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Then the other lab's key is revoked.
    let other_pub = fs::read_to_string(testdata().join("keys/test-other.pub")).unwrap();
    // A key id is the hex SHA-256 of the SPKI DER.
    let other_id = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let b64: String = other_pub
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        hex::encode(sha2::Sha256::digest(der))
    };
    let policy = fs::read_to_string(t.path("policy.toml")).unwrap();
    fs::write(
        t.path("policy.toml"),
        format!("{policy}\n[revoked]\nkeys = [\"{other_id}\"]\n"),
    )
    .unwrap();
    let server = serve(&t.path("store"), &t.path("policy.toml"));
    let (s, _) = get(&server.addr, "/other/copy/resolve/main/config.json", "DE");
    assert_eq!(s, 451, "the copy signed by a revoked key");
    let (s, body) = get(&server.addr, "/lab/victim/resolve/main/config.json", "DE");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    drop(server);

    // A shared blob altered in the store is not blessed again by a new admission.
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(
            fs::read(victim.join("config.json")).unwrap(),
        ))
    };
    let blob = t.path("store/blobs").join(&sha);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&blob, &bytes).unwrap();
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o444)).unwrap();
    }
    let r = t.admit(victim.to_str().unwrap(), "third/reuse", &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("altered after admission"), "{}", r.stderr);
    assert!(!t.path("store/repos/third/reuse").exists());
    let server = serve(&t.path("store"), &t.path("policy.toml"));
    for repo in ["lab/victim", "other/copy"] {
        let (s, body) = get(
            &server.addr,
            &format!("/{repo}/resolve/main/config.json"),
            "DE",
        );
        assert_eq!(s, 451, "{repo}");
        assert!(
            !body.windows(bytes.len()).any(|w| w == bytes),
            "altered bytes served"
        );
    }
}
