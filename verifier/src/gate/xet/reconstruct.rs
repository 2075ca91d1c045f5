//! Reconstruction: the bytes of a file a checked shard describes, streamed from the
//! namespace's stored xorbs in pieces of at most [`PIECE`] bytes, each chunk's hash checked
//! again as it is decoded (the stored xorb must still be the one checked when it was
//! uploaded). Pieces are decoded on the bulk pool while the receiver hashes and writes the
//! last one, and stay small enough for the allocator to reuse their memory (a buffer the size
//! of a whole term, up to a xorb's 64 MiB, is fresh pages, zeroed and faulted in each time).

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
    /// The first chunk of the next piece, counted from the term's start.
    next_chunk: u32,
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
        next_chunk: 0,
        xorb: None,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.next_term == s.file.terms.len() {
            return None;
        }
        let item = next_piece(&mut s).await.map_err(std::io::Error::other);
        if item.is_err() {
            s.next_term = s.file.terms.len();
        }
        Some((item, s))
    }))
}

/// Most bytes decoded into one piece (unless one chunk is larger).
const PIECE: u64 = 4 << 20;

/// The next piece of the current term; moves to the next term after its last chunk.
async fn next_piece(s: &mut State) -> Result<Bytes, String> {
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
    let first = term.start + s.next_chunk;
    let term_chunks = &index[first as usize..term.end as usize];
    let mut take = 0;
    let mut len = 0u64;
    while take < term_chunks.len() && (take == 0 || len + u64::from(term_chunks[take].len) <= PIECE)
    {
        len += u64::from(term_chunks[take].len);
        take += 1;
    }
    let chunks = term_chunks[..take].to_vec();
    if first as usize + take == term.end as usize {
        s.next_term += 1;
        s.next_chunk = 0;
    } else {
        s.next_chunk += take as u32;
    }
    crate::gate::bulk::run(move || {
        let mut out = Vec::with_capacity(len as usize);
        let mut scratch = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let from = out.len();
            decode_chunk_into(&body, chunk.offset as usize, &mut out, &mut scratch)
                .map_err(|why| format!("xorb {} chunk {}: {why}", term.xorb, first as usize + i))?;
            if chunk_hash(&out[from..]) != chunk.hash {
                return Err(format!(
                    "xorb {} chunk {} no longer has the hash it was stored with",
                    term.xorb,
                    first as usize + i
                ));
            }
        }
        Ok(Bytes::from(out))
    })
    .await
    .map_err(|e| e.to_string())?
}
