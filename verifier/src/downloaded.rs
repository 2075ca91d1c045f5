//! Which files a checkpoint must hold: all of them, or (for what a Hugging Face client
//! downloaded) the ones present plus the weights a loader loads. The attestation check and the
//! `model.sig` check apply the same rule.

use std::collections::BTreeSet;
use std::path::Path;

use weightgate_attest::reading::ShardIndex;

/// Which listed (attested or signed) files must be on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectScope {
    /// Every listed file (a checkpoint as published).
    #[default]
    Whole,
    /// What a Hugging Face client downloaded: the files present are bound; listed files never
    /// downloaded are reported as not downloaded, except the weights a model loads (the default
    /// single weights file, and every shard a present index names), which must be there. A
    /// present file that is not listed is still a failure.
    Downloaded,
}

/// Weights file names the Hugging Face loaders take by default when there is no index
/// (transformers, peft, diffusers): one of these listed in a folder must be present.
const DEFAULT_WEIGHTS_FILES: &[&str] = &[
    "model.safetensors",
    "adapter_model.safetensors",
    "diffusion_pytorch_model.safetensors",
];

/// Whether a file holds weights a loader reads.
pub(crate) fn is_weights(path: &str) -> bool {
    path.ends_with(".safetensors")
}

/// Whether a file holds weights in any format a loader reads (PyTorch pickles, GGUF, Keras,
/// Flax beside safetensors): a download holding none of them vouches for no weights.
fn holds_weights(path: &str) -> bool {
    const FORMATS: &[&str] = &[
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".gguf",
        ".ckpt",
        ".h5",
        ".msgpack",
    ];
    let name = path.rsplit_once('/').map_or(path, |(_, n)| n);
    name != "training_args.bin" && FORMATS.iter().any(|f| name.ends_with(f))
}

/// The listed files a Hugging Face loader needs for the weights: in each folder, the default
/// single weights file when listed, else its index when listed (the shards a present index
/// names are required by the checkpoint reader itself, which refuses an index whose shards are
/// absent).
pub(crate) fn loaded_weights<'a>(listed: &BTreeSet<&'a str>) -> BTreeSet<&'a str> {
    listed
        .iter()
        .copied()
        .filter(|p| {
            let (folder, name) = p.rsplit_once('/').unwrap_or(("", p));
            if DEFAULT_WEIGHTS_FILES.contains(&name) {
                return true;
            }
            name.strip_suffix(".index.json").is_some_and(|single| {
                DEFAULT_WEIGHTS_FILES.contains(&single) && {
                    let single = if folder.is_empty() {
                        single.to_string()
                    } else {
                        format!("{folder}/{single}")
                    };
                    !listed.contains(single.as_str())
                }
            })
        })
        .collect()
}

/// Listed files that are absent, split by `scope` into those that must be there (`missing`)
/// and those merely never downloaded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Absent {
    pub missing: Vec<String>,
    pub not_downloaded: Vec<String>,
}

/// The listed weights files that the indexes present on disk under `root` name: a loader that
/// fetched an index fetches every shard it names. An index that cannot be read names, to be
/// safe, every listed weights file in its folder.
pub(crate) fn shards_of_present_indexes(
    root: &Path,
    listed: &BTreeSet<&str>,
    present: &BTreeSet<&str>,
) -> BTreeSet<String> {
    let mut shards = BTreeSet::new();
    for index in present
        .iter()
        .filter(|p| p.ends_with(".safetensors.index.json"))
    {
        match ShardIndex::read(root, index) {
            Ok(parsed) => shards.extend(parsed.weight_map.into_values()),
            Err(_) => {
                let folder = index.rsplit_once('/').map(|(d, _)| d);
                shards.extend(
                    listed
                        .iter()
                        .filter(|p| is_weights(p) && p.rsplit_once('/').map(|(d, _)| d) == folder)
                        .map(|p| p.to_string()),
                );
            }
        }
    }
    shards
}

