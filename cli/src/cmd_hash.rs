//! `weightgate hash PATH`: per-file digests and the model root.

use clap::{Args, ValueEnum};

use crate::Exit;
use crate::checkpoint_args::CheckpointArgs;
use crate::progress::Bar;
use crate::run_args::RunArgs;
use weightgate_attest::hashing::{Algorithms, HashOptions, hash_checkpoint, work_bytes};

#[derive(Args, Debug)]
pub struct HashArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Only BLAKE3 (no SHA-256, so no root digest).
    #[arg(long)]
    pub blake3_only: bool,
    /// Also a BLAKE3 digest of every tensor in safetensors files.
    #[arg(long)]
    pub per_tensor: bool,
    /// Output layout; `sha256sum` and `b3sum` lines can be checked with `sha256sum -c` / `b3sum -c`.
    #[arg(long, value_enum, default_value_t = Format::Table, conflicts_with = "json")]
    pub format: Format,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `sha256:HEX  PATH` and `blake3:HEX  PATH` per file, then the root digest.
    Table,
    /// `HEX  PATH` with SHA-256, as `sha256sum` prints.
    Sha256sum,
    /// `HEX  PATH` with BLAKE3, as `b3sum` prints.
    B3sum,
}

pub fn run(args: HashArgs) -> anyhow::Result<Exit> {
    if args.format == Format::Sha256sum && args.blake3_only {
        anyhow::bail!("--format sha256sum needs SHA-256; drop --blake3-only");
    }
    let ck = args.checkpoint.open()?;
    let opts = HashOptions {
        algorithms: if args.blake3_only {
            Algorithms::Blake3Only
        } else if args.format == Format::Sha256sum {
            Algorithms::Sha256Only
        } else {
            Algorithms::Both
        },
        per_tensor: args.per_tensor,
        threads: args.run.threads,
    };
    let bar = Bar::new(work_bytes(&ck, &opts), args.run.quiet());
    let manifest = hash_checkpoint(&ck, &opts, &|n| bar.inc(n));
    bar.finish();
    let manifest = manifest?;

    if args.run.json() {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(Exit::Ok);
    }
    let hex = |d: &Option<[u8; 32]>| d.map(hex::encode).unwrap_or_default();
    // Paths as the checksum tools must open them from the current directory.
    let shown = |rel: &str| {
        if ck.single_file {
            args.checkpoint.path.display().to_string()
        } else {
            args.checkpoint.path.join(rel).display().to_string()
        }
    };
    for f in &manifest.files {
        match args.format {
            Format::Sha256sum => println!("{}  {}", hex(&f.sha256), shown(&f.path)),
            Format::B3sum => println!("{}  {}", hex(&f.blake3), shown(&f.path)),
            Format::Table => {
                if let Some(s) = &f.sha256 {
                    println!("sha256:{}  {}", hex::encode(s), f.path);
                }
                if let Some(b) = &f.blake3 {
                    println!("blake3:{}  {}", hex::encode(b), f.path);
                }
                for t in f.tensors.iter().flatten() {
                    println!("  blake3:{}  {}#{}", hex::encode(t.blake3), f.path, t.name);
                }
            }
        }
    }
    if args.format == Format::Table
        && let Some(root) = &manifest.root_sha256
    {
        println!("root sha256:{}", hex::encode(root));
    }
    Ok(Exit::Ok)
}
