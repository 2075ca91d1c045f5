//! Flags shared by every command that reads a checkpoint, and the one place they become
//! [`OpenOptions`].

use std::path::PathBuf;

use clap::Args;
use weightgate_attest::reading::{Checkpoint, OpenOptions};

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Checkpoint folder or single file.
    pub path: PathBuf,
    /// Follow symbolic links that stay inside the checkpoint (a Hugging Face cache snapshot's
    /// links into its repository's blobs/ are followed without it).
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Leave this relative path (file or folder) out; repeatable.
    #[arg(long = "ignore", value_name = "PATH")]
    pub ignore: Vec<String>,
}

impl CheckpointArgs {
    /// How to open the checkpoint: these flags, plus `also_ignore` (files of our own inside it,
    /// such as the attestation or a grant).
    pub fn open_options(&self, also_ignore: impl IntoIterator<Item = String>) -> OpenOptions {
        let mut ignore = self.ignore.clone();
        ignore.extend(also_ignore);
        OpenOptions {
            allow_symlinks: self.allow_symlinks,
            ignore,
            ..Default::default()
        }
    }

    pub fn open(&self) -> anyhow::Result<Checkpoint> {
        Ok(Checkpoint::open(&self.path, &self.open_options([]))?)
    }
}
