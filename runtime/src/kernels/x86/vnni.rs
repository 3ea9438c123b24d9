//! Dot products with AVX-512 VNNI: 64 multiply-adds per `vpdpbusd`.
//!
//! `vpdpbusd` multiplies *unsigned* bytes by *signed* bytes and adds each group of four
//! products into a 32-bit lane. The weights are the signed operand. The activations enter the
//! sums as `x − zero`, which lies in −255..=255 and so fits neither byte type; two exact ways
//! round that:
//!
//! - **Split** ([`dot`], [`dot2`]: one event, no weight sums): the positive part
//!   `max(x, zero) − zero` and the negative part `zero − min(x, zero)`, both in 0..=255, and
//!   `Σ w·pos − Σ w·neg`. Two `vpdpbusd` per block and row.
//! - **Shifted** ([`dot16`], [`dot2_lanes4`]): `x + 128` (0..=255, the sign bit flipped) and
//!   `Σ w·(x − zero) = Σ w·(x + 128) − (128 + zero)·Σ w`. With the rows' `Σ w` kept by the
//!   encoder that is one `vpdpbusd` per block and row; in a batch without them, one `Σ w`
//!   per row is formed as it goes and shared by the four events.
//!
//! No product or sum can overflow (the module docs of `layers` bound them, and
//! `(128 + zero)·Σ w` is within the same bound), and any wrap would cancel modulo 2^32 anyway,
//! so the results are bit-exact with [`crate::kernels::generic::dot_reference`]; property tests compare
//! them on random rows. Tails shorter than a block take the portable loop.

use core::arch::x86_64::{
    __m512i, _mm256_add_epi32, _mm256_hadd_epi32, _mm256_permute2x128_si256, _mm256_storeu_si256,
    _mm512_add_epi32, _mm512_castsi512_si256, _mm512_dpbusd_epi32, _mm512_extracti64x4_epi64,
    _mm512_loadu_si512, _mm512_max_epi8, _mm512_min_epi8, _mm512_mullo_epi32,
    _mm512_reduce_add_epi32, _mm512_set1_epi8, _mm512_set1_epi32, _mm512_setzero_si512,
    _mm512_sub_epi8, _mm512_sub_epi32, _mm512_xor_si512,
};

/// Activations or weights per block.
const BLOCK: usize = 64;

/// Whether this CPU has AVX-512 F, BW and VNNI (detected once by `std`, then a cached load).
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// One block of 64 bytes as a vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(block: &[u8; BLOCK]) -> __m512i {
    // SAFETY: `block` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
}

/// A block of activations as `x + 128`: the sign bit flipped.
#[inline]
#[target_feature(enable = "avx512f")]
fn shifted(x: &[u8; BLOCK]) -> __m512i {
    _mm512_xor_si512(load(x), _mm512_set1_epi8(i8::MIN))
}

/// A block of activations split around the zero point (see the module docs).
#[derive(Clone, Copy)]
struct Split {
    above: __m512i,
    below: __m512i,
}

#[target_feature(enable = "avx512f,avx512bw")]
fn split(x: &[u8; BLOCK], zeros: __m512i) -> Split {
    let x = load(x);
    Split {
        above: _mm512_sub_epi8(_mm512_max_epi8(x, zeros), zeros),
        below: _mm512_sub_epi8(zeros, _mm512_min_epi8(x, zeros)),
    }
}

/// The running sums of one row: positive and negative parts, each in two chains taking
/// alternate blocks, because a single chain of `vpdpbusd` waits on its own latency.
#[derive(Clone, Copy)]
struct RowSums {
    positive: [__m512i; 2],
    negative: [__m512i; 2],
}

