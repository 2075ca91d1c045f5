//! What the store records for an admitted revision: its files, the blob holding each, and how a
//! change to that blob behind the gate's back is detected.

use serde::{Deserialize, Serialize};

/// What was admitted for one revision of a repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevisionRecord {
    pub repo: String,
    pub revision: String,
    pub admitted_at: i64,
    /// SHA-256 of the whole envelope (file name under `attestations/`): two tenants admitting
    /// the same payload with different signatures each keep their own envelope.
    pub attestation: String,
    pub grants: Vec<String>,
    pub header_parameters: u64,
    /// Whether a `model.sig` was checked at admission (records without the field read as
    /// `false`, so a policy requiring one refuses them: fail closed).
    #[serde(default)]
    pub model_sig: bool,
    /// The attestation and the checked `model.sig`, served as files of the revision so a
    /// download carries what it was admitted with. Outside the attested file set by definition.
    #[serde(default)]
    pub signature_files: Vec<SignatureFile>,
    pub files: Vec<AdmittedFile>,
}

/// One attested file of an admitted revision and the blob that holds its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(from = "AdmittedFileFields", into = "AdmittedFileFields")]
pub struct AdmittedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
    /// How the blob looked when it was admitted: a blob that no longer looks so is never served
    /// and never reused without being hashed again.
    pub blob: BlobIdentity,
}

/// What identifies a stored blob's bytes without reading them. Which fields a backend records
/// is the backend's business; the checks compare what was recorded with what is there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobIdentity {
    /// A file in a folder store. Its owner can set the modification time back, not the
    /// status-change time; `inode` and `ctime` are absent in records written before they were
    /// kept, and such a blob is hashed again before reuse.
    File {
        mtime: (i64, i64),
        ctime: Option<(i64, i64)>,
        inode: Option<u64>,
    },
    /// An object in a bucket: any replacement gets a new ETag. `None` where the storage gave
    /// none: only the size is compared then, and the blob is hashed again before reuse.
    Object { etag: Option<String> },
}

impl BlobIdentity {
    /// Of a blob file's metadata, as a folder store records it.
    pub fn of_file(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        BlobIdentity::File {
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: Some((meta.ctime(), meta.ctime_nsec())),
            inode: Some(meta.ino()),
        }
    }

    /// Whether `now` shows the same bytes as this recorded identity, and the record says enough
    /// to be sure of it without reading them (what reuse without hashing needs).
    pub fn proves_unchanged(&self, now: &BlobIdentity) -> bool {
        let complete = match self {
            BlobIdentity::File { ctime, inode, .. } => ctime.is_some() && inode.is_some(),
            BlobIdentity::Object { etag } => etag.is_some(),
        };
        complete && self == now
    }

    /// Why `now` differs from this recorded identity, comparing what was recorded.
    pub fn change(&self, now: &BlobIdentity) -> Option<&'static str> {
        match (self, now) {
            (
                BlobIdentity::File {
                    mtime,
                    ctime,
                    inode,
                },
                BlobIdentity::File {
                    mtime: mtime_now,
                    ctime: ctime_now,
                    inode: inode_now,
                },
            ) => {
                if inode.is_some() && inode != inode_now {
                    Some("was replaced after admission")
                } else if mtime != mtime_now || (ctime.is_some() && ctime != ctime_now) {
                    Some("was modified after admission")
                } else {
                    None
                }
            }
            (BlobIdentity::Object { etag }, BlobIdentity::Object { etag: etag_now }) => {
                (etag.is_some() && etag != etag_now).then_some("was replaced after admission")
            }
            _ => Some("is held by another kind of store than the one that admitted it"),
        }
    }
}

/// The record's wire form: the blob identity is flat fields, so records written before the
/// identity grew its inode and status-change time still read, and a folder record still has
/// the `blob_mtime` fields older gates read.
#[derive(Serialize, Deserialize)]
struct AdmittedFileFields {
    path: String,
    size: u64,
    sha256: String,
    blake3: String,
    #[serde(default)]
    blob_mtime: i64,
    #[serde(default)]
    blob_mtime_nsec: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob_ctime: Option<(i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob_inode: Option<u64>,
    /// Present (possibly null) exactly in bucket records.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "present_or_absent"
    )]
    object_etag: Option<Option<String>>,
}

