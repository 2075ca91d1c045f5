//! `weightgate`: the command line over the weightgate libraries.
//!
//! Exit codes: 0 ok or allowed, 1 denied, 2 usage or input error.

// One `unsafe` block (SIGPIPE's disposition): it says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]

mod checkpoint_args;
mod cmd_admit;
mod cmd_attest;
mod cmd_completions;
mod cmd_cosign;
mod cmd_demo;
mod cmd_export;
mod cmd_export_intoto;
mod cmd_grant;
mod cmd_hash;
mod cmd_inspect;
mod cmd_keygen;
mod cmd_oms;
mod cmd_policy;
mod cmd_push;
mod cmd_serve;
mod cmd_store;
mod cmd_token;
mod cmd_verify;
mod logging;
mod progress;
mod run_args;
mod show_envelope;
mod terminal;
mod time_arg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Decide which model weights may leave a lab and which a hub may serve.
#[derive(Parser, Debug)]
#[command(name = "weightgate", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a checkpoint's files, tensors, parameters and metadata (headers only), or an envelope.
    Inspect(cmd_inspect::InspectArgs),
    /// Print SHA-256 and BLAKE3 digests of every file and the model root digest.
    Hash(cmd_hash::HashArgs),
    /// Create an Ed25519 signing key pair.
    Keygen(cmd_keygen::KeygenArgs),
    /// Check claims, hash a checkpoint and sign its attestation.
    Attest(cmd_attest::AttestArgs),
    /// Add a further signature (an auditor's) to an envelope.
    Cosign(cmd_cosign::CosignArgs),
    /// Countersign one reference of an attestation as its issuer (a licensing authority).
    Grant(cmd_grant::GrantArgs),
    /// Verify a checkpoint against its attestation and a policy: exit 0 allowed, 1 denied.
    Verify(cmd_verify::VerifyArgs),
    /// Sign a model with OpenSSF model signing alone (model.sig, OMS v1.0).
    SignOms(cmd_oms::SignOmsArgs),
    /// Verify a model against an OpenSSF model-signing bundle alone: exit 0 verified, 1 not.
    VerifyOms(cmd_oms::VerifyOmsArgs),
    /// Validate a policy file, or list the regime presets.
    Policy(cmd_policy::PolicyArgs),
    /// Verify a checkpoint and copy it into the gate server's content-addressed store.
    Admit(cmd_admit::AdmitArgs),
    /// Upload an attested checkpoint to a Hub or gate on the LFS path (token from HF_TOKEN).
    Push(cmd_push::PushArgs),
    /// Serve admitted weights to Hugging Face clients, refusing (451) what the policy denies.
    Serve(cmd_serve::ServeArgs),
    /// Maintain the gate's store: `store gc` removes what no admitted revision names.
    Store(cmd_store::StoreArgs),
    /// Create, list or revoke the write tokens the gate's upload routes accept.
    Token(cmd_token::TokenArgs),
    /// Write the attestation as a CycloneDX 1.6 ML-BOM or an in-toto Statement (DSSE JSON).
    Export(cmd_export::ExportArgs),
    /// The same as `export --format intoto` (its former name).
    #[command(hide = true)]
    ExportIntoto(cmd_export_intoto::ExportIntotoArgs),
    /// Play the whole story on the bundled example in a temporary folder.
    Demo(cmd_demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd_completions::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --out-dir.
    Manpage(cmd_completions::ManpageArgs),
}

/// `1 file`, `2 files`: a count with its noun.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What a command decided, beyond success.
pub enum Exit {
    Ok,
    Denied,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A one-shot command whose output pipe closes (`weightgate policy presets | head`) ends
    // quietly, as coreutils do, instead of panicking in println!. The server keeps Rust's
    // default (SIGPIPE ignored): a client that hangs up must not kill it.
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: restores the default disposition of one signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // A server reports what it does; a one-shot command only what goes wrong.
    logging::init(match cli.command {
        Command::Serve(_) => tracing_subscriber::filter::LevelFilter::INFO,
        _ => tracing_subscriber::filter::LevelFilter::WARN,
    });
    let result = match cli.command {
        Command::Inspect(args) => cmd_inspect::run(args),
        Command::Hash(args) => cmd_hash::run(args),
        Command::Keygen(args) => cmd_keygen::run(args),
        Command::Attest(args) => cmd_attest::run(args),
        Command::Cosign(args) => cmd_cosign::run(args),
        Command::Grant(args) => cmd_grant::run(args),
        Command::Verify(args) => cmd_verify::run(args),
        Command::SignOms(args) => cmd_oms::run_sign(args),
        Command::VerifyOms(args) => cmd_oms::run_verify(args),
        Command::Policy(args) => cmd_policy::run(args),
        Command::Demo(args) => cmd_demo::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::ExportIntoto(args) => cmd_export_intoto::run(args),
        Command::Admit(args) => cmd_admit::run(args),
        Command::Push(args) => cmd_push::run(args),
        Command::Serve(args) => cmd_serve::run(args),
        Command::Store(args) => cmd_store::run(args),
        Command::Token(args) => cmd_token::run(args),
        Command::Completions(args) => cmd_completions::completions(args),
        Command::Manpage(args) => cmd_completions::manpage(args),
    };
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Denied) => ExitCode::from(1),
        Err(e) => {
            terminal::say_err!("weightgate: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// `--help` explains every flag, positional and subcommand (docs refer to it).
    #[test]
    fn every_flag_positional_and_subcommand_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "weightgate", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}
