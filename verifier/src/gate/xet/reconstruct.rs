//! Reconstruction: the bytes of a file a checked shard describes, streamed term by term from
//! the namespace's stored xorbs, each chunk's hash checked again as it is decoded (the stored
//! xorb must still be the one checked when it was uploaded).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;

use super::hash::{XetHash, chunk_hash};
use super::shard::FileInfo;
use super::xorb::{ChunkEntry, decode_chunk_into};
use crate::gate::store::{ByteStream, Store, XetObjectKind};

/// The bytes of a file as they are reconstructed; an `Err` names what went wrong.
pub type FileBody = ByteStream<'static>;

struct State {
    store: Arc<dyn Store>,
    namespace: String,
    file: FileInfo,
    indexes: Arc<HashMap<XetHash, Vec<ChunkEntry>>>,
    next_term: usize,
    /// The last xorb read, kept for the next term if it names the same one.
    xorb: Option<(XetHash, Arc<Vec<u8>>)>,
}

/// Streams the bytes of `file`, whose terms `indexes` (the chunk index of every xorb the
/// shard names) were checked against.
pub fn file_body(
    store: Arc<dyn Store>,
    namespace: &str,
    file: &FileInfo,
    indexes: Arc<HashMap<XetHash, Vec<ChunkEntry>>>,
) -> FileBody {
    let state = State {
        store,
        namespace: namespace.to_string(),
        file: file.clone(),
        indexes,
        next_term: 0,
        xorb: None,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.next_term == s.file.terms.len() {
            return None;
        }
        let item = next_term(&mut s).await.map_err(std::io::Error::other);
        s.next_term = if item.is_ok() {
            s.next_term + 1
        } else {
            s.file.terms.len()
        };
        Some((item, s))
    }))
}

async fn next_term(s: &mut State) -> Result<Bytes, String> {
    let term = s.file.terms[s.next_term].clone();
    let index = s
        .indexes
        .get(&term.xorb)
        .ok_or_else(|| format!("xorb {} has no chunk index", term.xorb))?;
    let body = match &s.xorb {
        Some((hash, body)) if *hash == term.xorb => body.clone(),
        _ => {
            let body = s
                .store
                .xet_object(&s.namespace, XetObjectKind::Xorb, &term.xorb.to_hex())
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("xorb {} is no longer stored", term.xorb))?;
            let body = Arc::new(body);
            s.xorb = Some((term.xorb, body.clone()));
            body
        }
    };
    let chunks = index[term.start as usize..term.end as usize].to_vec();
    // Decoded and hashed on the bulk pool, while the receiver hashes and writes the last term.
    crate::gate::bulk::run(move || {
        let mut out = Vec::with_capacity(term.len as usize);
        let mut scratch = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let from = out.len();
            decode_chunk_into(&body, chunk.offset as usize, &mut out, &mut scratch).map_err(
                |why| {
                    format!(
                        "xorb {} chunk {}: {why}",
                        term.xorb,
                        term.start as usize + i
                    )
                },
            )?;
            if chunk_hash(&out[from..]) != chunk.hash {
                return Err(format!(
                    "xorb {} chunk {} no longer has the hash it was stored with",
                    term.xorb,
                    term.start as usize + i
                ));
            }
        }
        Ok(Bytes::from(out))
    })
    .await
    .map_err(|e| e.to_string())?
}
