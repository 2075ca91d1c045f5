//! What an export checks before it writes: the envelope authenticated with trusted keys or a
//! policy, or an export the user asked for `--unverified`, which is then said.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::terminal::say_err;
use crate::time_arg::{now, parse_time};
use weightgate_verifier::policy::Policy;
use weightgate_verifier::trust::TrustedKey;

/// An export states what it checked: the envelope is authenticated first (signatures by
/// trusted keys, revocation, the statement), or the user says `--unverified`.
#[derive(Args, Debug, Clone, Default)]
pub struct ExportCheck {
    /// Authenticate the envelope against this policy file before exporting.
    #[arg(long, conflicts_with_all = ["trust", "unverified"])]
    pub policy: Option<PathBuf>,
    /// Authenticate the envelope with this Ed25519 public key before exporting; repeatable.
    #[arg(long, value_name = "KEY.pub", conflicts_with = "unverified")]
    pub trust: Vec<PathBuf>,
    /// Export without checking the signatures (the output says so).
    #[arg(long)]
    pub unverified: bool,
    /// Authenticate as of this time (RFC 3339, a date or Unix seconds) instead of now.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<i64>,
}

impl ExportCheck {
    /// Authenticates `bytes` (read from `path`); `Ok(false)` for an `--unverified` export.
    pub fn authenticate(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
        let policy = match (&self.policy, self.trust.is_empty(), self.unverified) {
            (_, _, true) => {
                say_err!(
                    "weightgate: note: {} exported UNVERIFIED: its signatures were not checked",
                    path.display()
                );
                return Ok(false);
            }
            (Some(p), _, _) => Policy::load(p)?,
            (None, false, _) => Policy::trusting(
                self.trust
                    .iter()
                    .map(|k| TrustedKey::load(k))
                    .collect::<Result<_, _>>()?,
            ),
            (None, true, _) => anyhow::bail!(
                "export checks the attestation before writing it elsewhere: give --trust KEY.pub or --policy FILE, or --unverified to export it unchecked"
            ),
        };
        let d = weightgate_verifier::authenticate_envelope(
            bytes,
            &policy,
            self.now.unwrap_or_else(now),
        );
        if !d.allowed {
            let reasons: Vec<String> = d
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.code, r.problem))
                .collect();
            anyhow::bail!(
                "{}: not exported, the attestation does not authenticate: {}",
                path.display(),
                reasons.join("; ")
            );
        }
        Ok(true)
    }
}
