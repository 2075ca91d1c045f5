//! SHA-256 of two inputs at once on one core, with the x86 SHA extensions.
//!
//! One SHA-256 stream cannot use a core fully: each `sha256rnds2` waits for the one before it,
//! so a single stream runs at the instruction's latency (about 1.75 GB/s here, the same as
//! OpenSSL). Two independent streams interleaved fill those gaps, so a core hashes two files
//! in little more time than one. SHA-256 of a file cannot be split, but a checkpoint has many
//! files: the hashing engine pairs them, and admission pairs buffers of files copied in turn
//! ([`Sha256Stream`]). Where the extensions are missing, each input is hashed on its own
//! with the `sha2` crate.

use super::mapped_file::prefetch;
use super::sha256::{Progress, REPORT_EVERY};

const BLOCK: usize = 64;
/// Blocks per lockstep step: small enough for prefetching to stay ahead, large enough that the
/// per-step overhead vanishes.
const STEP_BLOCKS: usize = 64;
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 of `a` and of `b`.
pub(crate) fn sha256_two(a: &[u8], b: &[u8], progress: Progress) -> ([u8; 32], [u8; 32]) {
    let (mut sa, mut sb) = (Sha256Stream::new(), Sha256Stream::new());
    update_two(&mut sa, a, &mut sb, b, progress);
    (sa.finalize(), sb.finalize())
}

/// A SHA-256 computation fed piece by piece (a file hashed buffer by buffer as it is copied).
/// Two of them can be fed at once on one core with [`update_two`].
#[derive(Clone)]
pub(crate) struct Sha256Stream {
    state: [u32; 8],
    /// Bytes fed so far.
    len: u64,
    /// The start of a block not yet compressed.
    tail: [u8; BLOCK],
    tail_len: usize,
}

impl Sha256Stream {
    pub(crate) fn new() -> Self {
        Sha256Stream {
            state: H0,
            len: 0,
            tail: [0; BLOCK],
            tail_len: 0,
        }
    }

    /// Feeds `data` alone (one stream on the core).
    pub(crate) fn update(&mut self, data: &[u8], progress: Progress) {
        self.len += data.len() as u64;
        self.absorb(data, progress);
    }

    /// The digest of everything fed.
    pub(crate) fn finalize(mut self) -> [u8; 32] {
        let tail = &self.tail[..self.tail_len];
        sha2::block_api::compress256(&mut self.state, &final_blocks(tail, self.len));
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Completes a pending partial block from the front of `data`; returns the rest.
    fn fill_tail<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if self.tail_len == 0 {
            return data;
        }
        let take = (BLOCK - self.tail_len).min(data.len());
        self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
        self.tail_len += take;
        if self.tail_len == BLOCK {
            sha2::block_api::compress256(&mut self.state, &[self.tail]);
            self.tail_len = 0;
        }
        &data[take..]
    }

    /// Compresses the whole blocks of `data` (after a pending partial block) and keeps the rest.
    fn absorb(&mut self, data: &[u8], progress: Progress) {
        let whole = data.len();
        let data = self.fill_tail(data);
        let (blocks, rest) = data.as_chunks::<BLOCK>();
        let mut unreported = whole - data.len();
        for (k, step) in blocks.chunks(ONE_STEP_BLOCKS).enumerate() {
            let at = k * ONE_STEP_BLOCKS * BLOCK;
            prefetch(
                data,
                at + 2 * ONE_STEP_BLOCKS * BLOCK,
                ONE_STEP_BLOCKS * BLOCK,
            );
            sha2::block_api::compress256(&mut self.state, step);
            unreported += step.len() * BLOCK;
            if unreported >= REPORT_EVERY {
                progress(unreported as u64);
                unreported = 0;
            }
        }
        self.tail[self.tail_len..self.tail_len + rest.len()].copy_from_slice(rest);
        self.tail_len += rest.len();
        progress((unreported + rest.len()) as u64);
    }
}

/// Blocks per step when one stream is fed alone, with prefetching two steps ahead.
const ONE_STEP_BLOCKS: usize = 16;

