//! `*.safetensors.index.json`: the `weight_map` of a sharded checkpoint, checked against the
//! shards' own headers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::error::CheckpointError;
use super::path_rules::check_relative_path;
use super::safetensors_header::SafetensorsHeader;

/// Largest index file read into memory. The largest real indexes (about 90k tensors) are under
/// 10 MB; 16 MiB keeps a hostile one inside verify's memory budget.
pub(crate) const MAX_INDEX_LEN: u64 = 16 << 20;

/// A parsed index file.
#[derive(Debug, Clone, Serialize)]
pub struct ShardIndex {
    /// Relative path of the index file.
    pub path: String,
    /// `metadata.total_size` when present.
    pub total_size: Option<u64>,
    /// Tensor name to shard path relative to the checkpoint root.
    pub weight_map: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawIndexMetadata {
    #[serde(default)]
    total_size: Option<u64>,
}

/// The index's top level: `metadata` and `weight_map`, anything else ignored (as the
/// Hugging Face loaders do). `max_entries` bounds the `weight_map` while it is read.
struct RawIndex {
    metadata: Option<RawIndexMetadata>,
    weight_map: Vec<(String, String)>,
}

struct IndexSeed {
    max_entries: usize,
}

impl<'de> de::DeserializeSeed<'de> for IndexSeed {
    type Value = RawIndex;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawIndex, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed {
    type Value = RawIndex;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an index object with `weight_map`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawIndex, A::Error> {
        let (mut metadata, mut weight_map) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" if metadata.is_none() => metadata = Some(map.next_value()?),
                "weight_map" if weight_map.is_none() => {
                    weight_map = Some(map.next_value_seed(WeightMapSeed {
                        max_entries: self.max_entries,
                    })?)
                }
                "metadata" | "weight_map" => {
                    return Err(de::Error::custom(format_args!("duplicate `{key}`")));
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(RawIndex {
            metadata: metadata.flatten(),
            weight_map: weight_map.ok_or_else(|| de::Error::missing_field("weight_map"))?,
        })
    }
}

struct WeightMapSeed {
    max_entries: usize,
}

impl<'de> de::DeserializeSeed<'de> for WeightMapSeed {
    type Value = Vec<(String, String)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WeightMapSeed {
    type Value = Vec<(String, String)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`weight_map` as an object of tensor names to shard file names")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: String = map.next_value()?;
            if out.len() == self.max_entries {
                return Err(de::Error::custom(format_args!(
                    "`weight_map` lists more than {} entries, far more than the shards' headers hold tensors",
                    self.max_entries
                )));
            }
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!(
                    "tensor `{key}` appears twice in `weight_map`"
                )));
            }
            out.push((key, value));
        }
        Ok(out)
    }
}

impl ShardIndex {
    /// Reads and parses the index at `root`/`path` (relative) with the caps an index opened
    /// with its checkpoint gets, for a caller that needs only the shard names.
    pub fn read(root: &std::path::Path, path: &str) -> Result<Self, CheckpointError> {
        use std::io::Read as _;
        let fs_path = root.join(path);
        let file = std::fs::File::open(&fs_path).map_err(|e| CheckpointError::io(&fs_path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CheckpointError::io(&fs_path, e))?;
        if bytes.len() as u64 > MAX_INDEX_LEN {
            return Err(CheckpointError::index(
                path,
                format!("more than the cap of {MAX_INDEX_LEN} bytes"),
            ));
        }
        Self::parse(&bytes, path, super::checkpoint::MAX_TENSORS_PER_CHECKPOINT)
    }

    /// Parses index bytes found at relative path `path`; shard names become root-relative.
    /// A `weight_map` longer than `max_entries` (the tensors the checkpoint's headers hold) is
    /// refused while it is read, so a hostile index cannot make us hold millions of entries.
    pub fn parse(bytes: &[u8], path: &str, max_entries: usize) -> Result<Self, CheckpointError> {
        use serde::de::DeserializeSeed as _;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw = IndexSeed { max_entries }
            .deserialize(&mut de)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| CheckpointError::index(path, format!("JSON: {e}")))?;
        let dir = path.rsplit_once('/').map(|(d, _)| d);
        let mut weight_map = BTreeMap::new();
        for (tensor, shard) in raw.weight_map {
            check_relative_path(&shard).map_err(|problem| {
                CheckpointError::index(
                    path,
                    format!("tensor `{tensor}`: shard `{shard}`: {problem}"),
                )
            })?;
            let shard = match dir {
                Some(d) => format!("{d}/{shard}"),
                None => shard,
            };
            weight_map.insert(tensor, shard);
        }
        Ok(ShardIndex {
            path: path.to_string(),
            total_size: raw.metadata.and_then(|m| m.total_size),
            weight_map,
        })
    }

    /// Checks that every tensor of every shard the index names is mapped exactly once, to the
    /// shard that holds it. `headers` maps root-relative safetensors paths to their headers.
    /// Returns warnings that do not make the checkpoint invalid.
    pub fn check_against(
        &self,
        headers: &HashMap<&str, &SafetensorsHeader>,
    ) -> Result<Vec<String>, CheckpointError> {
        let fail = |problem: String| CheckpointError::index(&self.path, problem);
        let mut shards: BTreeMap<&str, &SafetensorsHeader> = BTreeMap::new();
        // Tensor names per shard, for constant-time membership (a linear scan per entry would
        // make a large index quadratic).
        let mut names: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
        for (tensor, shard) in &self.weight_map {
            let header = match shards.get(shard.as_str()) {
                Some(h) => *h,
                None => {
                    let h = headers.get(shard.as_str()).ok_or_else(|| {
                        fail(format!(
                            "tensor `{tensor}` is mapped to shard `{shard}`, which is not a safetensors file in the checkpoint"
                        ))
                    })?;
                    shards.insert(shard, h);
                    h
                }
            };
            let in_shard = names
                .entry(shard.as_str())
                .or_insert_with(|| header.tensors.iter().map(|t| t.name.as_str()).collect());
            if !in_shard.contains(tensor.as_str()) {
                return Err(fail(format!(
                    "tensor `{tensor}` is mapped to `{shard}` but that shard's header has no such tensor"
                )));
            }
        }
        let mut holder: HashMap<&str, &str> = HashMap::new();
        for (shard, header) in &shards {
            for t in &header.tensors {
                if let Some(other) = holder.insert(&t.name, shard) {
                    return Err(fail(format!(
                        "tensor `{}` is in both `{other}` and `{shard}`",
                        t.name
                    )));
                }
            }
        }
        let mut data_bytes = 0u64;
        for (shard, header) in &shards {
            for t in &header.tensors {
                match self.weight_map.get(&t.name) {
                    Some(mapped) if mapped == shard => {}
                    Some(mapped) => {
                        return Err(fail(format!(
                            "tensor `{}` is in `{shard}` but `weight_map` places it in `{mapped}`",
                            t.name
                        )));
                    }
                    None => {
                        return Err(fail(format!(
                            "tensor `{}` in `{shard}` is missing from `weight_map`",
                            t.name
                        )));
                    }
                }
                data_bytes += t.data_offsets[1] - t.data_offsets[0];
            }
        }
        let mut warnings = Vec::new();
        if let Some(total) = self.total_size
            && total != data_bytes
        {
            warnings.push(format!(
                "{}: metadata.total_size is {total} but the shards hold {data_bytes} tensor bytes",
                self.path
            ));
        }
        Ok(warnings)
    }
}
