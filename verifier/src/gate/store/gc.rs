//! `store gc`: removes what no revision record names (blobs, envelopes, grants, signature
//! files) once it is older than a grace period, and what killed admissions left behind
//! (staging folders, unfinished multipart uploads). Every revision record is read first; one
//! that cannot be read stops the collection before anything is removed, so a damaged record
//! never turns the blobs it names into garbage.
//!
//! The grace period protects admissions in progress: their blobs are written before the
//! record that names them, and are younger than the grace period until it is written. An
//! admission may also reuse an old unreferenced blob or envelope: in a folder store, admissions
//! hold a shared lock on `gc.lock` from staging to their ref and gc holds it exclusively, so
//! gc never runs beside one; in a bucket, gc lists the revision records again before each
//! delete and keeps what a new record names, and the admission checks every object its record
//! names (blobs, envelope, grants, signatures) once more after publishing.
//!
//! Xet objects follow [`super::xet_gc`] in both stores: a namespace's shards and xorbs stay
//! while a file they describe is named by one of its revisions or pending uploads, and
//! otherwise go once older than the grace period; uploads refresh the age of what they reuse
//! (a folder store sets the file's modification time, a bucket writes a refresh marker:
//! bucket_xet.rs). Uploads received and never committed expire with the grace period (a bucket
//! keeps the blobs of younger ones, which no record names yet); a bucket's records of refused
//! commits' objects go once their blob is removed or named by a revision; and expired upload
//! tickets and Xet access tokens go whatever the grace period.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{FolderStore, MAX_RECORD_LEN, RevisionRecord, StoreError, io_at as io};

/// What a collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Revision records read.
    pub revisions: usize,
    /// Objects or files removed, by store-relative name.
    pub removed: Vec<String>,
    /// Unreferenced objects kept because they are younger than the grace period.
    pub kept_recent: usize,
    /// Unfinished multipart uploads aborted (bucket), staging folders removed (folder), and
    /// expired or abandoned pending uploads removed.
    pub abandoned: usize,
}

/// Names every revision record refers to, by the store-relative name of the object, and the
/// files it names by namespace.
#[derive(Default)]
struct Referenced {
    names: BTreeSet<String>,
    files: Vec<NamedFile>,
}

/// A file a revision names: its namespace (the repository's organisation) and SHA-256.
struct NamedFile {
    namespace: String,
    sha256: String,
}

impl Referenced {
    fn add(&mut self, r: &RevisionRecord) {
        let namespace = r.repo.split('/').next().unwrap_or_default();
        for f in &r.files {
            self.names.insert(format!("blobs/{}", f.sha256));
            self.files.push(NamedFile {
                namespace: namespace.to_string(),
                sha256: f.sha256.clone(),
            });
        }
        self.names
            .insert(format!("attestations/{}.att", r.attestation));
        for g in &r.grants {
            self.names.insert(format!("grants/{g}.grant"));
        }
        for s in &r.signature_files {
            self.names.insert(format!("signatures/{}", s.sha256));
        }
    }

    /// The SHA-256 of every file the records name, by namespace (for its Xet objects).
    fn live_files(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &self.files {
            out.entry(f.namespace.clone())
                .or_default()
                .insert(f.sha256.clone());
        }
        out
    }

    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// The folders whose entries are collected when unreferenced.
const COLLECTED: [&str; 4] = ["blobs", "attestations", "grants", "signatures"];

fn parse_record(bytes: &[u8], name: &str) -> Result<RevisionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        location: name.to_string(),
        why: format!(
            "{e}; nothing was removed (a record that cannot be read may name blobs that \
                 must stay)"
        ),
    })
}

/// The Unix second before which an upload received has expired.
fn expired_before(now: SystemTime, grace: Duration) -> i64 {
    now.checked_sub(grace)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn older_than(modified: SystemTime, grace: Duration, now: SystemTime) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= grace)
}

