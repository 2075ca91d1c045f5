//! A store error on the commit route reaches the client naming what failed and the part of
//! the store, with an error id the gate's log gives beside the whole error; never a path.

use crate::common::{self, bearer_request, http_get};
use crate::support::serve::Server;

#[test]
fn a_store_error_at_the_commit_names_what_failed_never_the_path() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let tiny = common::attested_tiny();
    let store = dir.path().join("store");
    let token = common::write_token(&store, "lab-ci", &["lab"]);
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args(["--policy", policy.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd);
    // Blobs cannot be written: a file where their folder should be.
    let blobs = store.join("blobs");
    let _ = std::fs::remove_dir_all(&blobs);
    std::fs::write(&blobs, b"").unwrap();

    // Every file inline, so the commit reaches the publish step.
    let mut body = String::from(r#"{"key":"header","value":{"summary":"s"}}"#);
    for entry in std::fs::read_dir(&tiny.model).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let content =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(entry.path()).unwrap());
        body.push_str(&format!(
            "\n{{\"key\":\"file\",\"value\":{{\"path\":\"{name}\",\"content\":\"{content}\",\"encoding\":\"base64\"}}}}"
        ));
    }
    let (status, text) = bearer_request(
        &server.addr,
        "POST",
        "/api/models/lab/tiny/commit/main",
        &token,
        body.as_bytes(),
    );
    assert_eq!(status, 500, "{text}");
    let message = "the store could not stage and publish the revision (a blob: not a directory); \
                   the gate's log has the details under error id ";
    let at = text.find(message).unwrap_or_else(|| panic!("{text}"));
    let id = &text[at + message.len()..][..16];
    assert!(!text.contains(store.to_str().unwrap()), "{text}");
    let logged = server.wait_for_log(&["store error", id]);
    assert!(logged.contains(&blobs.display().to_string()), "{logged}");
    let (status, _) = http_get(&server.addr, "/lab/tiny/resolve/main/config.json", &[]);
    assert_eq!(status, 404);
}
