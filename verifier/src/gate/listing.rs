//! A revision's files as the Hub API lists them (attested files, then signature files), with
//! an index by path and the folders that hold them: built once per revision and second, so a
//! `paths-info` request costs a lookup per asked path, not a scan of the revision.

use std::collections::{BTreeSet, HashMap};

use super::store::RevisionRecord;

/// One listed file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The listed files of one revision, indexed.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    by_path: HashMap<String, usize>,
    /// Every folder that holds a listed file.
    pub directories: BTreeSet<String>,
}

/// What a listed path is.
pub enum Found<'a> {
    File(&'a Entry),
    Directory,
}

impl Listing {
    pub fn of(m: &RevisionRecord) -> Self {
        let entries: Vec<Entry> = m
            .files
            .iter()
            .map(|f| (&f.path, f.size, &f.sha256))
            .chain(
                m.signature_files
                    .iter()
                    .map(|f| (&f.path, f.size, &f.sha256)),
            )
            .map(|(path, size, sha256)| Entry {
                path: path.clone(),
                size,
                sha256: sha256.clone(),
            })
            .collect();
        let mut by_path = HashMap::with_capacity(entries.len());
        let mut directories = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            by_path.entry(e.path.clone()).or_insert(i);
            let mut end = e.path.len();
            while let Some(i) = e.path[..end].rfind('/') {
                if !directories.insert(e.path[..i].to_string()) {
                    break; // its parents are in already
                }
                end = i;
            }
        }
        Listing {
            entries,
            by_path,
            directories,
        }
    }

    /// The file or folder at `path` (a trailing `/` ignored), if listed.
    pub fn find(&self, path: &str) -> Option<Found<'_>> {
        let path = path.trim_end_matches('/');
        if let Some(&i) = self.by_path.get(path) {
            return Some(Found::File(&self.entries[i]));
        }
        self.directories.contains(path).then_some(Found::Directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::store::{AdmittedFile, BlobIdentity};

    fn file(path: &str) -> AdmittedFile {
        AdmittedFile {
            path: path.into(),
            size: 1,
            sha256: "0".repeat(64),
            blake3: "0".repeat(64),
            blob: BlobIdentity::Object { etag: None },
        }
    }

    #[test]
    fn files_and_every_enclosing_folder_are_found() {
        let m = RevisionRecord {
            repo: "a/b".into(),
            revision: "0".repeat(40),
            admitted_at: 0,
            attestation: String::new(),
            grants: vec![],
            header_parameters: 0,
            model_sig: false,
            signature_files: vec![],
            files: vec![file("a/b/c.bin"), file("a/d.bin"), file("e.bin")],
        };
        let l = Listing::of(&m);
        assert!(matches!(l.find("a/b/c.bin"), Some(Found::File(_))));
        assert!(matches!(l.find("e.bin"), Some(Found::File(_))));
        for d in ["a", "a/b", "a/b/"] {
            assert!(matches!(l.find(d), Some(Found::Directory)), "{d}");
        }
        assert!(l.find("a/b/c").is_none());
        assert!(l.find("").is_none());
        assert_eq!(
            l.directories.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "a/b"]
        );
    }
}
