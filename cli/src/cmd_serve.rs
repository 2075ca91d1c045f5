//! `weightgate serve --store DIR --policy FILE --listen ADDR`: the gate server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::Outcome;
use weightgate_verifier::Policy;
use weightgate_verifier::audit::AuditLog;
use weightgate_verifier::server::{Gate, serve};
use weightgate_verifier::store::Store;

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
}

pub fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
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
    rt.block_on(serve(gate, args.listen))?;
    Ok(Outcome::Ok)
}
