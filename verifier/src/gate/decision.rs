//! The gate's decisions: the verdict on an admitted revision for one request (its time and
//! destination), from the admitted facts and the policy in force, without hashing; a per-second
//! cache; policy reloads; the clock. Nothing here speaks HTTP beyond carrying the rendered
//! refusal, so every front-end of the gate (the Hub API, an admission webhook) decides alike.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;

use super::audit::AuditLog;
use super::disclosure;
use super::listing::Listing;
use super::store::{
    RevisionRecord, Store, StoreError, check_repo_id, is_revision_id, is_short_revision_id,
};
use crate::decision::Decision;
use crate::policy::{Context, Policy, PolicyError};
use crate::stages::{AdmittedFacts, SubjectSource};
use crate::verify::{VerifyError, VerifyRequest, verify};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Where the gate's time comes from.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// Why no record was found for a request.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no such repository")]
    RepoNotFound,
    #[error("no such revision")]
    RevisionNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a policy reload kept the policy in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: no policy there")]
    NoSharedPolicy(String),
}

/// Why a decision could not be made for an admitted revision (the store, not the request).
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The blocking task that decides did not finish (a panic, or the runtime shutting down).
    #[error("the decision task failed: {0}")]
    Task(String),
}

/// The gate's decision part: the store, the policy in force, verdicts per request through a
/// per-second cache, the audit log and the clock. The Hub API serves from it; anything else
/// that must decide (an admission webhook) can call it alone.
pub struct Gate {
    pub store: Arc<dyn Store>,
    pub policy_path: PathBuf,
    pub policy: RwLock<Arc<Policy>>,
    pub audit: AuditLog,
    /// Decisions by (repo, revision, destination) for the current second and policy
    /// generation. Every time-dependent check works in whole seconds, so within one second the
    /// same inputs give the same decision; a reload starts a new generation at once. The repo
    /// is part of the key: one attestation admitted by two tenants carries each tenant's own
    /// grants, so it may be allowed for one and refused for the other.
    cache: Mutex<DecisionCache>,
    /// Decisions computed at once (each decodes and checks a whole attestation, off the async
    /// runtime): bounds CPU and memory when many distinct requests miss the cache.
    deciding: tokio::sync::Semaphore,
    /// Listings built or rendered at once (off the async runtime, like decisions).
    listing: tokio::sync::Semaphore,
    /// Revision ids by repo, for shortened ids: listed at most once per
    /// [`SHORT_ID_REFRESH`] per repo, so a shortened id never lists the store per request.
    short_ids: tokio::sync::Mutex<HashMap<String, RevisionIds>>,
    clock: Arc<dyn Clock>,
    /// Whether reloads read the store's shared policy instead of the policy file.
    follows_shared_policy: std::sync::atomic::AtomicBool,
    /// The shared policy's bytes last read (valid or not).
    shared_policy_applied: tokio::sync::Mutex<Option<Vec<u8>>>,
}

/// A decision with its refusal already rendered, so a cached refusal costs no serialization.
pub struct Verdict {
    pub decision: Decision,
    pub refusal: Option<RenderedRefusal>,
}

/// A refusal as every front-end shows it: one line of text and the JSON document.
pub struct RenderedRefusal {
    pub message: String,
    pub body: axum::body::Bytes,
}

impl Verdict {
    fn new(decision: Decision) -> Self {
        let refusal = (!decision.allowed).then(|| {
            let message = disclosure::public_refusal_message(&decision);
            RenderedRefusal {
                body:
                    json!({ "error": message, "decision": disclosure::public_decision(&decision) })
                        .to_string()
                        .into(),
                message,
            }
        });
        Verdict { decision, refusal }
    }
}

/// (repo, revision, destination); the policy generation and the second are the cache's own.
type DecisionKey = (String, String, Option<String>);

#[derive(Default)]
struct DecisionCache {
    second: i64,
    generation: u64,
    decisions: HashMap<DecisionKey, Arc<Verdict>>,
    /// Manifests by (repo, revision as asked), same lifetime: a new admission shows within 1 s.
    manifests: HashMap<(String, String), Arc<RevisionRecord>>,
    /// Listings by (repo, revision id), same lifetime.
    listings: HashMap<(String, String), Arc<Listing>>,
}

