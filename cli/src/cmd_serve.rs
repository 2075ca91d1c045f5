//! `weightgate serve --store DIR|s3://BUCKET/PREFIX --policy FILE --listen ADDR`: the gate server. The process
//! concerns live here, not in the library: the runtime, the listening socket, and SIGHUP, which
//! re-reads the policy through [`Gate::reload`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::Exit;
use weightgate_verifier::gate::audit::{AuditLog, Rotation};
use weightgate_verifier::gate::decision::Gate;
use weightgate_verifier::gate::listener::{Limits, serve};
use weightgate_verifier::gate::store::{self, DownloadMode, StoreOptions};
use weightgate_verifier::gate::upload::UploadLimits;
use weightgate_verifier::gate::zero_copy::SocketRelay;
use weightgate_verifier::policy::Policy;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The store `weightgate admit` fills: a folder, or s3://BUCKET/PREFIX (endpoint, region
    /// and credentials from the AWS_* environment variables).
    #[arg(long, value_name = "DIR|URL")]
    pub store: String,
    /// Policy file (TOML; see docs/policy.md), judged on every request; re-read on SIGHUP, and
    /// kept as it was if the new file is invalid.
    #[arg(long)]
    pub policy: PathBuf,
    /// Address and port to listen on (port 0: any free port, logged at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Audit log (JSON lines; default STORE/audit.log for a folder store, required with a
    /// bucket).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Rotate the audit log past this many MiB (`audit.log` becomes `audit.log.1`, ...).
    #[arg(long, default_value_t = 256)]
    pub audit_max_mib: u64,
    /// Rotated audit logs kept.
    #[arg(long, default_value_t = 8)]
    pub audit_keep: u32,
    /// Seconds a client has to send its request headers (slow clients are cut off).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a write to a client may make no progress before the connection is closed
    /// (a client that stops reading a download).
    #[arg(long, default_value_t = 60.0)]
    pub write_timeout: f64,
    /// Connections open at once (kept under half the open-file limit); beyond it the oldest
    /// connection that is not being served is closed.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// How allowed downloads leave a bucket store: `proxy` streams them through the gate,
    /// `redirect` answers 302 to a presigned URL (the bucket is then a trust boundary; see
    /// docs/threat-model.md). A folder store always serves its files itself.
    #[arg(long, value_enum, default_value_t = DownloadArg::Proxy)]
    pub download: DownloadArg,
    /// How `--download proxy` relays an object's body from the bucket's socket to the client's:
    /// `splice` moves it in the kernel (least CPU for the gate), `copy` through a 64 KiB buffer
    /// (least CPU in total when the client shares this machine), `auto` copies for clients on
    /// this machine and splices for the others.
    #[arg(long, value_enum, default_value_t = RelayArg::Auto)]
    pub proxy_relay: RelayArg,
    /// Seconds a presigned URL of `--download redirect` stays valid (a download must start
    /// within it).
    #[arg(long, default_value_t = 60)]
    pub redirect_expiry: u64,
    /// With a bucket store: read the object `policy.toml` at the store's prefix every this many
    /// seconds and apply it when it changed (an invalid one is reported and not applied), so
    /// revocations reach every instance over the bucket. 0: off.
    #[arg(long, default_value_t = 0)]
    pub policy_poll: u64,
    /// Largest file an upload may hold, in MiB.
    #[arg(long, default_value_t = 64 << 10)]
    pub max_upload_mib: u64,
    /// Most files one commit may add, change or delete.
    #[arg(long, default_value_t = 10_000)]
    pub max_commit_files: usize,
    /// Most bytes one namespace may hold uploaded but not yet committed, in MiB.
    #[arg(long, default_value_t = 512 << 10)]
    pub max_staging_mib: u64,
    /// Seconds an upload may send nothing before it is abandoned.
    #[arg(long, default_value_t = 60.0)]
    pub upload_idle_timeout: f64,
    /// Hours an uploaded object waits for the commit that names it (then `store gc` removes
    /// it).
    #[arg(long, default_value_t = 24)]
    pub upload_lifetime_hours: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadArg {
    Proxy,
    Redirect,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayArg {
    Auto,
    Splice,
    Copy,
}

pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let policy = Policy::load(&args.policy)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !(1..=7 * 24 * 3600).contains(&args.redirect_expiry) {
        anyhow::bail!(
            "--redirect-expiry must be between 1 and 604800 seconds (7 days, S3's limit)"
        );
    }
    let downloads = match args.download {
        DownloadArg::Proxy => DownloadMode::Through,
        DownloadArg::Redirect => DownloadMode::Redirect {
            expiry: std::time::Duration::from_secs(args.redirect_expiry),
        },
    };
    let store = rt.block_on(store::open(&args.store, StoreOptions { downloads }))?;
    let audit_path = match args.audit_log.or_else(|| store.default_audit_log()) {
        Some(p) => p,
        None => anyhow::bail!(
            "--audit-log is required with this store ({}): the audit log is a local file",
            store.location()
        ),
    };
    let rotation = Rotation {
        max_bytes: args.audit_max_mib.max(1).saturating_mul(1 << 20),
        keep: args.audit_keep,
    };
    let audit = AuditLog::open_rotating(&audit_path, rotation)
        .map_err(|e| anyhow::anyhow!("{}: {e}", audit_path.display()))?;
    if args.policy_poll > 0 && store.shared_policy_location().is_none() {
        anyhow::bail!(
            "--policy-poll needs a store that several gates share (s3://BUCKET/PREFIX) to poll"
        );
    }
    let gate = Gate::new(store, args.policy, policy, audit);
    let gate = Arc::new(gate);
    if !(args.header_timeout > 0.0 && args.header_timeout < 3600.0) {
        anyhow::bail!("--header-timeout must be between 0 and 3600 seconds");
    }
    if !(args.upload_idle_timeout > 0.0 && args.upload_idle_timeout < 3600.0) {
        anyhow::bail!("--upload-idle-timeout must be between 0 and 3600 seconds");
    }
    if !(args.write_timeout > 0.0 && args.write_timeout < 3600.0) {
        anyhow::bail!("--write-timeout must be between 0 and 3600 seconds");
    }
    let limits = Limits {
        header_read_timeout: std::time::Duration::from_secs_f64(args.header_timeout),
        write_timeout: std::time::Duration::from_secs_f64(args.write_timeout),
        max_connections: args.max_connections,
        uploads: UploadLimits {
            max_file_size: args.max_upload_mib.saturating_mul(1 << 20),
            max_commit_files: args.max_commit_files,
            max_namespace_pending: args.max_staging_mib.saturating_mul(1 << 20),
            pending_lifetime: std::time::Duration::from_secs(
                args.upload_lifetime_hours.saturating_mul(3600),
            ),
            idle_timeout: std::time::Duration::from_secs_f64(args.upload_idle_timeout),
        },
        socket_relay: match args.proxy_relay {
            RelayArg::Auto => SocketRelay::Auto,
            RelayArg::Splice => SocketRelay::Splice,
            RelayArg::Copy => SocketRelay::Copy,
        },
        ..Limits::default()
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
        let mut hangup = signal(SignalKind::hangup())?;
        let reload_gate = gate.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reload(&reload_gate).await;
            }
        });
        if args.policy_poll > 0 {
            // The bucket's policy is this instance's one source from now on, SIGHUP included.
            gate.use_shared_policy()?;
            let every = std::time::Duration::from_secs(args.policy_poll);
            let polling = gate.clone();
            tokio::spawn(async move {
                if let Err(e) = polling.follow_shared_policy(every).await {
                    tracing::error!(error = %e, "cannot follow the shared policy");
                }
            });
        }
        // SIGTERM and SIGINT: stop accepting, then drain the audit log (every queued record
        // and the exact count of dropped ones written) before exiting.
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            served = serve(gate.clone(), listener, limits) => served?,
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down: draining the audit log");
        let report = gate.audit.drain().await;
        tracing::info!(
            written = report.written,
            dropped = report.dropped,
            "audit log drained"
        );
        Ok(Exit::Ok)
    })
}

/// SIGHUP: the policy is read again from its one source (the file, or the bucket's
/// `policy.toml` with `--policy-poll`); the new one applies from the next request, or the old
/// one stays.
async fn reload(gate: &Gate) {
    let source = gate.policy_source();
    match gate.reload().await {
        Ok(()) => tracing::info!(policy = %source, "policy reloaded"),
        Err(e) => tracing::warn!(
            policy = %source,
            error = %e,
            "policy NOT reloaded, keeping the previous one"
        ),
    }
}