/// `Some(None)` is a field written as `null` (a bucket object without an ETag), `None` an absent
/// field (a folder record).
mod present_or_absent {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().and_then(Option::as_deref).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

impl From<AdmittedFileFields> for AdmittedFile {
    fn from(f: AdmittedFileFields) -> Self {
        let blob = match f.object_etag {
            Some(etag) => BlobIdentity::Object { etag },
            None => BlobIdentity::File {
                mtime: (f.blob_mtime, f.blob_mtime_nsec),
                ctime: f.blob_ctime,
                inode: f.blob_inode,
            },
        };
        AdmittedFile {
            path: f.path,
            size: f.size,
            sha256: f.sha256,
            blake3: f.blake3,
            blob,
        }
    }
}

impl From<AdmittedFile> for AdmittedFileFields {
    fn from(f: AdmittedFile) -> Self {
        let (mtime, ctime, inode, object_etag) = match f.blob {
            BlobIdentity::File {
                mtime,
                ctime,
                inode,
            } => (mtime, ctime, inode, None),
            BlobIdentity::Object { etag } => ((0, 0), None, None, Some(etag)),
        };
        AdmittedFileFields {
            path: f.path,
            size: f.size,
            sha256: f.sha256,
            blake3: f.blake3,
            blob_mtime: mtime.0,
            blob_mtime_nsec: mtime.1,
            blob_ctime: ctime,
            blob_inode: inode,
            object_etag,
        }
    }
}

/// A signature file served beside the weights (`weightgate.att`, `model.sig`), stored under
/// `signatures/<sha256>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(blob: BlobIdentity) -> AdmittedFile {
        AdmittedFile {
            path: "a".into(),
            size: 1,
            sha256: "00".into(),
            blake3: "11".into(),
            blob,
        }
    }

    #[test]
    fn records_round_trip_and_older_records_still_read() {
        for blob in [
            BlobIdentity::File {
                mtime: (2, 3),
                ctime: Some((4, 5)),
                inode: Some(6),
            },
            BlobIdentity::Object {
                etag: Some("\"e\"".into()),
            },
            BlobIdentity::Object { etag: None },
        ] {
            let f = file(blob);
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(
                serde_json::from_str::<AdmittedFile>(&json).unwrap(),
                f,
                "{json}"
            );
        }
        let older_folder = r#"{"path":"a","size":1,"sha256":"00","blake3":"11","blob_mtime":2,"blob_mtime_nsec":3}"#;
        let f: AdmittedFile = serde_json::from_str(older_folder).unwrap();
        assert_eq!(
            f.blob,
            BlobIdentity::File {
                mtime: (2, 3),
                ctime: None,
                inode: None
            }
        );
        let older_bucket = r#"{"path":"a","size":1,"sha256":"00","blake3":"11","blob_mtime":0,"blob_mtime_nsec":0,"object_etag":"\"e\""}"#;
        let f: AdmittedFile = serde_json::from_str(older_bucket).unwrap();
        assert_eq!(
            f.blob,
            BlobIdentity::Object {
                etag: Some("\"e\"".into())
            }
        );
    }

    #[test]
    fn only_a_complete_identity_proves_a_blob_unchanged() {
        let full = BlobIdentity::File {
            mtime: (2, 3),
            ctime: Some((4, 5)),
            inode: Some(6),
        };
        assert!(full.proves_unchanged(&full.clone()));
        let older = BlobIdentity::File {
            mtime: (2, 3),
            ctime: None,
            inode: None,
        };
        assert!(!older.proves_unchanged(&older.clone()));
        let touched = BlobIdentity::File {
            mtime: (2, 3),
            ctime: Some((9, 0)),
            inode: Some(6),
        };
        assert!(!full.proves_unchanged(&touched));
        assert_eq!(full.change(&touched), Some("was modified after admission"));
        // An older record compares what it has: the modification time.
        assert_eq!(older.change(&touched), None);
        let no_etag = BlobIdentity::Object { etag: None };
        assert!(!no_etag.proves_unchanged(&no_etag.clone()));
        assert!(full.change(&no_etag).is_some());
    }
}