impl FolderStore {
    /// Collects the folder store.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        let _no_admissions = self.lock_for_gc()?;
        let now = SystemTime::now();
        let mut report = GcReport::default();
        let mut referenced = Referenced::default();
        let repos = self.root.join("repos");
        for org in read_dir_or_empty(&repos)? {
            for name in read_dir_or_empty(&org)? {
                let revisions = name.join("revisions");
                for rec in read_dir_or_empty(&revisions)? {
                    if rec.extension().is_none_or(|e| e != "json") {
                        continue; // a writer's temp file
                    }
                    let bytes = weightgate_attest::io::read_capped(&rec, MAX_RECORD_LEN)
                        .map_err(io(&rec))?;
                    let record = parse_record(&bytes, &rec.display().to_string())?;
                    referenced.add(&record);
                    report.revisions += 1;
                }
            }
        }
        let expired_before = expired_before(now, grace);
        report.abandoned +=
            super::folder_pending::expire_pending(&self.root.join("uploads"), expired_before)?;
        // Read before anything is removed: a shard that cannot be read stops the collection.
        let xet = self.xet_garbage(&referenced.live_files(), grace, now, &mut report)?;
        for dir in COLLECTED {
            for path in read_dir_or_empty(&self.root.join(dir))? {
                let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let rel = format!("{dir}/{file}");
                if referenced.contains(&rel) {
                    continue;
                }
                let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
                if !older_than(meta.modified().map_err(io(&path))?, grace, now) {
                    report.kept_recent += 1;
                    continue;
                }
                fs::remove_file(&path).map_err(io(&path))?;
                report.removed.push(rel);
            }
        }
        // A blob's noted identity goes with it.
        for path in read_dir_or_empty(&self.root.join("blob-ids"))? {
            let blob = path.file_name().map(|n| self.root.join("blobs").join(n));
            if blob.is_some_and(|b| fs::symlink_metadata(b).is_err()) {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        // Staging folders of admissions whose process is gone, once past the grace period.
        for path in read_dir_or_empty(&self.root.join("tmp"))? {
            let Some(pid) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("admit-"))
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            let old = older_than(meta.modified().map_err(io(&path))?, grace, now);
            if old && !Path::new(&format!("/proc/{pid}")).exists() {
                fs::remove_dir_all(&path).map_err(io(&path))?;
                report.abandoned += 1;
            }
        }
        for path in xet {
            fs::remove_file(&path).map_err(io(&path))?;
            if let Ok(rel) = path.strip_prefix(&self.root) {
                report.removed.push(rel.display().to_string());
            }
        }
        Ok(report)
    }

