//! `*.safetensors.index.json`: the `weight_map` of a sharded checkpoint, checked against the
//! shards' own headers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::CheckpointError;
use crate::path_rules::check_relative_path;
use crate::safetensors_header::SafetensorsHeader;

/// Largest index file read: a 10^6-tensor `weight_map` is about 100 MB, far beyond real models.
pub const MAX_INDEX_LEN: u64 = 64 << 20;

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
struct RawIndex {
    #[serde(default)]
    metadata: Option<RawIndexMetadata>,
    weight_map: UniqueWeightMap,
}

#[derive(Deserialize)]
struct RawIndexMetadata {
    #[serde(default)]
    total_size: Option<u64>,
}

struct UniqueWeightMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for UniqueWeightMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueWeightMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`weight_map` as an object of tensor names to shard file names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueWeightMap, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format_args!(
                            "tensor `{key}` appears twice in `weight_map`"
                        )));
                    }
                    out.push((key, value));
                }
                Ok(UniqueWeightMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl ShardIndex {
    /// Parses index bytes found at relative path `path`; shard names become root-relative.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self, CheckpointError> {
        let raw: RawIndex = serde_json::from_slice(bytes)
            .map_err(|e| CheckpointError::index(path, format!("JSON: {e}")))?;
        let dir = path.rsplit_once('/').map(|(d, _)| d);
        let mut weight_map = BTreeMap::new();
        for (tensor, shard) in raw.weight_map.0 {
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
            if !header.tensors.iter().any(|t| &t.name == tensor) {
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