/// Feeds `da` to `a` and `db` to `b`, their common whole blocks interleaved on one core.
pub(crate) fn update_two(
    a: &mut Sha256Stream,
    da: &[u8],
    b: &mut Sha256Stream,
    db: &[u8],
    progress: Progress,
) {
    a.len += da.len() as u64;
    b.len += db.len() as u64;
    let whole = da.len() + db.len();
    let (da, db) = (a.fill_tail(da), b.fill_tail(db));
    progress((whole - da.len() - db.len()) as u64);
    let common = (da.len() / BLOCK).min(db.len() / BLOCK) * BLOCK;
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe {
                x86::compress_pair(
                    [&mut a.state, &mut b.state],
                    &da[..common],
                    &db[..common],
                    progress,
                )
            };
            a.absorb(&da[common..], progress);
            b.absorb(&db[common..], progress);
            return;
        }
    }
    a.absorb(da, progress);
    b.absorb(db, progress);
}

/// Feeds `pieces`, in order, to the SHA-256 streams of their files (`piece` gives a piece's file
/// index into `states` and its bytes): two pieces of different files that come one after the
/// other are hashed at once on one core (from a writer taking turns between files); a piece
/// followed by another of its own file goes alone. `hashed` is called after each piece; its
/// first error stops.
pub(crate) fn sha256_in_pairs<P, E>(
    pieces: impl IntoIterator<Item = P>,
    states: &mut [Sha256Stream],
    piece: impl Fn(&P) -> (usize, &[u8]),
    mut hashed: impl FnMut(&P) -> Result<(), E>,
) -> Result<(), E> {
    let no_progress = &|_| {};
    let mut held: Option<P> = None;
    for next in pieces {
        let Some(first) = held.take() else {
            held = Some(next);
            continue;
        };
        let ((fa, a), (fb, b)) = (piece(&first), piece(&next));
        match states.get_disjoint_mut([fa, fb]) {
            Ok([sa, sb]) => {
                update_two(sa, a, sb, b, no_progress);
                hashed(&first)?;
                hashed(&next)?;
            }
            Err(_) => {
                states[fa].update(a, no_progress);
                hashed(&first)?;
                held = Some(next);
            }
        }
    }
    if let Some(last) = held {
        let (f, bytes) = piece(&last);
        states[f].update(bytes, no_progress);
        hashed(&last)?;
    }
    Ok(())
}

