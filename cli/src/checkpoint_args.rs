//! Flags shared by every command that reads a checkpoint.

use std::path::PathBuf;

use clap::Args;
use weightgate_attest::reading::{Checkpoint, OpenOptions};

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Checkpoint folder or single file.
    pub path: PathBuf,
    /// Follow symbolic links that stay inside the checkpoint (or a Hugging Face cache repo).
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Leave this relative path (file or folder) out; repeatable.
    #[arg(long = "ignore", value_name = "PATH")]
    pub ignore: Vec<String>,
}

impl CheckpointArgs {
    pub fn open(&self) -> anyhow::Result<Checkpoint> {
        let opts = OpenOptions {
            allow_symlinks: self.allow_symlinks,
            ignore: self.ignore.clone(),
            ..Default::default()
        };
        Ok(Checkpoint::open(&self.path, &opts)?)
    }
}
