//! Verification of weightgate attestations against checkpoints and a policy.
