//! Where weightgate's own files go relative to a checkpoint, and whether a path lies inside it.

use std::path::{Path, PathBuf};

use weightgate_schemas::file_names::{ATTESTATION_FILE_NAME, OMS_SIGNATURE_FILE_NAME};

/// `DIR/weightgate.att` for a folder, `FILE.att` beside a single file.
pub fn default_attestation_path(checkpoint: &Path) -> PathBuf {
    output_beside(checkpoint, ATTESTATION_FILE_NAME, ".att")
}

/// `DIR/NAME` for a folder, `FILE` + `suffix` beside a single file.
fn output_beside(checkpoint: &Path, name: &str, suffix: &str) -> PathBuf {
    if checkpoint.is_dir() {
        checkpoint.join(name)
    } else {
        let mut p = checkpoint.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    }
}

/// `DIR/model.sig` for a folder, `FILE.sig` beside a single file.
pub fn default_oms_signature_path(checkpoint: &Path) -> PathBuf {
    output_beside(checkpoint, OMS_SIGNATURE_FILE_NAME, ".sig")
}

/// `file`'s path relative to the `checkpoint` folder, when it lies inside it (the file itself
/// need not exist yet).
pub fn relative_inside(checkpoint: &Path, file: &Path) -> Option<String> {
    if !checkpoint.is_dir() {
        return None;
    }
    let root = checkpoint.canonicalize().ok()?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = parent.canonicalize().ok()?;
    let rel = parent.strip_prefix(&root).ok()?.join(file.file_name()?);
    rel.to_str().map(str::to_string)
}