impl RowSums {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        Self {
            positive: [_mm512_setzero_si512(); 2],
            negative: [_mm512_setzero_si512(); 2],
        }
    }

    /// Adds the products of a pair of activation blocks with the row's pair of weight blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn add_pair(&mut self, x: [Split; 2], w: &[[u8; BLOCK]; 2]) {
        let w = [load(&w[0]), load(&w[1])];
        self.positive[0] = _mm512_dpbusd_epi32(self.positive[0], x[0].above, w[0]);
        self.positive[1] = _mm512_dpbusd_epi32(self.positive[1], x[1].above, w[1]);
        self.negative[0] = _mm512_dpbusd_epi32(self.negative[0], x[0].below, w[0]);
        self.negative[1] = _mm512_dpbusd_epi32(self.negative[1], x[1].below, w[1]);
    }

    /// The row's total plus the portable loop over the tails past the last whole pair.
    #[target_feature(enable = "avx512f")]
    fn finish(self, row_tail: &[u8], input_tail: &[i8], zero: i32) -> i32 {
        let positive = _mm512_add_epi32(self.positive[0], self.positive[1]);
        let negative = _mm512_add_epi32(self.negative[0], self.negative[1]);
        _mm512_reduce_add_epi32(_mm512_sub_epi32(positive, negative)).wrapping_add(
            crate::kernels::generic::dot_reference(row_tail, input_tail, zero),
        )
    }
}

/// The whole blocks of `bytes`.
fn blocks(bytes: &[u8]) -> core::slice::Iter<'_, [u8; BLOCK]> {
    bytes.as_chunks::<BLOCK>().0.iter()
}

/// Whole pairs of blocks of `bytes`.
fn pairs(bytes: &[u8]) -> &[[[u8; BLOCK]; 2]] {
    bytes.as_chunks::<BLOCK>().0.as_chunks::<2>().0
}

/// Bytes covered by whole pairs of blocks of an `n`-element row.
const fn paired(n: usize) -> usize {
    n / (2 * BLOCK) * (2 * BLOCK)
}

/// `Σ w_i · (x_i - zero)` over one row.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI ([`available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn dot(row: &[u8], input: &[i8], zero: i32) -> i32 {
    let x = super::bytemuck_i8(input);
    if row.len() != x.len() {
        return crate::kernels::generic::dot_reference(row, input, zero);
    }
    // `zero` came from an i8 field.
    let zeros = _mm512_set1_epi8(zero as i8);
    let mut sums = RowSums::new();
    for (x, w) in pairs(x).iter().zip(pairs(row)) {
        sums.add_pair([split(&x[0], zeros), split(&x[1], zeros)], w);
    }
    let done = paired(x.len());
    sums.finish(
        row.get(done..).unwrap_or(&[]),
        input.get(done..).unwrap_or(&[]),
        zero,
    )
}

/// Two rows at once (`rows` holds both, `input.len()` each), sharing the split activations.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI ([`available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn dot2(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    let x = super::bytemuck_i8(input);
    let Some((first, second)) = rows
        .split_at_checked(x.len())
        .filter(|(_, second)| second.len() == x.len())
    else {
        return crate::kernels::generic::dot2_reference(rows, input, zero);
    };
    let zeros = _mm512_set1_epi8(zero as i8);
    let (mut sums0, mut sums1) = (RowSums::new(), RowSums::new());
    for ((x, w0), w1) in pairs(x).iter().zip(pairs(first)).zip(pairs(second)) {
        let x = [split(&x[0], zeros), split(&x[1], zeros)];
        sums0.add_pair(x, w0);
        sums1.add_pair(x, w1);
    }
    let done = paired(x.len());
    let input_tail = input.get(done..).unwrap_or(&[]);
    [
        sums0.finish(first.get(done..).unwrap_or(&[]), input_tail, zero),
        sums1.finish(second.get(done..).unwrap_or(&[]), input_tail, zero),
    ]
}

/// The part of two rows' weight sums that lies in whole blocks (the tails past them take
/// the portable loop, which needs no sum).
fn whole_block_sums(sums: [i32; 2], rows: [&[u8]; 2]) -> [i32; 2] {
    let tail_sum = |row: &[u8]| -> i32 {
        let done = row.len() / BLOCK * BLOCK;
        let tail = row.get(done..).unwrap_or(&[]);
        tail.iter()
            .map(|&w| crate::kernels::generic::weight(w))
            .sum()
    };
    [0, 1].map(|r| sums[r].wrapping_sub(tail_sum(rows[r])))
}

/// Rows per call of [`dot16`].
pub(super) const BLOCK_ROWS: usize = 16;

