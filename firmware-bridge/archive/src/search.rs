//! Working on codes without decoding them: the nearest codes of an event in Hamming space,
//! and how surprising each code is, over the codes of an archive.
//!
//! Codes are packed into `u64` words (a 128-bit code is two) and compared by XOR and
//! popcount, so a scan over a million 128-bit codes takes milliseconds on one core
//! (`firmware-bridge/archive/benches/search.rs`); no decoder, no floating point.
//!
//! # Surprise, the anomaly score
//!
//! A code's surprise is its information under a model of independent bits fitted on the
//! archive: `−Σ_k log₂ P(bit k = code_k)`, in bits, with `P(bit k = 1) = (ones_k + 1) /
//! (codes + 2)` (Laplace's rule, so a bit never seen set costs a finite surprise). Codes
//! like most of the archive's score low; a code that sets bits rarely set, or clears bits
//! nearly always set, scores high. It ignores how bits depend on each other, so it finds
//! events that are unusual bit by bit, not ones that only combine common bits in a new way.

use std::collections::BinaryHeap;
use std::path::Path;

use crate::{ArchiveError, ArchiveReader, ArchiveScan};

/// An event's identity in an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    /// Stream id.
    pub stream: u16,
    /// Event id.
    pub event: u64,
}

/// One of the nearest codes to a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// Whose code it is.
    pub key: EventKey,
    /// Bits in which it differs from the query's code.
    pub distance: u32,
}

/// The codes of an archive in memory, packed for Hamming-distance scans.
#[derive(Debug, Clone)]
pub struct CodeIndex {
    /// Code width in bytes.
    width: usize,
    /// `u64` words per code.
    words: usize,
    /// Every code's words, code after code.
    packed: Vec<u64>,
    /// Every code's event, in the same order.
    keys: Vec<EventKey>,
    /// The model id of the codes.
    pub model_id: u64,
}

impl CodeIndex {
    /// An empty index for codes of `width` bytes of model `model_id`.
    pub fn new(width: u8, model_id: u64) -> Self {
        let width = usize::from(width);
        Self {
            width,
            words: width.div_ceil(8),
            packed: Vec::new(),
            keys: Vec::new(),
            model_id,
        }
    }

    /// Reads every intact record of the archive at `path` (corrupt records are skipped and
    /// counted in the returned scan, as [`ArchiveReader`] does).
    ///
    /// # Errors
    /// [`ArchiveError`] if the file cannot be read or is not an archive.
    pub fn read(path: &Path) -> Result<(Self, ArchiveScan), ArchiveError> {
        let mut reader = ArchiveReader::open(path)?;
        let mut index = Self::new(reader.width, reader.model_id);
        while let Some(record) = reader.next_record()? {
            index.push(
                EventKey {
                    stream: record.stream,
                    event: record.event,
                },
                &record.code,
            );
        }
        Ok((index, reader.scan()))
    }

    /// Adds a code; its bytes beyond the index's width are ignored and missing ones read
    /// as zero (an archive's records all have its width).
    pub fn push(&mut self, key: EventKey, code: &[u8]) {
        for word in 0..self.words {
            let mut bytes = [0u8; 8];
            let start = word * 8;
            let end = (start + 8).min(self.width).min(code.len());
            if start < end {
                bytes[..end - start].copy_from_slice(&code[start..end]);
            }
            self.packed.push(u64::from_le_bytes(bytes));
        }
        self.keys.push(key);
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the index holds no code.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Code bits.
    pub fn bits(&self) -> usize {
        self.width * 8
    }

    /// Every event, in archive order.
    pub fn keys(&self) -> &[EventKey] {
        &self.keys
    }

    /// Where the codes of `event` are, in archive order: of `stream` only, or of any stream.
    pub fn positions(&self, stream: Option<u16>, event: u64) -> Vec<usize> {
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.event == event && stream.is_none_or(|s| key.stream == s))
            .map(|(position, _)| position)
            .collect()
    }

    fn code(&self, position: usize) -> &[u64] {
        &self.packed[position * self.words..(position + 1) * self.words]
    }

