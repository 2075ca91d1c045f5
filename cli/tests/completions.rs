//! `weightgate completions SHELL` run by the real bash, and `weightgate manpage` rendered by
//! groff (installed by `.ci/run` when missing).

use crate::common;

use std::fs;
use std::process::Command;

use common::run;

/// What bash offers after `weightgate WORDS...` with the cursor at the end of the last word.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let array = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "source '{}'\nCOMP_WORDS=({array})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _weightgate weightgate '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(["completions", "bash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = dir.path().join("weightgate.bash");
    fs::write(&script, &r.stdout).unwrap();
    let commands = bash_completes(&script, &["weightgate", "ver"]);
    assert_eq!(commands, ["verify", "verify-oms"]);
    let all = bash_completes(&script, &["weightgate", ""]);
    for c in ["verify", "attest", "export", "completions", "manpage"] {
        assert!(all.iter().any(|w| w == c), "{c} not offered: {all:?}");
    }
    let flags = bash_completes(&script, &["weightgate", "verify", "--h"]);
    assert!(flags.iter().any(|w| w == "--hf"), "{flags:?}");
    let shells = bash_completes(&script, &["weightgate", "completions", "z"]);
    assert_eq!(shells, ["zsh"]);

    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = run(["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains("verify") && r.stdout.contains("hf"),
            "{shell}"
        );
    }
    let r = run(["completions", "tcsh"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid value 'tcsh'"), "{}", r.stderr);
}

fn groff(page: &std::path::Path) -> String {
    let out = Command::new("groff")
        // Plain ASCII, no overstrike or SGR: the text as a reader sees it.
        .args(["-man", "-Tascii", "-P-cbou", "-ww"])
        .arg(page)
        .output()
        .expect("groff (installed by .ci/run)");
    assert!(out.status.success());
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.is_empty(), "{}: {warnings}", page.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(["manpage"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &r.stdout[..80]
    );
    assert!(r.stdout.contains(".TH weightgate 1"), "{}", r.stdout);

    let out = dir.path().join("man");
    let r = run(["manpage", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "weightgate.1",
        "weightgate-verify.1",
        "weightgate-policy-check.1",
        "weightgate-export.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for n in &names {
        groff(&out.join(n));
    }
    let main = groff(&out.join("weightgate.1"));
    assert!(main.contains("weightgate-verify(1)"), "{main}");
    let verify = groff(&out.join("weightgate-verify.1"));
    assert!(verify.contains("--hf <ORG/NAME[@REV]>"), "{verify}");
    assert!(verify.contains("weightgate verify"), "{verify}");
}