/// Sixteen rows (`rows` holds them, `input.len()` each, a multiple of 128) against one event
/// whose rows' weight sums the encoder keeps; `None` for other shapes. With the sums known a
/// block costs one `vpdpbusd` per row instead of two, and one call for sixteen rows keeps the
/// per-call work (setup, reductions) off the rows.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI ([`available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn dot16(
    rows: &[u8],
    input: &[i8],
    zero: i32,
    weight_sums: [i32; BLOCK_ROWS],
) -> Option<[i32; BLOCK_ROWS]> {
    let x = super::bytemuck_i8(input);
    let whole = !x.is_empty() && x.len().is_multiple_of(2 * BLOCK);
    if !whole || rows.len() != BLOCK_ROWS * x.len() {
        return None;
    }
    let mut totals = rows16(rows, x);
    for (total, sum) in totals.iter_mut().zip(weight_sums) {
        *total = total.wrapping_sub((128 + zero).wrapping_mul(sum));
    }
    Some(totals)
}

/// The body of [`dot16`] when the rows' weight sums are known: `Σ w·(x + 128)` of each row,
/// four rows at a time with one `vpdpbusd` per block and row in eight chains (two per row,
/// taking alternate blocks).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn rows16(rows: &[u8], x: &[u8]) -> [i32; BLOCK_ROWS] {
    let n = x.len();
    let mut vectors = [_mm512_setzero_si512(); BLOCK_ROWS];
    for (quad, vectors) in vectors.as_chunks_mut::<4>().0.iter_mut().enumerate() {
        let row = |k: usize| {
            let start = (4 * quad + k) * n;
            pairs(rows.get(start..start + n).unwrap_or(&[])).iter()
        };
        let zeros = _mm512_setzero_si512();
        let (mut a0, mut a1, mut b0, mut b1) = (zeros, zeros, zeros, zeros);
        let (mut c0, mut c1, mut d0, mut d1) = (zeros, zeros, zeros, zeros);
        let all = pairs(x)
            .iter()
            .zip(row(0))
            .zip(row(1))
            .zip(row(2))
            .zip(row(3));
        for ((((x, w0), w1), w2), w3) in all {
            let (x0, x1) = (shifted(&x[0]), shifted(&x[1]));
            a0 = _mm512_dpbusd_epi32(a0, x0, load(&w0[0]));
            a1 = _mm512_dpbusd_epi32(a1, x1, load(&w0[1]));
            b0 = _mm512_dpbusd_epi32(b0, x0, load(&w1[0]));
            b1 = _mm512_dpbusd_epi32(b1, x1, load(&w1[1]));
            c0 = _mm512_dpbusd_epi32(c0, x0, load(&w2[0]));
            c1 = _mm512_dpbusd_epi32(c1, x1, load(&w2[1]));
            d0 = _mm512_dpbusd_epi32(d0, x0, load(&w3[0]));
            d1 = _mm512_dpbusd_epi32(d1, x1, load(&w3[1]));
        }
        *vectors = [
            _mm512_add_epi32(a0, a1),
            _mm512_add_epi32(b0, b1),
            _mm512_add_epi32(c0, c1),
            _mm512_add_epi32(d0, d1),
        ];
    }
    let (halves, _) = vectors.as_chunks::<8>();
    let mut totals = [0; BLOCK_ROWS];
    for (totals, half) in totals.as_chunks_mut::<8>().0.iter_mut().zip(halves) {
        *totals = sum_each(*half);
    }
    totals
}

/// Two rows (`rows` holds both) against the activations of four events at once: each weight
/// block and (unless given) its `Σ w` are loaded and formed once for all of them. Inputs of
/// another length get the portable loop.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI ([`available`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn dot2_lanes4(
    rows: &[u8],
    inputs: [&[i8]; 4],
    zero: i32,
    weight_sums: Option<[i32; 2]>,
) -> [[i32; 2]; 4] {
    let n = rows.len() / 2;
    let (first, second) = rows.split_at_checked(n).unwrap_or((&[], &[]));
    if second.len() != n || inputs.iter().any(|input| input.len() != n) {
        return inputs.map(|input| crate::kernels::generic::dot2_reference(rows, input, zero));
    }
    let mut totals = match weight_sums.map(|sums| whole_block_sums(sums, [first, second])) {
        Some(weight_sums) => lanes4::<false>(first, second, inputs, zero, weight_sums),
        None => lanes4::<true>(first, second, inputs, zero, [0; 2]),
    };
    let done = n / BLOCK * BLOCK;
    if done < n {
        let tails = [first, second].map(|row| row.get(done..).unwrap_or(&[]));
        for (totals, input) in totals.as_chunks_mut::<2>().0.iter_mut().zip(inputs) {
            let input_tail = input.get(done..).unwrap_or(&[]);
            for (total, tail) in totals.iter_mut().zip(tails) {
                *total = total.wrapping_add(crate::kernels::generic::dot_reference(
                    tail, input_tail, zero,
                ));
            }
        }
    }
    core::array::from_fn(|e| [totals[2 * e], totals[2 * e + 1]])
}

