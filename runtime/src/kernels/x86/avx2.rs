//! Dot products with AVX2, for x86-64 CPUs without AVX-512 VNNI.
//!
//! Sixteen weights and activations at a time are sign-extended to 16 bits (`vpmovsxbw`), the
//! zero point is subtracted from the activations, and `vpmaddwd` multiplies and adds pairs
//! into 32-bit lanes. Every lane fits (|w| ≤ 128, |x − zero| ≤ 255, a pair sum ≤ 65 280), and
//! the 32-bit sums wrap like the portable loop's, so results are bit-exact with
//! [`crate::kernels::generic::dot_reference`] (a property test compares them on random rows).

use core::arch::x86_64::{
    __m128i, __m256i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_shuffle_epi32,
    _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_extracti128_si256,
    _mm256_madd_epi16, _mm256_set1_epi16, _mm256_setzero_si256, _mm256_sub_epi16,
};

/// Whether this CPU has AVX2 (detected once by `std`, then a cached load).
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// Sixteen bytes at `offset` sign-extended to 16-bit lanes; `None` past the end.
#[target_feature(enable = "avx2")]
fn widen(bytes: &[u8], offset: usize) -> Option<__m256i> {
    let chunk = bytes.get(offset..offset + 16)?;
    // SAFETY: `chunk` is 16 readable bytes; the load is unaligned.
    let lanes = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
    Some(_mm256_cvtepi8_epi16(lanes))
}

#[target_feature(enable = "avx2")]
fn horizontal_sum(v: __m256i) -> i32 {
    let halves = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b01_00_11_10>(halves));
    let total = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs));
    _mm_cvtsi128_si32(total)
}

/// `Σ w_i · (x_i - zero)` for `R` rows of `input.len()` weights each, sharing the widened
/// activations. Rows of another length get the portable loop.
#[target_feature(enable = "avx2")]
fn dot_rows<const R: usize>(rows: [&[u8]; R], input: &[i8], zero: i32) -> [i32; R] {
    let n = input.len();
    // The activations as bytes (same bits): the widening reads them as signed.
    let x: &[u8] = super::bytemuck_i8(input);
    let zeros = _mm256_set1_epi16(zero as i16);
    let mut acc = [_mm256_setzero_si256(); R];
    let blocks = if rows.iter().all(|r| r.len() == n) {
        n / 16
    } else {
        0
    };
    'blocks: for block in 0..blocks {
        let at = block * 16;
        let Some(xs) = widen(x, at) else { break };
        let xs = _mm256_sub_epi16(xs, zeros);
        for (acc, row) in acc.iter_mut().zip(rows) {
            let Some(w) = widen(row, at) else {
                break 'blocks;
            };
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(w, xs));
        }
    }
    let done = blocks * 16;
    let input_tail = input.get(done..).unwrap_or(&[]);
    core::array::from_fn(|k| {
        let row_tail = rows[k].get(done..).unwrap_or(&[]);
        horizontal_sum(acc[k]).wrapping_add(crate::kernels::generic::dot_reference(
            row_tail, input_tail, zero,
        ))
    })
}

/// `Σ w_i · (x_i - zero)` over one row.
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dot(row: &[u8], input: &[i8], zero: i32) -> i32 {
    let [acc] = dot_rows([row], input, zero);
    acc
}

/// Two rows at once (`rows` holds both, `input.len()` each).
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dot2(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    let (r0, r1) = rows.split_at_checked(input.len()).unwrap_or((&[], &[]));
    dot_rows([r0, r1], input, zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn avx2_matches_the_portable_loop(
            (input, rows) in (1usize..300).prop_flat_map(|n| (
                proptest::collection::vec(any::<i8>(), n),
                proptest::collection::vec(any::<u8>(), 2 * n),
            )),
            zero in any::<i8>(),
        ) {
            if !available() {
                return Ok(());
            }
            let zero = i32::from(zero);
            // SAFETY: AVX2 is available (checked above).
            let fast = unsafe { dot2(&rows, &input, zero) };
            prop_assert_eq!(fast, crate::kernels::generic::dot2_reference(&rows, &input, zero));
            // SAFETY: as above.
            let single = unsafe { dot(&rows[..input.len()], &input, zero) };
            prop_assert_eq!(single, crate::kernels::generic::dot_reference(&rows[..input.len()], &input, zero));
        }
    }

    #[test]
    fn extreme_values_do_not_overflow_a_lane() {
        if !available() {
            return;
        }
        let input: Vec<i8> = std::vec![127; 1024];
        let rows: Vec<u8> = std::vec![0x80; 2048]; // -128
        // SAFETY: AVX2 is available.
        let fast = unsafe { dot2(&rows, &input, -128) };
        assert_eq!(fast, [-128 * 255 * 1024; 2]);
        assert_eq!(
            fast,
            crate::kernels::generic::dot2_reference(&rows, &input, -128)
        );
    }
}