/// The padded final block(s) of a message of `total_len` bytes whose unprocessed tail is `tail`.
fn final_blocks(tail: &[u8], total_len: u64) -> Vec<[u8; 64]> {
    let mut last = tail.to_vec();
    last.push(0x80);
    while last.len() % BLOCK != 56 {
        last.push(0);
    }
    last.extend_from_slice(&total_len.wrapping_mul(8).to_be_bytes());
    last.chunks_exact(BLOCK)
        .map(|c| c.try_into().expect("64-byte chunk"))
        .collect()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, REPORT_EVERY, STEP_BLOCKS, prefetch};
    use crate::hashing::Progress;

    const K32: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// One lane's working state in the SHA-NI register layout.
    #[derive(Clone, Copy)]
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1")]
    fn to_lane(state: &[u32; 8]) -> Lane {
        // SAFETY: reads 2 x 16 bytes from an 8-word array.
        let (dcba, hgfe) = unsafe {
            let p: *const __m128i = state.as_ptr().cast();
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        Lane {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
        }
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1")]
    fn from_lane(l: Lane) -> [u32; 8] {
        let feba = _mm_shuffle_epi32(l.abef, 0x1B);
        let dchg = _mm_shuffle_epi32(l.cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let mut out = [0u32; 8];
        // SAFETY: writes 2 x 16 bytes into an 8-word array.
        unsafe {
            let p: *mut __m128i = out.as_mut_ptr().cast();
            _mm_storeu_si128(p, dcba);
            _mm_storeu_si128(p.add(1), hgef);
        }
        out
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    fn load_block(block: &[u8]) -> [__m128i; 4] {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let p: *const __m128i = block.as_ptr().cast();
        // SAFETY: `block` is 64 bytes (callers slice exact blocks).
        std::array::from_fn(|i| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(p.add(i)) }, mask))
    }

    /// Four rounds on both lanes; the two dependency chains interleave.
    #[inline]
    #[target_feature(enable = "sha,sse2")]
    fn rounds4(r: usize, l: &mut [Lane; 2], w: [__m128i; 2]) {
        let rk = _mm_set_epi32(
            K32[4 * r + 3] as i32,
            K32[4 * r + 2] as i32,
            K32[4 * r + 1] as i32,
            K32[4 * r] as i32,
        );
        let t0 = _mm_add_epi32(w[0], rk);
        let t1 = _mm_add_epi32(w[1], rk);
        l[0].cdgh = _mm_sha256rnds2_epu32(l[0].cdgh, l[0].abef, t0);
        l[1].cdgh = _mm_sha256rnds2_epu32(l[1].cdgh, l[1].abef, t1);
        let u0 = _mm_shuffle_epi32(t0, 0x0E);
        let u1 = _mm_shuffle_epi32(t1, 0x0E);
        l[0].abef = _mm_sha256rnds2_epu32(l[0].abef, l[0].cdgh, u0);
        l[1].abef = _mm_sha256rnds2_epu32(l[1].abef, l[1].cdgh, u1);
    }

    #[inline]
    #[target_feature(enable = "sha,ssse3")]
    fn next_w(w: &[__m128i; 4], i: usize) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(w[i], w[(i + 1) % 4]);
        let t2 = _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[(i + 3) % 4])
    }

    /// Compresses `n` blocks of each of `a` and `b` (both at least `n * 64` bytes).
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn compress_two(l: &mut [Lane; 2], a: &[u8], b: &[u8], n: usize) {
        for k in 0..n {
            let save = *l;
            let mut wa = load_block(&a[k * BLOCK..(k + 1) * BLOCK]);
            let mut wb = load_block(&b[k * BLOCK..(k + 1) * BLOCK]);
            for i in 0..4 {
                rounds4(i, l, [wa[i], wb[i]]);
            }
            for r in (4..16).step_by(4) {
                for i in 0..4 {
                    wa[i] = next_w(&wa, i);
                    wb[i] = next_w(&wb, i);
                    rounds4(r + i, l, [wa[i], wb[i]]);
                }
            }
            for (lane, s) in l.iter_mut().zip(save) {
                lane.abef = _mm_add_epi32(lane.abef, s.abef);
                lane.cdgh = _mm_add_epi32(lane.cdgh, s.cdgh);
            }
        }
    }

    /// Compresses `a` into `states[0]` and `b` into `states[1]`, two equal runs of whole
    /// blocks, interleaved.
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    pub(super) fn compress_pair(
        states: [&mut [u32; 8]; 2],
        a: &[u8],
        b: &[u8],
        progress: Progress,
    ) {
        let blocks = a.len().min(b.len()) / BLOCK;
        let mut lanes = [to_lane(states[0]), to_lane(states[1])];
        let mut done = 0;
        let mut unreported = 0;
        while done < blocks {
            let n = STEP_BLOCKS.min(blocks - done);
            let at = done * BLOCK;
            let ahead = at + 8 * STEP_BLOCKS * BLOCK;
            prefetch(a, ahead, STEP_BLOCKS * BLOCK);
            prefetch(b, ahead, STEP_BLOCKS * BLOCK);
            compress_two(&mut lanes, &a[at..], &b[at..], n);
            done += n;
            unreported += 2 * n * BLOCK;
            if unreported >= REPORT_EVERY {
                progress(unreported as u64);
                unreported = 0;
            }
        }
        progress(unreported as u64);
        let [sa, sb] = states;
        *sa = from_lane(lanes[0]);
        *sb = from_lane(lanes[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn reference(d: &[u8]) -> [u8; 32] {
        Sha256::digest(d).into()
    }

    #[test]
    fn equals_sha256_for_every_length_pair_around_block_edges() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let lens = [
            0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4095, 4096, 5000,
        ];
        for &la in &lens {
            for &lb in &lens {
                let (a, b) = (&data[..la], &data[5000 - lb..]);
                assert_eq!(
                    sha256_two(a, b, &|_| {}),
                    (reference(a), reference(b)),
                    "{la} {lb}"
                );
            }
        }
    }

    #[test]
    fn equals_sha256_on_large_unequal_inputs_and_reports_every_byte() {
        let a: Vec<u8> = (0..(3 << 20) + 17)
            .map(|i: u32| (i ^ (i >> 7)) as u8)
            .collect();
        let b: Vec<u8> = (0..(1 << 20) + 64 * 70 + 3)
            .map(|i: u32| i.wrapping_mul(31) as u8)
            .collect();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let got = sha256_two(&a, &b, &|n| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(got, (reference(&a), reference(&b)));
        assert_eq!(seen.into_inner(), (a.len() + b.len()) as u64);
    }

    #[test]
    fn streams_fed_in_uneven_pieces_alone_and_in_pairs_equal_sha256() {
        let a: Vec<u8> = (0..200_003u32)
            .map(|i| (i.wrapping_mul(7) >> 3) as u8)
            .collect();
        let b: Vec<u8> = (0..150_001u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        // Piece sizes that leave partial blocks pending on either side of a pair.
        let cuts_a = [1, 63, 64, 65, 4096, 33, 70_000, 7];
        let cuts_b = [100, 1, 1, 5000, 64, 12_345, 3];
        let (mut sa, mut sb) = (Sha256Stream::new(), Sha256Stream::new());
        let (mut ra, mut rb) = (&a[..], &b[..]);
        let seen = std::sync::atomic::AtomicU64::new(0);
        let count = |n: u64| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        for k in 0.. {
            if ra.is_empty() && rb.is_empty() {
                break;
            }
            let (pa, rest_a) = ra.split_at(cuts_a[k % cuts_a.len()].min(ra.len()));
            let (pb, rest_b) = rb.split_at(cuts_b[k % cuts_b.len()].min(rb.len()));
            match k % 3 {
                0 => update_two(&mut sa, pa, &mut sb, pb, &count),
                1 => update_two(&mut sb, pb, &mut sa, pa, &count),
                _ => {
                    sa.update(pa, &count);
                    sb.update(pb, &count);
                }
            }
            (ra, rb) = (rest_a, rest_b);
        }
        assert_eq!(
            (sa.finalize(), sb.finalize()),
            (reference(&a), reference(&b))
        );
        assert_eq!(seen.into_inner(), (a.len() + b.len()) as u64);
    }

    #[test]
    fn pieces_of_several_files_in_any_order_hash_as_each_file_alone() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let files = 1 + (next() % 5) as usize;
            let data: Vec<Vec<u8>> = (0..files)
                .map(|i| {
                    let len = (next() % 20_000) as usize;
                    (0..len)
                        .map(|k| ((k * 31 + i * 7 + round) >> 3) as u8)
                        .collect()
                })
                .collect();
            let mut at = vec![0usize; files];
            let mut pieces: Vec<(usize, &[u8])> = Vec::new();
            loop {
                let open: Vec<usize> = (0..files).filter(|&i| at[i] < data[i].len()).collect();
                if open.is_empty() {
                    break;
                }
                let i = open[(next() % open.len() as u64) as usize];
                let cut = match next() % 4 {
                    0 => 1 + next() % 70,
                    1 => 64,
                    2 => 1 + next() % 5000,
                    _ => 4096,
                } as usize;
                let end = (at[i] + cut).min(data[i].len());
                pieces.push((i, &data[i][at[i]..end]));
                at[i] = end;
            }
            let mut states = vec![Sha256Stream::new(); files];
            sha256_in_pairs(pieces, &mut states, |p| *p, |_| Ok::<(), ()>(())).unwrap();
            for (i, s) in states.into_iter().enumerate() {
                assert_eq!(s.finalize(), reference(&data[i]), "round {round} file {i}");
            }
        }
    }
}