/// The whole-block part of [`dot2_lanes4`], for event `e` and row `r` at `2e + r`; the rows'
/// `Σ w` are formed here when `FORM_SUMS`, else `weight_sums` holds them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn lanes4<const FORM_SUMS: bool>(
    first: &[u8],
    second: &[u8],
    inputs: [&[i8]; 4],
    zero: i32,
    weight_sums: [i32; 2],
) -> [i32; 8] {
    let [x0, x1, x2, x3] = inputs.map(super::bytemuck_i8);
    let ones = _mm512_set1_epi8(1);
    // Named sums rather than arrays: written generically over the number of events, the
    // compiler kept them on the stack and the kernel ran a third slower.
    let zeros = _mm512_setzero_si512();
    let (mut weights0, mut weights1) = (zeros, zeros);
    let (mut a0, mut a1, mut b0, mut b1) = (zeros, zeros, zeros, zeros);
    let (mut c0, mut c1, mut d0, mut d1) = (zeros, zeros, zeros, zeros);
    let all = blocks(first)
        .zip(blocks(second))
        .zip(blocks(x0).zip(blocks(x1)))
        .zip(blocks(x2).zip(blocks(x3)));
    for (((w0, w1), (x0, x1)), (x2, x3)) in all {
        let (w0, w1) = (load(w0), load(w1));
        if FORM_SUMS {
            weights0 = _mm512_dpbusd_epi32(weights0, ones, w0);
            weights1 = _mm512_dpbusd_epi32(weights1, ones, w1);
        }
        let x = shifted(x0);
        a0 = _mm512_dpbusd_epi32(a0, x, w0);
        a1 = _mm512_dpbusd_epi32(a1, x, w1);
        let x = shifted(x1);
        b0 = _mm512_dpbusd_epi32(b0, x, w0);
        b1 = _mm512_dpbusd_epi32(b1, x, w1);
        let x = shifted(x2);
        c0 = _mm512_dpbusd_epi32(c0, x, w0);
        c1 = _mm512_dpbusd_epi32(c1, x, w1);
        let x = shifted(x3);
        d0 = _mm512_dpbusd_epi32(d0, x, w0);
        d1 = _mm512_dpbusd_epi32(d1, x, w1);
    }
    let sums = [a0, a1, b0, b1, c0, c1, d0, d1];
    if FORM_SUMS {
        // Take `(128 + zero)·Σ w` out lane by lane (exact modulo 2^32, like the sums), so
        // that one reduction tree finishes all eight.
        let offsets = _mm512_set1_epi32(128 + zero);
        let corrections = [weights0, weights1].map(|w| _mm512_mullo_epi32(w, offsets));
        sum_each(core::array::from_fn(|k| {
            _mm512_sub_epi32(sums[k], corrections[k % 2])
        }))
    } else {
        let corrections = weight_sums.map(|sum| (128 + zero).wrapping_mul(sum));
        let mut totals = sum_each(sums);
        for (k, total) in totals.iter_mut().enumerate() {
            *total = total.wrapping_sub(corrections[k % 2]);
        }
        totals
    }
}