    /// The `k` codes nearest to the code at `position` (itself excluded), nearest first;
    /// ties go to the earlier code in the archive. Empty if there is no such position.
    pub fn nearest(&self, position: usize, k: usize) -> Vec<Neighbour> {
        if position >= self.len() || k == 0 {
            return Vec::new();
        }
        let query = self.code(position);
        // A max-heap of the best k so far, by (distance, position).
        let mut best: BinaryHeap<(u32, usize)> = BinaryHeap::with_capacity(k + 1);
        for (other, code) in self.packed.chunks_exact(self.words).enumerate() {
            if other == position {
                continue;
            }
            let distance: u32 = query
                .iter()
                .zip(code)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            if best.len() < k {
                best.push((distance, other));
            } else if best.peek().is_some_and(|&(worst, _)| distance < worst) {
                best.pop();
                best.push((distance, other));
            }
        }
        let mut best = best.into_vec();
        best.sort_unstable();
        best.into_iter()
            .map(|(distance, other)| Neighbour {
                key: self.keys[other],
                distance,
            })
            .collect()
    }

    /// Each code's surprise in bits (see [the module](self#surprise-the-anomaly-score)), in
    /// archive order.
    pub fn surprise(&self) -> Vec<f64> {
        let bits = self.bits();
        let mut ones = vec![0u64; bits];
        for code in self.packed.chunks_exact(self.words) {
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += (code[bit / 64] >> (bit % 64)) & 1;
            }
        }
        let codes = self.len() as f64;
        let cost: Vec<[f64; 2]> = ones
            .iter()
            .map(|&n| {
                let p_one = (n as f64 + 1.0) / (codes + 2.0);
                [-(1.0 - p_one).log2(), -p_one.log2()]
            })
            .collect();
        self.packed
            .chunks_exact(self.words)
            .map(|code| {
                cost.iter()
                    .enumerate()
                    .map(|(bit, cost)| cost[((code[bit / 64] >> (bit % 64)) & 1) as usize])
                    .sum()
            })
            .collect()
    }

    /// The `top` most surprising codes, most surprising first, with their surprise.
    pub fn most_surprising(&self, top: usize) -> Vec<(EventKey, f64)> {
        let surprise = self.surprise();
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| surprise[b].total_cmp(&surprise[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .take(top)
            .map(|position| (self.keys[position], surprise[position]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(event: u64) -> EventKey {
        EventKey { stream: 1, event }
    }

    #[test]
    fn nearest_codes_by_hamming_distance_ties_to_the_earlier() {
        let mut index = CodeIndex::new(2, 7);
        for (event, code) in [[0u8, 0], [1, 0], [3, 0], [0, 1], [255, 255]]
            .iter()
            .enumerate()
        {
            index.push(key(event as u64), code);
        }
        let near = index.nearest(0, 3);
        let found: Vec<(u64, u32)> = near.iter().map(|n| (n.key.event, n.distance)).collect();
        // Event 1 and 3 are one bit away (1 first: earlier), event 2 two bits.
        assert_eq!(found, vec![(1, 1), (3, 1), (2, 2)]);
        assert_eq!(index.nearest(4, 1)[0].distance, 14);
        assert!(index.nearest(9, 3).is_empty());
        assert_eq!(index.positions(None, 3), vec![3]);
        assert_eq!(index.positions(Some(2), 3), Vec::<usize>::new());
    }

    #[test]
    fn a_code_unlike_the_others_is_the_most_surprising() {
        let mut index = CodeIndex::new(16, 7);
        for event in 0..50u64 {
            let mut code = [0u8; 16];
            code[(event % 4) as usize] = 1;
            index.push(key(event), &code);
        }
        index.push(key(99), &[0xff; 16]);
        let top = index.most_surprising(2);
        assert_eq!(top[0].0.event, 99);
        assert!(top[0].1 > 2.0 * top[1].1, "{top:?}");
    }

    proptest! {
        /// The scan finds the true k nearest distances, whatever the codes and the width.
        #[test]
        fn nearest_matches_a_brute_force_sort(
            codes in prop::collection::vec(prop::collection::vec(any::<u8>(), 9), 2..40),
            k in 1usize..6,
        ) {
            let mut index = CodeIndex::new(9, 0);
            for (event, code) in codes.iter().enumerate() {
                index.push(key(event as u64), code);
            }
            let distance = |a: &[u8], b: &[u8]| -> u32 {
                a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
            };
            let mut expected: Vec<(u32, u64)> = (1..codes.len())
                .map(|other| (distance(&codes[0], &codes[other]), other as u64))
                .collect();
            expected.sort_unstable();
            expected.truncate(k);
            let found: Vec<(u32, u64)> = index
                .nearest(0, k)
                .iter()
                .map(|n| (n.distance, n.key.event))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
