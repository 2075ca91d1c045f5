//! Policy files: the examples in testdata/policy load, and a bad setting is refused with its
//! key and line, never a panic.

use weightgate_verifier::policy::{Policy, PolicyError};

use crate::support::testdata;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, "p.toml", &testdata("policy"))
}

/// `(key, line)` of the error `text` gets.
fn refused(text: &str) -> (String, Option<usize>, String) {
    let e = parse(text).expect_err("parses");
    (e.key, e.line, e.problem)
}

#[test]
fn the_example_policies_load() {
    for (file, keys, regimes) in [
        ("policy/downstream.toml", 2, 0),
        ("policy/hub.toml", 2, 3),
        ("policy/lab.toml", 1, 5),
    ] {
        let p = Policy::load(&testdata(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(p.trusted_keys.len(), keys, "{file}");
        assert_eq!(p.regimes.len(), regimes, "{file}");
    }
    let downstream = Policy::load(&testdata("policy/downstream.toml")).unwrap();
    assert_eq!(downstream.min_signatures, 2);
}

#[test]
fn a_bad_setting_names_its_key_and_line() {
    let lab = "[[trusted_key]]\nname = \"lab\"\npath = \"../keys/test-lab.pub\"\n";
    for (policy, key, line) in [
        ("min_signatures = 2\n", "policy.min_signatures", 3),
        (
            "compute_tolerance_percent = 100\n",
            "policy.compute_tolerance_percent",
            3,
        ),
        (
            "plausibility_tolerance = \"3\"\n",
            "policy.plausibility_tolerance",
            3,
        ),
        ("regimes = [\"no-such-regime\"]\n", "policy.regimes", 3),
    ] {
        let text = format!("[policy]\nname = \"p\"\n{policy}{lab}");
        let (got_key, got_line, problem) = refused(&text);
        assert_eq!(
            (got_key.as_str(), got_line),
            (key, Some(line)),
            "{policy}: {problem}"
        );
    }
}

#[test]
fn a_private_key_where_a_public_key_belongs_is_refused() {
    let (key, line, problem) = refused(
        "[policy]\nname = \"x\"\n[[trusted_key]]\nname = \"k\"\npath = \"../keys/test-lab.key\"\n",
    );
    assert_eq!((key.as_str(), line), ("trusted_key[0]", Some(5)));
    assert!(
        problem.contains("a private key where a public key"),
        "{problem}"
    );
}

#[test]
fn a_missing_key_file_and_unknown_fields_are_errors() {
    let (key, _, problem) = refused(
        "[policy]\nname = \"x\"\n[[trusted_key]]\nname = \"k\"\npath = \"../keys/absent.pub\"\n",
    );
    assert_eq!(key, "trusted_key[0].path");
    assert!(problem.contains("absent.pub"), "{problem}");
    let (_, line, problem) = refused("[policy]\nname = \"x\"\nmin_signature = 1\n");
    assert_eq!(line, Some(3), "{problem}");
}

#[test]
fn text_that_is_not_a_policy_is_an_error_with_its_line() {
    for (text, line) in [
        ("[policy\n", 1),
        ("\u{0}", 1),
        ("[policy]\nname = \n", 2),
        ("[policy]\nname = \"p\"\n[[trusted_key]]\npath = 1\n", 4),
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!(e.line, Some(line), "{text:?}: {e}");
    }
}
