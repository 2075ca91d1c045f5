//! The rule "no destination could be served", at the commit (`weightgate push` to a gate) and
//! at `weightgate admit`: a release every destination a download can name would refuse is
//! refused at admission, with the reason codes; one some destinations may have is admitted and
//! served only there.

use crate::common;
use crate::support::serve::Server;

use std::fs;
use std::path::Path;

use common::{copy_dir, http_get, run, run_env, td, testdata};

/// EU, California and (simulated) the BIS rule, whose export licence covers DE, FR and JP.
const POLICY: &str = r#"[policy]
name = "commit rules"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
HEADER
[[trusted_key]]
name = "lab"
path = "KEYS/test-lab.pub"
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
"#;

fn policy(dir: &Path, file: &str, header: &str) -> String {
    let path = dir.join(file);
    let text = POLICY
        .replace("HEADER", header)
        .replace("KEYS", testdata().join("keys").to_str().unwrap());
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `dir/licensed` (every reference; the export licence covers DE, FR, JP) and `dir/unlicensed`
/// (the same frontier-scale claims without any reference), attested by the test lab.
fn releases(dir: &Path) {
    let above = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
    fs::write(
        dir.join("unlicensed.toml"),
        above.split("[[reference]]").next().unwrap(),
    )
    .unwrap();
    for (name, claims) in [
        ("licensed", td("claims/tiny-above.toml")),
        (
            "unlicensed",
            dir.join("unlicensed.toml").to_str().unwrap().to_string(),
        ),
    ] {
        let ck = dir.join(name);
        copy_dir(&testdata().join("checkpoints/tiny"), &ck);
        let r = run([
            "attest",
            ck.to_str().unwrap(),
            "--key",
            &td("keys/test-lab.key"),
            "--claims",
            &claims,
            "--quiet",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

#[test]
fn a_push_no_destination_could_be_served_is_refused_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    releases(dir.path());
    let policy = policy(
        dir.path(),
        "policy.toml",
        "destination_header = \"CF-IPCountry\"",
    );
    let store = p("store");
    let token = common::write_token(&store, "release-job", &["lab"]);
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args(["--policy", &policy, "--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd);
    let push = |folder: &str, repo: &str| {
        run_env(
            &[("HF_TOKEN", token.as_str())],
            [
                "push",
                p(folder).to_str().unwrap(),
                "--repo",
                repo,
                "--endpoint",
                &server.url(),
            ],
        )
    };

    // California's regime applies everywhere and the release holds none of its references.
    let refused = push("unlicensed", "lab/frontier");
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    let first_line = refused.stderr.lines().next().unwrap_or_default();
    assert!(
        first_line.contains("403 Forbidden: weightgate refused the commit to lab/frontier@main: weightgate refused this release: regime.no_destination_served: the regimes refuse every destination a download can name (251 judged: ")
            && first_line.contains("), so no request could be served; "),
        "{}",
        refused.stderr
    );
    assert!(first_line.contains("regime.reference_missing: above threshold"));
    // Nothing of it is visible or kept.
    let (status, _) = http_get(&server.addr, "/api/models/lab/frontier", &[]);
    assert_eq!(status, 404);
    assert!(!store.join("repos/lab/frontier").exists());
    let pending: Vec<_> = fs::read_dir(store.join("uploads/lab"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(pending.is_empty(), "{pending:?}");

    // Licensed for DE, FR and JP (and Tier 1 and domestic under the BIS rule): admitted, and
    // served only where the regimes allow.
    let admitted = push("licensed", "lab/licensed");
    assert_eq!(admitted.code, 0, "{}", admitted.stderr);
    let config = "/lab/licensed/resolve/main/config.json";
    let want = fs::read(p("licensed/config.json")).unwrap();
    let (status, body) = http_get(&server.addr, config, &[("CF-IPCountry", "DE")]);
    assert_eq!((status, body), (200, want));
    let (status, body) = http_get(&server.addr, config, &[("CF-IPCountry", "BR")]);
    assert_eq!(status, 451);
    assert!(String::from_utf8_lossy(&body).contains("regime.destination_not_covered"));
    let (status, _) = http_get(&server.addr, config, &[]);
    assert_eq!(
        status, 451,
        "a request naming no country is an unknown destination"
    );
}

#[test]
fn admit_follows_the_same_rule_for_the_destinations_its_policy_can_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    releases(dir.path());
    let store = p("store");
    let admit = |folder: &str, repo: &str, policy: &str| {
        run([
            "admit",
            p(folder).to_str().unwrap(),
            "--repo",
            repo,
            "--store",
            store.to_str().unwrap(),
            "--policy",
            policy,
        ])
    };
    // Without a destination header no request names a destination, and the export licence
    // covers only some: no request could be served.
    let no_header = policy(dir.path(), "no-header.toml", "");
    let r = admit("licensed", "lab/licensed", &no_header);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{out}");
    assert!(
        out.contains("regime.no_destination_served")
            && out.contains("(1 judged: ")
            && out.contains("regime.destination_required"),
        "{out}"
    );
    assert!(out.contains("not admitted: 1 check(s) failed"), "{out}");
    assert!(!store.join("repos/lab/licensed").exists());

    // With the header, the countries the licence covers can be served: admitted.
    let header = policy(
        dir.path(),
        "header.toml",
        "destination_header = \"CF-IPCountry\"",
    );
    let r = admit("licensed", "lab/licensed", &header);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{out}");
    assert!(
        out.contains("regimes currently refuse it for some requests"),
        "{out}"
    );
    let r = admit("unlicensed", "lab/frontier", &header);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{out}");
    assert!(
        out.contains("regime.no_destination_served") && out.contains("(251 judged: "),
        "{out}"
    );
    assert!(!store.join("repos/lab/frontier").exists());
}