    /// The Xet objects to remove, in removal order (a xorb's chunk index before the xorb: an
    /// index means its xorb is there). A xorb is as young as the younger of it and its index.
    fn xet_garbage(
        &self,
        published: &BTreeMap<String, BTreeSet<String>>,
        grace: Duration,
        now: SystemTime,
        report: &mut GcReport,
    ) -> Result<Vec<std::path::PathBuf>, StoreError> {
        use super::XetObjectKind as K;
        let old = |path: &Path| -> Result<bool, StoreError> {
            match fs::symlink_metadata(path) {
                Ok(meta) => Ok(older_than(meta.modified().map_err(io(path))?, grace, now)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(io(path)(e)),
            }
        };
        let mut garbage = Vec::new();
        for ns_dir in read_dir_or_empty(&self.root.join("xet"))? {
            let namespace = ns_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let mut live_files = published.get(&namespace).cloned().unwrap_or_default();
            live_files.extend(super::folder_pending::pending_digests(
                &self.root.join("uploads").join(&namespace),
            )?);
            let mut shards = Vec::new();
            for path in read_dir_or_empty(&ns_dir.join(K::Shard.dir()))? {
                if !super::is_sha256_hex(&file_name(&path)) {
                    // A write's temp file, which a killed gate left.
                    if old(&path)? {
                        garbage.push(path);
                    }
                    continue;
                }
                let bytes = weightgate_attest::io::read_capped(
                    &path,
                    crate::gate::xet::shard::MAX_SHARD_LEN as u64,
                )
                .map_err(io(&path))?;
                shards.push((file_name(&path), bytes));
            }
            let live = super::xet_gc::live_xet(
                shards.iter().map(|(h, b)| (h.as_str(), b.as_slice())),
                &live_files,
            )
            .map_err(|(hash, why)| StoreError::Corrupt {
                location: ns_dir.join(K::Shard.dir()).join(hash).display().to_string(),
                why: format!(
                    "{why}; nothing was removed (a shard that cannot be read may name xorbs \
                     that must stay)"
                ),
            })?;
            for (hash, _) in &shards {
                let path = ns_dir.join(K::Shard.dir()).join(hash);
                if live.shards.contains(hash) {
                    continue;
                }
                if old(&path)? {
                    garbage.push(path);
                } else {
                    report.kept_recent += 1;
                }
            }
            let xorbs = read_dir_or_empty(&ns_dir.join(K::Xorb.dir()))?;
            let indexes = read_dir_or_empty(&ns_dir.join(K::XorbIndex.dir()))?;
            let hashes: BTreeSet<String> =
                xorbs.iter().chain(&indexes).map(|p| file_name(p)).collect();
            for hash in hashes {
                if live.xorbs.contains(&hash) {
                    continue;
                }
                // Temp files of killed writes go too: only 64-hex names are objects.
                let index = ns_dir.join(K::XorbIndex.dir()).join(&hash);
                let xorb = ns_dir.join(K::Xorb.dir()).join(&hash);
                if !(old(&index)? && old(&xorb)?) {
                    report.kept_recent += 1;
                    continue;
                }
                garbage.extend([index, xorb].into_iter().filter(|p| p.exists()));
            }
        }
        Ok(garbage)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the expired records of every [`MetaKind::EXPIRING`] kind (LFS upload tickets, Xet
/// access tokens), whatever the grace period: an expired one is refused anyway. A record that
/// does not read as one with an expiry is removed too (nothing else writes there).
pub(super) async fn expire_records(store: &dyn super::Store) -> Result<usize, StoreError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut removed = 0;
    for kind in super::MetaKind::EXPIRING {
        for id in store.meta_ids(kind).await? {
            let Some(bytes) = store.meta(kind, &id).await? else {
                continue;
            };
            let expired = serde_json::from_slice::<super::Expiring>(&bytes)
                .map_or(true, |r| r.expires_at <= now);
            if expired && store.remove_meta(kind, &id).await? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The entries of `dir`, sorted; none if it does not exist.
fn read_dir_or_empty(dir: &Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut out: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            out.sort();
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(StoreError::Io {
            path: dir.to_path_buf(),
            error,
        }),
    }
}

#[cfg(feature = "bucket")]
impl super::BucketStore {
    /// Collects the bucket store: unreferenced objects past the grace period, and the
    /// multipart uploads listed by admissions that never finished (aborted).
    pub async fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        use object_store::ObjectStoreExt as _;
        use object_store::multipart::MultipartStore as _;

        let now = SystemTime::now();
        let mut report = GcReport::default();
        let prefix = match self.prefix_str() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let all = self.list("").await?;
        let rel = |key: &object_store::path::Path| -> Option<String> {
            key.as_ref().strip_prefix(&prefix).map(str::to_string)
        };
        let mut referenced = Referenced::default();
        // Pending uploads past the grace period expire; the blobs of the others stay.
        let expired_before = expired_before(now, grace);
        let sweep = self.expire_pending(expired_before).await?;
        report.abandoned += sweep.removed;
        // The SHA-256 of every live file of each namespace, for its Xet objects.
        let mut live_files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (namespace, sha) in &sweep.live {
            referenced.names.insert(format!("blobs/{sha}"));
            live_files
                .entry(namespace.clone())
                .or_default()
                .insert(sha.clone());
        }
        let mut records_read = BTreeSet::new();
        report.revisions += self
            .read_new_records(&all, &rel, &mut records_read, &mut referenced)
            .await?;
        for (namespace, files) in referenced.live_files() {
            live_files.entry(namespace).or_default().extend(files);
        }
        // Read before anything is removed: a shard that cannot be read stops the collection.
        let xet = self
            .xet_garbage(&all, &live_files, grace, now, &mut report)
            .await?;
        for meta in &all {
            let Some(name) = rel(&meta.location) else {
                continue;
            };
            let old = older_than(SystemTime::from(meta.last_modified), grace, now);
            if let Some(list) = name.strip_prefix("uploads/") {
                if !old || !list.ends_with(".json") {
                    continue;
                }
                // An admission that never finished: abort what it listed, then the list.
                let Some(bytes) = self.read_capped(&meta.location, MAX_RECORD_LEN).await? else {
                    continue;
                };
                let pending =
                    serde_json::from_slice::<super::bucket_staging::PendingUploads>(&bytes)
                        .map_err(|e| StoreError::Corrupt {
                            location: format!("s3://{}/{}", self.bucket(), meta.location),
                            why: format!("not a list of uploads: {e}"),
                        })?;
                {
                    for u in pending.uploads {
                        let key = object_store::path::Path::from(u.key.as_str());
                        match self.client().abort_multipart(&key, &u.upload_id).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                                report.abandoned += 1
                            }
                            Err(e) => return Err(self.storage(&key, e)),
                        }
                    }
                }
                self.client()
                    .delete(&meta.location)
                    .await
                    .map_err(|e| self.storage(&meta.location, e))?;
                report.removed.push(name);
                continue;
            }
            let collected = COLLECTED
                .iter()
                .any(|d| name.strip_prefix(d).is_some_and(|r| r.starts_with('/')));
            if !collected || referenced.contains(&name) {
                continue;
            }
            if !old {
                report.kept_recent += 1;
                continue;
            }
            // Re-checked before each delete: an admission may have reused this object since
            // the store was listed.
            let records = self.list("repos/").await?;
            report.revisions += self
                .read_new_records(&records, &rel, &mut records_read, &mut referenced)
                .await?;
            if referenced.contains(&name) {
                continue;
            }
            self.client()
                .delete(&meta.location)
                .await
                .map_err(|e| self.storage(&meta.location, e))?;
            report.removed.push(name);
        }
        for g in &xet {
            if let Some(name) = self.remove_xet_garbage(g).await? {
                report.removed.push(name);
            }
        }
        // A refused commit's record counts its blob against the namespace's cap until the blob
        // is removed, or turns out to be named by a revision or a pending upload.
        let listed: BTreeSet<String> = all.iter().filter_map(|m| rel(&m.location)).collect();
        for (key, sha) in &sweep.refused {
            let blob = format!("blobs/{sha}");
            let settled = !listed.contains(&blob)
                || referenced.contains(&blob)
                || report.removed.contains(&blob);
            if settled {
                match self.client().delete(key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.storage(key, e)),
                }
                report.abandoned += 1;
            }
        }
        Ok(report)
    }

    /// Reads the revision records in `listed` not read before and adds what they name.
    async fn read_new_records(
        &self,
        listed: &[object_store::ObjectMeta],
        rel: &impl Fn(&object_store::path::Path) -> Option<String>,
        read: &mut BTreeSet<String>,
        referenced: &mut Referenced,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for meta in listed {
            let Some(name) = rel(&meta.location) else {
                continue;
            };
            let parts: Vec<&str> = name.split('/').collect();
            if let ["repos", _, _, "revisions", file] = parts.as_slice()
                && file.ends_with(".json")
                && !read.contains(&name)
            {
                let Some(bytes) = self.read_capped(&meta.location, MAX_RECORD_LEN).await? else {
                    continue; // removed since listed
                };
                let shown = format!("s3://{}/{}", self.bucket(), meta.location);
                referenced.add(&parse_record(&bytes, &shown)?);
                read.insert(name);
                count += 1;
            }
        }
        Ok(count)
    }
}