/// The lane sums of eight vectors at once: a tree of horizontal adds instead of eight
/// separate reductions (which cost as much as the products of a short row).
#[target_feature(enable = "avx512f,avx2")]
fn sum_each(vectors: [__m512i; 8]) -> [i32; 8] {
    let [a, b, c, d, e, f, g, h] = vectors
        .map(|v| _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v)));
    // Each 128-bit half of `x` holds partial sums of a, b, c, d; of `y`, of e, f, g, h.
    let x = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    let y = _mm256_hadd_epi32(_mm256_hadd_epi32(e, f), _mm256_hadd_epi32(g, h));
    let sums = _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(x, y),
        _mm256_permute2x128_si256::<0x31>(x, y),
    );
    let mut out = [0i32; 8];
    // SAFETY: `out` is 32 writable bytes; the store is unaligned.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), sums) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic::{dot_reference, dot2_reference};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// The weight sums of two rows stored back to back.
    fn weight_sums(rows: &[u8]) -> [i32; 2] {
        let (first, second) = rows.split_at(rows.len() / 2);
        [first, second].map(|row| {
            row.iter()
                .map(|&w| crate::kernels::generic::weight(w))
                .sum()
        })
    }

    proptest! {
        #[test]
        fn vnni_matches_the_portable_loop(
            (input, rows) in (1usize..400).prop_flat_map(|n| (
                proptest::collection::vec(any::<i8>(), n),
                proptest::collection::vec(any::<u8>(), 2 * n),
            )),
            zero in any::<i8>(),
        ) {
            if !available() {
                return Ok(());
            }
            let zero = i32::from(zero);
            // SAFETY: the features are available (checked above).
            let fast = unsafe { dot2(&rows, &input, zero) };
            prop_assert_eq!(fast, dot2_reference(&rows, &input, zero));
            // SAFETY: as above.
            let single = unsafe { dot(&rows[..input.len()], &input, zero) };
            prop_assert_eq!(single, dot_reference(&rows[..input.len()], &input, zero));
        }
    }

    proptest! {
        #[test]
        fn lanes_match_the_portable_loop(
            (inputs, rows) in (1usize..300).prop_flat_map(|n| (
                proptest::array::uniform4(proptest::collection::vec(any::<i8>(), n)),
                proptest::collection::vec(any::<u8>(), 2 * n),
            )),
            zero in any::<i8>(),
        ) {
            if !available() {
                return Ok(());
            }
            let zero = i32::from(zero);
            let lanes = inputs.each_ref().map(Vec::as_slice);
            // SAFETY: the features are available (checked above).
            let fast = unsafe { dot2_lanes4(&rows, lanes, zero, None) };
            prop_assert_eq!(fast, lanes.map(|input| dot2_reference(&rows, input, zero)));
            // SAFETY: as above.
            let known = unsafe { dot2_lanes4(&rows, lanes, zero, Some(weight_sums(&rows))) };
            prop_assert_eq!(known, fast);
        }
    }

    proptest! {
        #[test]
        fn sixteen_rows_match_the_portable_loop(
            (input, rows) in (1usize..4).prop_flat_map(|pairs| (
                proptest::collection::vec(any::<i8>(), 128 * pairs),
                proptest::collection::vec(any::<u8>(), 16 * 128 * pairs),
            )),
            zero in any::<i8>(),
        ) {
            if !available() {
                return Ok(());
            }
            let zero = i32::from(zero);
            let n = input.len();
            let sums: [i32; BLOCK_ROWS] = core::array::from_fn(|r| {
                rows[r * n..(r + 1) * n].iter().map(|&w| crate::kernels::generic::weight(w)).sum()
            });
            // SAFETY: the features are available (checked above).
            let fast = unsafe { dot16(&rows, &input, zero, sums) };
            let expected: [i32; BLOCK_ROWS] =
                core::array::from_fn(|r| dot_reference(&rows[r * n..(r + 1) * n], &input, zero));
            prop_assert_eq!(fast, Some(expected));
            // SAFETY: as above; a row length that is not a multiple of 128 is declined.
            prop_assert_eq!(unsafe { dot16(&rows[..16 * (n - 64)], &input[..n - 64], zero, sums) }, None);
        }
    }

    #[test]
    fn extreme_values_do_not_overflow_a_lane() {
        if !available() {
            return;
        }
        for (x, zero) in [(127i8, -128), (-128, 127), (0, -128), (-128, -128)] {
            let input: Vec<i8> = std::vec![x; 1024];
            for w in [0x80u8, 0x7f] {
                let rows: Vec<u8> = std::vec![w; 2048];
                // SAFETY: the features are available.
                let fast = unsafe { dot2(&rows, &input, zero) };
                assert_eq!(
                    fast,
                    dot2_reference(&rows, &input, zero),
                    "x {x} zero {zero}"
                );
            }
        }
    }
}
