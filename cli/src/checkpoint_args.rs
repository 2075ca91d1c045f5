//! Flags shared by every command that reads a checkpoint, and the one place they become
//! [`OpenOptions`].

use std::path::PathBuf;

use clap::Args;
use weightgate_attest::reading::{Checkpoint, OpenOptions, ReadPath};

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
    #[command(flatten)]
    pub read: HashReadArg,
}

/// How files are read for hashing; for tests and measurements, hence hidden.
#[derive(Args, Debug, Clone)]
pub struct HashReadArg {
    /// auto (mapped if in the page cache, streamed from the disk otherwise), mapped or streamed.
    #[arg(long, env = "WEIGHTGATE_HASH_READ", value_name = "HOW", default_value = "auto",
          value_parser = parse_read_path, hide = true)]
    pub hash_read: ReadPath,
}

fn parse_read_path(how: &str) -> Result<ReadPath, String> {
    match how {
        "auto" => Ok(ReadPath::ByResidency),
        "mapped" => Ok(ReadPath::Mapped),
        "streamed" => Ok(ReadPath::Streamed),
        _ => Err("must be auto, mapped or streamed".into()),
    }
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
            read: self.read.hash_read,
            ..Default::default()
        }
    }

    pub fn open(&self) -> anyhow::Result<Checkpoint> {
        Ok(Checkpoint::open(&self.path, &self.open_options([]))?)
    }
}
