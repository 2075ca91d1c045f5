//! Well-known file names: what weightgate writes beside a checkpoint, and what OpenSSF model
//! signing writes and leaves out. Every crate takes them from here.

/// The attestation inside a checkpoint folder (`FILE.att` beside a single file).
pub const ATTESTATION_FILE_NAME: &str = "weightgate.att";

/// The OpenSSF model-signing bundle inside a checkpoint folder, as `model_signing` names it
/// (`FILE.sig` beside a single file).
pub const OMS_SIGNATURE_FILE_NAME: &str = "model.sig";

/// What OpenSSF model signing leaves out by default (top level only).
pub const GIT_IGNORES: &[&str] = &[".git", ".github", ".gitignore", ".gitattributes"];

/// Top-level names never attested: git metadata (as OpenSSF model signing ignores them), our own
/// attestation and an OpenSSF signature that may sit beside the weights.
pub const DEFAULT_IGNORES: &[&str] = &[
    ".git",
    ".github",
    ".gitignore",
    ".gitattributes",
    ATTESTATION_FILE_NAME,
    OMS_SIGNATURE_FILE_NAME,
];

/// Where `hf download --local-dir` keeps its download metadata, inside the downloaded folder:
/// never part of a model, left out like `.git` (not by OpenSSF model signing, which a bundle
/// tells through its `ignore_paths`).
pub const HF_LOCAL_DIR_METADATA: &str = ".cache/huggingface";