/// One repository's revision ids, sorted, and when they were listed.
type RevisionIds = (std::time::Instant, Arc<Vec<String>>);

/// How old the index of revision ids may be: a revision admitted since is found by its full id
/// or a ref at once, by a shortened id within this time.
pub const SHORT_ID_REFRESH: Duration = Duration::from_secs(5);

impl Gate {
    pub fn new(
        store: Arc<dyn Store>,
        policy_path: PathBuf,
        policy: Policy,
        audit: AuditLog,
    ) -> Self {
        Gate {
            policy_path,
            policy: RwLock::new(Arc::new(policy)),
            audit,
            cache: Mutex::new(DecisionCache::default()),
            deciding: tokio::sync::Semaphore::new(cores()),
            listing: tokio::sync::Semaphore::new(cores()),
            short_ids: Default::default(),
            clock: Arc::new(SystemClock),
            follows_shared_policy: Default::default(),
            shared_policy_applied: Default::default(),
            store,
        }
    }

    /// Decides by `clock` instead of the system's (a fixed time in tests, a replayed one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The gate's time, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Makes the store's shared policy (a bucket's `policy.toml`) this gate's one policy
    /// source: from now on [`Gate::reload`] reads it instead of the policy file, so a reload
    /// can never bring back a policy without the revocations published through the store. An
    /// error for a store that shares no policy.
    pub fn use_shared_policy(&self) -> Result<(), StoreError> {
        if self.store.shared_policy_location().is_none() {
            return Err(StoreError::Config(format!(
                "{}: polling for a policy needs a store that several gates share \
                 (s3://BUCKET/PREFIX)",
                self.store.location()
            )));
        }
        self.follows_shared_policy
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Applies the store's shared policy every `every` while the future runs, whenever its
    /// bytes change (after [`Gate::use_shared_policy`]). Errors (storage unreachable, an
    /// invalid policy) are logged and the policy in force stays.
    pub async fn follow_shared_policy(&self, every: Duration) -> Result<(), StoreError> {
        self.use_shared_policy()?;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.apply_shared_policy(false).await {
                Ok(true) => {
                    tracing::info!(policy = %self.policy_source(), "policy reloaded from the store")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    policy = %self.policy_source(),
                    error = %e,
                    "policy NOT reloaded, keeping the previous one"
                ),
            }
        }
    }

