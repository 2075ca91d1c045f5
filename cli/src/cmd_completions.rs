//! `weightgate completions SHELL` and `weightgate manpage [--out-dir DIR]`: generated from the
//! clap definition itself, so they always match the binary.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::{Cli, Exit};
use weightgate_attest::io::{Replace, write_atomically};

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for (bash: `source <(weightgate completions bash)`).
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManpageArgs {
    /// Write weightgate.1 and one weightgate-COMMAND.1 per command here, instead of printing
    /// weightgate.1 to standard output.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "weightgate", &mut out);
    use std::io::Write as _;
    std::io::stdout()
        .write_all(&out)
        .context("cannot write to standard output")?;
    Ok(Exit::Ok)
}

/// Every page: `weightgate.1`, then `weightgate-COMMAND.1` for each command (nested ones too).
fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn add(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let name = cmd.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
        out.push((format!("{name}.1"), page));
        // Hidden commands (old names kept working) get no page of their own.
        for sub in cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help" && !s.is_hide_set())
        {
            let full = format!("{name}-{}", sub.get_name());
            add(sub.clone().name(full), out)?;
        }
        Ok(())
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    add(cmd, &mut out)?;
    Ok(out)
}

pub fn manpage(args: ManpageArgs) -> anyhow::Result<Exit> {
    let pages = pages()?;
    match &args.out_dir {
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&pages[0].1)
                .context("cannot write to standard output")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            for (name, page) in &pages {
                let path = dir.join(name);
                write_atomically(&path, page, 0o644, Replace::Allowed)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
            println!("{} man pages written to {}", pages.len(), dir.display());
        }
    }
    Ok(Exit::Ok)
}
