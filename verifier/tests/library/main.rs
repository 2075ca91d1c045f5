//! The verifier library on the repository's vectors (testdata/), called directly: no binary
//! is spawned. One module per part: the three stages as `verify` runs them, policy parsing and
//! the OpenSSF `model.sig` check.

mod support;

mod authenticate;
mod bind;
mod judge;
mod model_sig;
mod policy;
mod sigstore_rekor_v2;