    /// Where reloads read the policy: the shared policy's location or the policy file.
    pub fn policy_source(&self) -> String {
        match self.store.shared_policy_location() {
            Some(l)
                if self
                    .follows_shared_policy
                    .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                l
            }
            _ => self.policy_path.display().to_string(),
        }
    }

    /// Reads the shared policy and applies it if `force` or its bytes differ from the last
    /// ones read; `Ok(true)` when applied. Reads and applies are serialized, so a slow read of
    /// older bytes cannot land after a newer one.
    async fn apply_shared_policy(&self, force: bool) -> Result<bool, ReloadError> {
        let source = self.policy_source();
        let mut applied = self.shared_policy_applied.lock().await;
        let text = match self.store.shared_policy().await? {
            Some(t) => t,
            None => return Err(ReloadError::NoSharedPolicy(source)),
        };
        if !force && applied.as_deref() == Some(&text[..]) {
            return Ok(false);
        }
        // An invalid policy is reported once, not at every poll.
        let result = self.apply_policy_text(&text, &source);
        *applied = Some(text);
        result?;
        Ok(true)
    }

    /// Re-reads the policy from this gate's one source ([`Gate::policy_source`]): the policy
    /// file, or the store's shared policy after [`Gate::use_shared_policy`]. The old policy
    /// stays if the new one is invalid or unreadable. The caller decides when (the CLI does on
    /// SIGHUP) and reports the outcome.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        if self
            .follows_shared_policy
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.apply_shared_policy(true).await?;
            return Ok(());
        }
        let p = Policy::load(&self.policy_path)?;
        self.install(p);
        Ok(())
    }

    /// Applies a policy given as text (`source` names it in errors; key paths in it are read
    /// beside the policy file), as [`Gate::reload`] does: the old policy stays if the new one
    /// is invalid, and cached decisions of the old one are dropped.
    pub fn apply_policy_text(&self, text: &[u8], source: &str) -> Result<(), PolicyError> {
        let text = std::str::from_utf8(text).map_err(|_| PolicyError {
            source_name: source.to_string(),
            line: None,
            key: String::new(),
            problem: "not UTF-8 text".into(),
        })?;
        let base = self
            .policy_path
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let p = Policy::parse(text, source, base)?;
        self.install(p);
        Ok(())
    }

    fn install(&self, p: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.generation += 1;
        c.decisions.clear();
        c.manifests.clear();
        c.listings.clear();
    }

    /// The record of `repo` at `rev` (a ref, a revision id or a prefix of one) through the
    /// per-second cache.
    pub async fn record(&self, repo: &str, rev: &str) -> Result<Arc<RevisionRecord>, LookupError> {
        let second = self.now();
        let key = (repo.to_string(), rev.to_string());
        {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.second == second
                && let Some(m) = c.manifests.get(&key)
            {
                return Ok(m.clone());
            }
        }
        let m = Arc::new(self.lookup(repo, rev).await?);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.second == second && c.manifests.len() < 10_000 {
            c.manifests.insert(key, m.clone());
        }
        Ok(m)
    }

    async fn lookup(&self, repo: &str, rev: &str) -> Result<RevisionRecord, LookupError> {
        if check_repo_id(repo).is_err() {
            return Err(LookupError::RepoNotFound);
        }
        if !self.store.has_repo(repo).await? {
            return Err(LookupError::RepoNotFound);
        }
        // A ref of that name wins over a shortened id.
        if let Some(m) = self.store.manifest(repo, rev).await? {
            return Ok(m);
        }
        if is_revision_id(rev) || !is_short_revision_id(rev) {
            return Err(LookupError::RevisionNotFound);
        }
        let Some(id) = self.resolve_short_id(repo, rev).await? else {
            return Err(LookupError::RevisionNotFound);
        };
        self.store
            .manifest(repo, &id)
            .await?
            .ok_or(LookupError::RevisionNotFound)
    }

    /// The one admitted revision of `repo` whose id starts with `prefix`, from the index of
    /// revision ids (listed again when older than [`SHORT_ID_REFRESH`]); `None` when none or
    /// several do.
    async fn resolve_short_id(
        &self,
        repo: &str,
        prefix: &str,
    ) -> Result<Option<String>, StoreError> {
        let ids = {
            let mut index = self.short_ids.lock().await;
            match index.get(repo) {
                Some((at, ids)) if at.elapsed() < SHORT_ID_REFRESH => ids.clone(),
                _ => {
                    let ids = Arc::new(self.store.revision_ids(repo).await?);
                    if index.len() >= 10_000 {
                        index.clear();
                    }
                    index.insert(repo.to_string(), (std::time::Instant::now(), ids.clone()));
                    ids
                }
            }
        };
        let i = ids.partition_point(|id| id.as_str() < prefix);
        let mut matching = ids[i..].iter().take_while(|id| id.starts_with(prefix));
        Ok(match (matching.next(), matching.next()) {
            (Some(id), None) => Some(id.clone()),
            _ => None,
        })
    }

    /// The listing of an admitted revision through the per-second cache, built off the async
    /// runtime.
    pub async fn listing(&self, m: &Arc<RevisionRecord>) -> Result<Arc<Listing>, DecideError> {
        let second = self.now();
        let key = (m.repo.clone(), m.revision.clone());
        {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.second == second
                && let Some(l) = c.listings.get(&key)
            {
                return Ok(l.clone());
            }
        }
        let record = m.clone();
        let l = Arc::new(self.off_runtime(move || Listing::of(&record)).await?);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.second == second && c.listings.len() < 10_000 {
            c.listings.insert(key, l.clone());
        }
        Ok(l)
    }

    /// Runs per-request CPU work (building or rendering a listing) on the blocking pool, at
    /// most one task per core at once, so the async threads stay free for other requests.
    pub async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DecideError> {
        let _permit = self
            .listing
            .acquire()
            .await
            .map_err(|e| DecideError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| DecideError::Task(e.to_string()))
    }

    /// [`Gate::decide`] through the per-second cache, on the blocking pool.
    pub async fn decide_cached(
        self: &Arc<Self>,
        m: Arc<RevisionRecord>,
        destination: Option<String>,
    ) -> Result<Arc<Verdict>, DecideError> {
        let second = self.now();
        let key = (m.repo.clone(), m.revision.clone(), destination.clone());
        let generation = {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.second != second {
                c.second = second;
                c.decisions.clear();
                c.manifests.clear();
                c.listings.clear();
            }
            if let Some(d) = c.decisions.get(&key) {
                return Ok(d.clone());
            }
            c.generation
        };
        let _permit = self
            .deciding
            .acquire()
            .await
            .map_err(|e| DecideError::Task(e.to_string()))?;
        let envelope = self.store.attestation(&m).await?;
        let grants = self.store.grants(&m).await?;
        let gate = self.clone();
        let d =
            tokio::task::spawn_blocking(move || gate.decide(&m, &envelope, grants, destination))
                .await
                .map_err(|e| DecideError::Task(e.to_string()))??;
        let d = Arc::new(Verdict::new(d));
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.second == second && c.generation == generation && c.decisions.len() < 10_000 {
            c.decisions.insert(key, d.clone());
        }
        Ok(d)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The decision for an admitted revision, now, for `destination`, from the envelope and
    /// grants it was admitted with (read from the store by the caller).
    pub fn decide(
        &self,
        m: &RevisionRecord,
        envelope: &[u8],
        grants: Vec<Vec<u8>>,
        destination: Option<String>,
    ) -> Result<Decision, DecideError> {
        let policy = self.policy();
        let req = VerifyRequest {
            envelope,
            subject: SubjectSource::Admitted(AdmittedFacts {
                header_parameters: m.header_parameters,
                model_sig_checked: m.model_sig,
            }),
            policy: &policy,
            context: Context {
                now: self.now(),
                destination,
            },
            grants,
            base_envelope: None,
        };
        Ok(verify(&req, &|_| {})?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::gate::admission::{Admission, AdmitRequest, admit};
    use crate::gate::store::FolderStore;

    /// A clock the test moves.
    struct Fixed(AtomicI64);

    impl Clock for Fixed {
        fn now(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn testdata(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(p)
    }

    const DEC_2026: i64 = 1_796_083_200;
    const JAN_2030: i64 = 1_893_456_000;

    #[tokio::test]
    async fn verdicts_follow_the_gate_clock_not_the_system_one() {
        let dir = tempfile::tempdir().unwrap();
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(
            &policy_path,
            format!(
                "[policy]\nname = \"clock\"\n[[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
                 valid_until = 2030-01-01T00:00:00Z\n",
                testdata("keys/test-lab.pub").display()
            ),
        )
        .unwrap();
        let policy = Policy::load(&policy_path).unwrap();
        let store = FolderStore::open(&dir.path().join("store")).unwrap();
        let envelope = std::fs::read(testdata("envelopes/golden_tiny.att")).unwrap();
        let req = AdmitRequest {
            repo: "lab/tiny",
            ref_name: "main",
            checkpoint: &testdata("checkpoints/tiny"),
            open: Default::default(),
            envelope: &envelope,
            grants: Vec::new(),
            policy: &policy,
            oms: None,
            now: DEC_2026,
        };
        match admit(&store, &req, &|_| {}).await.unwrap() {
            Admission::Admitted { .. } => {}
            Admission::Refused(d) => panic!("not admitted: {:?}", d.reasons),
        }
        let audit = AuditLog::open(Path::new("/dev/null")).unwrap();
        let clock = Arc::new(Fixed(AtomicI64::new(JAN_2030 - 1)));
        let gate = Arc::new(
            Gate::new(Arc::new(store), policy_path, policy, audit).with_clock(clock.clone()),
        );
        let record = gate.record("lab/tiny", "main").await.unwrap();
        let before = gate.decide_cached(record.clone(), None).await.unwrap();
        assert!(before.decision.allowed, "{:?}", before.decision.reasons);
        assert!(before.refusal.is_none());
        // One second later the key has expired: the cached verdict of the second before is
        // not reused.
        clock.0.store(JAN_2030, Ordering::Relaxed);
        let after = gate.decide_cached(record, None).await.unwrap();
        assert!(!after.decision.allowed);
        let refusal = after.refusal.as_ref().unwrap();
        assert!(
            refusal.message.contains("signature."),
            "{}",
            refusal.message
        );
        assert_eq!(after.decision.facts.now, JAN_2030);
    }
}
