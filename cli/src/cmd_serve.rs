//! `weightgate serve --store DIR --policy FILE --listen ADDR`: the gate server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::Exit;
use weightgate_verifier::gate::audit::AuditLog;
use weightgate_verifier::gate::server::{Gate, Limits, serve};
use weightgate_verifier::gate::store::Store;
use weightgate_verifier::policy::Policy;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long)]
    pub store: PathBuf,
    /// Re-read on SIGHUP.
    #[arg(long)]
    pub policy: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Audit log (JSON lines; default STORE/audit.log).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Seconds a client has to send its request headers (slow clients are cut off).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a write to a client may make no progress before the connection is closed
    /// (a client that stops reading a download).
    #[arg(long, default_value_t = 60.0)]
    pub write_timeout: f64,
}

pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let policy = Policy::load(&args.policy)?;
    let store = Store::open(&args.store)?;
    let audit_path = args
        .audit_log
        .unwrap_or_else(|| args.store.join("audit.log"));
    let audit = AuditLog::open(&audit_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", audit_path.display()))?;
    let gate = Arc::new(Gate::new(store, args.policy, policy, audit));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !(args.header_timeout > 0.0 && args.header_timeout < 3600.0) {
        anyhow::bail!("--header-timeout must be between 0 and 3600 seconds");
    }
    if !(args.write_timeout > 0.0 && args.write_timeout < 3600.0) {
        anyhow::bail!("--write-timeout must be between 0 and 3600 seconds");
    }
    let limits = Limits {
        header_read_timeout: std::time::Duration::from_secs_f64(args.header_timeout),
        write_timeout: std::time::Duration::from_secs_f64(args.write_timeout),
        ..Limits::default()
    };
    rt.block_on(serve(gate, args.listen, limits))?;
    Ok(Exit::Ok)
}
