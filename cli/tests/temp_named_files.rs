//! Only weightgate's own temp files are left out of a checkpoint: a folder or a file that only
//! looks like one (`.weightgate.att.tmp-...`) is read and attested like everything else.

use crate::common;

use std::fs;

use common::{copy_dir, run, testdata};

#[test]
fn only_exact_own_temp_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    // A folder named like a temp file, with a file inside.
    fs::create_dir(ck.join(".weightgate.att.tmp-1-2")).unwrap();
    fs::write(ck.join(".weightgate.att.tmp-1-2/hidden.bin"), b"payload").unwrap();
    // Files that look like temp files but are not named as weightgate names them.
    fs::write(ck.join(".weightgate.att.tmp-evil"), b"x").unwrap();
    fs::write(ck.join(".model.sig.tmp-1-2x"), b"y").unwrap();
    // A real leftover of a killed write: skipped.
    fs::write(ck.join(".weightgate.att.tmp-4194304-7"), b"partial").unwrap();
    let r = run(["inspect", ck.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for attested in [
        ".weightgate.att.tmp-1-2/hidden.bin",
        ".weightgate.att.tmp-evil",
        ".model.sig.tmp-1-2x",
    ] {
        assert!(paths.contains(&attested), "{attested} left out: {paths:?}");
    }
    assert!(
        !paths.contains(&".weightgate.att.tmp-4194304-7"),
        "{paths:?}"
    );
}
