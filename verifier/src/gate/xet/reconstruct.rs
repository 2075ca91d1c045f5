//! Reconstruction: the bytes of a file a checked shard describes, streamed from the
//! namespace's stored xorbs in pieces of at most [`PIECE`] bytes. Every chunk was hashed when
//! its xorb was uploaded and the shard was checked against those hashes, so a piece is only
//! decoded (and each chunk's length checked against the index), not hashed again: the
//! receiver checks the whole file against the SHA-256 the shard declares, which a stored xorb
//! changed since its upload cannot match. When that check fails, [`changed_chunk`] tells a
//! changed xorb (the gate's fault) from a wrong declaration (the client's).
//! Pieces are decoded on the bulk pool while the receiver hashes and writes the last one. A
//! piece's buffer comes back to its file's reconstruction when the receiver drops the piece,
//! and a file's xorbs are read one at a time into one buffer lent by the CAS's
//! [`XorbBuffers`], around the page cache ([`Store::read_xet_object`]): a fresh buffer per
//! piece or per xorb is fresh pages, zeroed and faulted in each time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;

use super::buffers::{Lease, PieceBuffers, XorbBuffers};
use super::hash::{XetHash, chunk_hash};
use super::shard::FileInfo;
use super::xorb::{ChunkEntry, chunk_bytes, decode_chunk_into};
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
    xorb: StoredXorb,
    pieces: PieceBuffers,
}

/// Streams the bytes of `file`, whose terms `indexes` (the chunk index of every xorb the
/// shard names) were checked against.
pub(crate) fn file_body(
    store: Arc<dyn Store>,
    namespace: &str,
    file: &FileInfo,
    indexes: Arc<HashMap<XetHash, Vec<ChunkEntry>>>,
    buffers: &XorbBuffers,
) -> FileBody {
    let state = State {
        store,
        namespace: namespace.to_string(),
        file: file.clone(),
        indexes,
        next_term: 0,
        next_chunk: 0,
        xorb: StoredXorb::new(buffers),
        pieces: PieceBuffers::default(),
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
    let body = s
        .xorb
        .take(&*s.store, &s.namespace, term.xorb)
        .await?
        .ok_or_else(|| format!("xorb {} is no longer stored", term.xorb))?;
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
    let xorb = term.xorb;
    let mut out = s.pieces.take();
    out.reserve(len as usize);
    let (body, piece) = crate::gate::bulk::run(move || {
        let piece = decode_piece(&body, &chunks, xorb, first, out);
        (body, piece)
    })
    .await
    .map_err(|e| e.to_string())?;
    s.xorb.give_back(xorb, body);
    Ok(s.pieces.lend(piece?))
}

/// Decodes `chunks`, chunk `first` onwards of xorb `xorb`, out of the xorb's stored bytes
/// `body` into `out`.
fn decode_piece(
    body: &[u8],
    chunks: &[ChunkEntry],
    xorb: XetHash,
    first: u32,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let mut scratch = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let from = out.len();
        let changed = |why: &str| {
            format!(
                "xorb {xorb} chunk {}: {why}; the stored xorb changed since it was checked",
                first as usize + i
            )
        };
        decode_chunk_into(body, chunk.offset as usize, &mut out, &mut scratch)
            .map_err(|why| changed(&why))?;
        if out.len() - from != chunk.len as usize {
            return Err(changed(&format!(
                "decodes to {} bytes, {} when it was checked",
                out.len() - from,
                chunk.len
            )));
        }
    }
    Ok(out)
}

/// The first chunk of `file` whose stored bytes no longer hash to what its xorb's upload
/// checked, named with its xorb; `None` if every chunk still does. Decodes and hashes the
/// whole file again: only run after its reconstruction failed.
pub(crate) async fn changed_chunk(
    store: &dyn Store,
    namespace: &str,
    file: &FileInfo,
    indexes: Arc<HashMap<XetHash, Vec<ChunkEntry>>>,
    buffers: &XorbBuffers,
) -> Result<Option<String>, String> {
    let mut stored = StoredXorb::new(buffers);
    for term in &file.terms {
        let Some(body) = stored.take(store, namespace, term.xorb).await? else {
            return Ok(Some(format!("xorb {} is no longer stored", term.xorb)));
        };
        let index = indexes
            .get(&term.xorb)
            .ok_or_else(|| format!("xorb {} has no chunk index", term.xorb))?;
        let chunks = index[term.start as usize..term.end as usize].to_vec();
        let (xorb, first) = (term.xorb, term.start as usize);
        let (body, found) = crate::gate::bulk::run(move || {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            let found = chunks.iter().enumerate().find_map(|(i, chunk)| {
                let at = first + i;
                match chunk_bytes(&body, chunk.offset as usize, &mut out, &mut scratch) {
                    Err(why) => Some(format!(
                        "xorb {xorb} chunk {at}: {why}; the stored xorb changed since it was \
                         checked"
                    )),
                    Ok((bytes, _)) if chunk_hash(bytes) != chunk.hash => Some(format!(
                        "xorb {xorb} chunk {at} no longer has the hash it was stored with"
                    )),
                    Ok(_) => None,
                }
            });
            (body, found)
        })
        .await
        .map_err(|e| e.to_string())?;
        if found.is_some() {
            return Ok(found);
        }
        stored.give_back(xorb, body);
    }
    Ok(None)
}

/// The xorb a reconstruction decodes from, read into one buffer lent by the CAS's pool and
/// kept there for the next term if it names the same xorb.
struct StoredXorb {
    buffers: XorbBuffers,
    /// The buffer and the xorb whose bytes it holds, while it is not lent to a decoding job.
    held: Option<(Option<XetHash>, Lease)>,
}

impl StoredXorb {
    fn new(buffers: &XorbBuffers) -> StoredXorb {
        StoredXorb {
            buffers: buffers.clone(),
            held: None,
        }
    }

    /// The buffer holding xorb `hash`'s stored bytes (read unless it holds them already),
    /// taken to lend to a job; `None` if the store no longer has it.
    async fn take(
        &mut self,
        store: &dyn Store,
        namespace: &str,
        hash: XetHash,
    ) -> Result<Option<Lease>, String> {
        let (holds, mut body) = self
            .held
            .take()
            .unwrap_or_else(|| (None, self.buffers.take()));
        if holds == Some(hash) {
            return Ok(Some(body));
        }
        let read = store
            .read_xet_object(namespace, XetObjectKind::Xorb, &hash.to_hex(), &mut body)
            .await;
        match read {
            Ok(true) => Ok(Some(body)),
            Ok(false) => {
                self.held = Some((None, body));
                Ok(None)
            }
            Err(e) => {
                self.held = Some((None, body));
                Err(e.to_string())
            }
        }
    }

    /// Gives back the buffer [`StoredXorb::take`] lent, still holding xorb `hash`.
    fn give_back(&mut self, hash: XetHash, body: Lease) {
        self.held = Some((Some(hash), body));
    }
}
