//! A PKCS#11 token taken away in the middle of a release step: the library's `attest` signs the
//! attestation with one key of a SoftHSM2 token, the token is deleted (`softhsm2-util
//! --delete-token`) while the process still holds its logged-in sessions, and the second
//! signature (`model.sig`, another key of the same token) must fail with an error that names
//! the token and the failed call, with no panic and neither file written.

use std::fs;

use weightgate_attest::reading::OpenOptions;
use weightgate_attest::signing::{
    AttestError, AttestRequest, OmsSigning, Pkcs11Options, Pkcs11Signer, Pkcs11Uri, SignError,
    SignatureAlgorithm, Signer, SigningPurpose, attest,
};

use crate::common::{copy_dir, td, testdata};
use crate::pkcs11::{PIN, SoftHsm, module};

/// The token's own signer; once it has signed, the token is deleted from under the process.
struct DeletesTokenAfterSigning {
    signer: Pkcs11Signer,
    /// The SoftHSM2 configuration naming the token directory.
    conf: String,
}

impl std::fmt::Debug for DeletesTokenAfterSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeletesTokenAfterSigning")
    }
}

impl Signer for DeletesTokenAfterSigning {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.signer.algorithm()
    }
    fn public_key_der(&self) -> &[u8] {
        self.signer.public_key_der()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self.signer.sign(message)?;
        let out = std::process::Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--delete-token", "--token", "lab"])
            .output()
            .expect("softhsm2-util (Debian softhsm2, installed by .ci/run)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(signature)
    }
}

#[test]
fn a_token_removed_between_two_signatures_fails_cleanly_and_writes_nothing() {
    let hsm = SoftHsm::with_token("lab");
    for (object, kind) in [("release", "ed25519"), ("oms", "p256")] {
        let r = hsm.run_with_pin(&[
            "keygen",
            "--pkcs11",
            &format!("pkcs11:token=lab;object={object}"),
            "--type",
            kind,
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // SoftHSM2 finds its tokens through SOFTHSM2_CONF, read when the module is initialised.
    // SAFETY: set once, before this test loads the module; no other test of this binary
    // loads SoftHSM2 in-process.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hsm.conf()) };
    let options = || Pkcs11Options {
        module: Some(module().into()),
        pin_source: None,
        pin: Some(PIN.as_bytes().to_vec()),
    };
    let open = |object: &str, purpose| {
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=lab;object={object}")).unwrap();
        Pkcs11Signer::open(&uri, &options(), purpose).unwrap()
    };
    let release = DeletesTokenAfterSigning {
        signer: open("release", SigningPurpose::Envelope),
        conf: hsm.conf(),
    };
    let oms = open("oms", SigningPurpose::ModelSignature);

    let model = hsm.dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &model);
    let request = AttestRequest {
        checkpoint: model.clone(),
        open: OpenOptions::default(),
        claims: td("claims/tiny-below.toml").into(),
        key: Box::new(release),
        out: None,
        per_tensor: false,
        threads: 1,
        issued_at: 1_793_491_200,
        oms: Some(OmsSigning {
            key: Box::new(oms),
            out: None,
        }),
    };
    let result = attest(&request, &|_| {});
    let Err(AttestError::Sign(error)) = result else {
        panic!("expected the second signature to fail, got {result:?}");
    };
    let message = error.to_string();
    let source = std::error::Error::source(&error).map(|s| s.to_string());
    let text = format!("{message}: {}", source.unwrap_or_default());
    assert!(
        text.contains("token \"lab\"") && text.contains("C_Sign"),
        "the error names the token and the call: {text}"
    );
    assert!(!text.contains(PIN), "{text}");
    assert!(!model.join("weightgate.att").exists());
    assert!(!model.join("model.sig").exists());
    let leftovers: Vec<_> = fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
}
