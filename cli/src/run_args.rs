//! Flags several commands share, defined once: `--json` for every command with a
//! machine-readable output, and `--quiet`/`--threads` besides for the commands that hash.

use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct JsonArg {
    /// Print JSON instead of text, with stable field names.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub output: JsonArg,
    /// No progress bar (there is one only on a terminal, and only for large checkpoints).
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads for hashing (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl RunArgs {
    pub fn json(&self) -> bool {
        self.output.json
    }

    /// Whether to show a progress bar: not when asked for quiet or machine output.
    pub fn quiet(&self) -> bool {
        self.quiet || self.output.json
    }
}
