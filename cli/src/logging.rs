//! Where the libraries' operational messages (`tracing` events, e.g. from the gate server) go:
//! standard error, filtered by `RUST_LOG` (e.g. `RUST_LOG=warn`, `RUST_LOG=weightgate_verifier=debug`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber once, at `default` level when `RUST_LOG` is unset. An invalid
/// `RUST_LOG` directive is skipped (and the rest kept) rather than stopping the command.
pub fn init(default: LevelFilter) {
    let filter = EnvFilter::builder()
        .with_default_directive(default.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
