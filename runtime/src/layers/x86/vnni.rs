//! Dot products with AVX-512 VNNI: 64 multiply-adds per `vpdpbusd`.
//!
//! `vpdpbusd` multiplies *unsigned* bytes by *signed* bytes and adds each group of four
//! products into a 32-bit lane. The weights are the signed operand. The activations enter as
//! `x − zero`, which lies in −255..=255 and so fits neither byte type; it is split into its
//! positive part `max(x, zero) − zero` and its negative part `zero − min(x, zero)`, both in
//! 0..=255, and the row's sum is `Σ w·pos − Σ w·neg`. The negative part is only multiplied
//! for the blocks of 64 activations that have an `x` below the zero point: none after a ReLU
//! (which clamps at the zero point), few in a detector's input where the zero point sits at a
//! real zero. No product or sum can overflow (the module docs of `layers` bound them), so the
//! results are bit-exact with [`crate::layers::dot_reference`]; a property test compares them
//! on random rows. Tails shorter than 64 take the portable loop.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_cmplt_epi8_mask, _mm512_dpbusd_epi32, _mm512_loadu_si512,
    _mm512_max_epi8, _mm512_min_epi8, _mm512_reduce_add_epi32, _mm512_set1_epi8,
    _mm512_setzero_si512, _mm512_sub_epi8, _mm512_sub_epi32,
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
#[target_feature(enable = "avx512f")]
fn load(block: &[u8; BLOCK]) -> __m512i {
    // SAFETY: `block` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
}

/// A block of activations split around the zero point (see the module docs).
#[derive(Clone, Copy)]
struct Split {
    above: __m512i,
    below: __m512i,
    any_below: bool,
}

#[target_feature(enable = "avx512f,avx512bw")]
fn split(x: &[u8; BLOCK], zeros: __m512i) -> Split {
    let x = load(x);
    Split {
        above: _mm512_sub_epi8(_mm512_max_epi8(x, zeros), zeros),
        below: _mm512_sub_epi8(zeros, _mm512_min_epi8(x, zeros)),
        any_below: _mm512_cmplt_epi8_mask(x, zeros) != 0,
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
        if x[0].any_below {
            self.negative[0] = _mm512_dpbusd_epi32(self.negative[0], x[0].below, w[0]);
        }
        if x[1].any_below {
            self.negative[1] = _mm512_dpbusd_epi32(self.negative[1], x[1].below, w[1]);
        }
    }

    /// The row's total plus the portable loop over the tails past the last whole pair.
    #[target_feature(enable = "avx512f")]
    fn finish(self, row_tail: &[u8], input_tail: &[i8], zero: i32) -> i32 {
        let positive = _mm512_add_epi32(self.positive[0], self.positive[1]);
        let negative = _mm512_add_epi32(self.negative[0], self.negative[1]);
        _mm512_reduce_add_epi32(_mm512_sub_epi32(positive, negative))
            .wrapping_add(crate::layers::dot_reference(row_tail, input_tail, zero))
    }
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
    let x = super::avx2::bytemuck_i8(input);
    if row.len() != x.len() {
        return crate::layers::dot_reference(row, input, zero);
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
    let x = super::avx2::bytemuck_i8(input);
    let Some((first, second)) = rows
        .split_at_checked(x.len())
        .filter(|(_, second)| second.len() == x.len())
    else {
        return crate::layers::dot2_reference(rows, input, zero);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{dot_reference, dot2_reference};
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn vnni_matches_the_portable_loop(
            (input, rows) in (1usize..400).prop_flat_map(|n| (
                proptest::collection::vec(any::<i8>(), n),
                proptest::collection::vec(any::<u8>(), 2 * n),
            )),
            zero in any::<i8>(),
        ) {
            prop_assume!(available());
            let zero = i32::from(zero);
            // SAFETY: the features are available (assumed above).
            let fast = unsafe { dot2(&rows, &input, zero) };
            prop_assert_eq!(fast, dot2_reference(&rows, &input, zero));
            // SAFETY: as above.
            let single = unsafe { dot(&rows[..input.len()], &input, zero) };
            prop_assert_eq!(single, dot_reference(&rows[..input.len()], &input, zero));
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