/// Sorts the `listed` files (in their order) that are not `present` by `scope`; `required`
/// are listed files a download must hold besides the weights a loader loads by default (the
/// shards a present index names). In a download, when no listed weights file is present at
/// all, the first listed one is missing: an "allowed" would vouch for no weights.
pub(crate) fn absent_files<'a>(
    listed: impl IntoIterator<Item = &'a str>,
    present: &BTreeSet<&str>,
    required: &BTreeSet<String>,
    scope: SubjectScope,
) -> Absent {
    let listed: Vec<&str> = listed.into_iter().collect();
    let set: BTreeSet<&str> = listed.iter().copied().collect();
    let loaded = loaded_weights(&set);
    let mut absent = Absent::default();
    for path in &listed {
        if present.contains(path) {
            continue;
        }
        if scope == SubjectScope::Downloaded && !loaded.contains(path) && !required.contains(*path)
        {
            absent.not_downloaded.push(path.to_string());
        } else {
            absent.missing.push(path.to_string());
        }
    }
    if scope == SubjectScope::Downloaded
        && !listed
            .iter()
            .any(|p| holds_weights(p) && present.contains(p))
        && let Some(first) = listed.iter().find(|p| holds_weights(p))
        && !absent.missing.iter().any(|m| m == first)
    {
        absent.not_downloaded.retain(|p| p != first);
        absent.missing.push(first.to_string());
    }
    absent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(v: &[&'a str]) -> BTreeSet<&'a str> {
        v.iter().copied().collect()
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    const SHARDED: &[&str] = &[
        "README.md",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ];

    #[test]
    fn a_whole_checkpoint_misses_every_absent_file() {
        let a = absent_files(
            SHARDED.iter().copied(),
            &set(&["config.json"]),
            &none(),
            SubjectScope::Whole,
        );
        assert_eq!(a.missing.len(), 4);
        assert!(a.not_downloaded.is_empty());
    }

    #[test]
    fn a_download_lists_what_the_loader_never_fetched() {
        let present = set(&[
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]);
        let a = absent_files(
            SHARDED.iter().copied(),
            &present,
            &none(),
            SubjectScope::Downloaded,
        );
        assert_eq!(a.not_downloaded, ["README.md"]);
        assert!(a.missing.is_empty());
    }

    #[test]
    fn a_download_must_hold_the_index_or_the_single_weights_file() {
        let a = absent_files(
            SHARDED.iter().copied(),
            &set(&["config.json"]),
            &none(),
            SubjectScope::Downloaded,
        );
        assert!(
            a.missing
                .contains(&"model.safetensors.index.json".to_string()),
            "{a:?}"
        );
        let single = ["config.json", "model.safetensors", "README.md"];
        let a = absent_files(
            single,
            &set(&["config.json"]),
            &none(),
            SubjectScope::Downloaded,
        );
        assert_eq!(a.missing, ["model.safetensors"]);
        assert_eq!(a.not_downloaded, ["README.md"]);
    }

    #[test]
    fn a_download_holds_every_shard_its_index_names() {
        let present = set(&[
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
        ]);
        let required = [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]
        .map(String::from)
        .into();
        let a = absent_files(
            SHARDED.iter().copied(),
            &present,
            &required,
            SubjectScope::Downloaded,
        );
        assert_eq!(a.missing, ["model-00002-of-00002.safetensors"]);
        assert_eq!(a.not_downloaded, ["README.md"]);
    }

    #[test]
    fn the_shards_of_a_present_index_are_read_from_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("sub/model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("other.safetensors.index.json"), b"not json").unwrap();
        let listed = set(&[
            "sub/model-00001-of-00002.safetensors",
            "sub/model-00002-of-00002.safetensors",
            "sub/model.safetensors.index.json",
            "other.safetensors.index.json",
            "x.safetensors",
            "sub/consolidated.safetensors",
        ]);
        let present = set(&[
            "sub/model.safetensors.index.json",
            "other.safetensors.index.json",
        ]);
        let shards = shards_of_present_indexes(dir.path(), &listed, &present);
        // The readable index names its one shard; the unreadable one, every weights file beside it.
        assert_eq!(
            shards,
            ["sub/model-00001-of-00002.safetensors", "x.safetensors"]
                .map(String::from)
                .into()
        );
    }

    #[test]
    fn a_download_without_any_weights_vouches_for_nothing() {
        // Weights under a name no loader takes by default: at least one must be present.
        let listed = ["config.json", "weights/custom.safetensors"];
        let a = absent_files(
            listed,
            &set(&["config.json"]),
            &none(),
            SubjectScope::Downloaded,
        );
        assert_eq!(a.missing, ["weights/custom.safetensors"]);
        assert!(a.not_downloaded.is_empty());
        // The same for weights in another format, whatever else was fetched.
        let listed = ["config.json", "training_args.bin", "pytorch_model.bin"];
        let a = absent_files(
            listed,
            &set(&["config.json", "training_args.bin"]),
            &none(),
            SubjectScope::Downloaded,
        );
        assert_eq!(a.missing, ["pytorch_model.bin"]);
    }
}
