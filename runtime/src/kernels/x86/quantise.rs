//! Input quantisation of `f32` samples with AVX-512, sixteen features at a time.
//!
//! The same IEEE operations as [`crate::layers::input`]'s scalar path, in the same order
//! (`(x − offset) · gain`, then ± 0.5 by sign and truncation), so every finite sample gives
//! the same step. Where the scalar conversion saturates, the vector one would give `i32::MIN`;
//! values are clamped to ±2^20 first (any step that large saturates the int8 output either
//! way), and NaN products (an overflowed difference times a zero gain) are masked to 0 steps
//! like the scalar `NaN as i32`. A block with a NaN or infinite sample is left to the scalar
//! loop, which reports its index.

use core::arch::x86_64::{
    __m512, __m512i, _CMP_GE_OQ, _CMP_ORD_Q, _mm_storeu_si128, _mm512_add_epi32, _mm512_add_ps,
    _mm512_and_si512, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask,
    _mm512_cmplt_epi32_mask, _mm512_cvtsepi32_epi8, _mm512_loadu_ps, _mm512_loadu_si512,
    _mm512_mask_blend_epi32, _mm512_mask_blend_ps, _mm512_maskz_cvttps_epi32, _mm512_max_ps,
    _mm512_min_ps, _mm512_mul_ps, _mm512_permutex2var_epi32, _mm512_permutexvar_epi32,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_sub_ps,
};

use super::{lanes_from, record_words};
use crate::records::FEATURE_RECORD_LEN;

/// Features per vector.
const LANES: usize = 16;

/// Whether this CPU has AVX-512 F.
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Words per feature record.
const RECORD_WORDS: usize = FEATURE_RECORD_LEN / 4;

/// The offsets and gains (words 0 and 1 of each record) of sixteen consecutive records, picked
/// out of the five vectors that hold them with permutes: a gather of sixteen strided words
/// costs about as much as the rest of the block's arithmetic.
#[target_feature(enable = "avx512f")]
fn offsets_and_gains(records: &[[u8; FEATURE_RECORD_LEN]; LANES]) -> (__m512, __m512) {
    let (words, _) = records.as_flattened().as_chunks::<64>();
    // SAFETY: each chunk is 64 readable bytes; the loads are unaligned.
    let v: [__m512i; RECORD_WORDS] = core::array::from_fn(|k| {
        words.get(k).map_or(_mm512_setzero_si512(), |w| unsafe {
            _mm512_loadu_si512(w.as_ptr().cast())
        })
    });
    let [v0, v1, v2, v3, v4] = v;
    // Word `5·i + field` of the 80: features 0..=6 lie in v0:v1, 7..=12 in v2:v3 and 13..=15
    // in v4.
    let pick = |field: usize| {
        let index = |first: usize| {
            let lanes = record_words(RECORD_WORDS, field, first);
            // SAFETY: `lanes` is 64 readable bytes.
            unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
        };
        let low = _mm512_permutex2var_epi32(v0, index(0), v1);
        let middle = _mm512_permutex2var_epi32(v2, index(32), v3);
        let high = _mm512_permutexvar_epi32(index(64), v4);
        let picked = _mm512_mask_blend_epi32(lanes_from(RECORD_WORDS, field, 32), low, middle);
        _mm512_castsi512_ps(_mm512_mask_blend_epi32(
            lanes_from(RECORD_WORDS, field, 64),
            picked,
            high,
        ))
    };
    (pick(0), pick(1))
}

/// Quantises the whole blocks of sixteen features of `event` into `output` and returns how
/// many samples it wrote (a multiple of sixteen); it stops at the first block that holds a
/// NaN or infinity. The caller quantises the rest.
///
/// # Safety
/// The CPU must support AVX-512 F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn quantise(
    event: &[f32],
    features: &[[u8; FEATURE_RECORD_LEN]],
    zero_point: i8,
    output: &mut [i8],
) -> usize {
    let half = _mm512_set1_ps(0.5);
    let limit = (1 << 20) as f32;
    let (low, high) = (_mm512_set1_ps(-limit), _mm512_set1_ps(limit));
    let magnitude = _mm512_set1_epi32(i32::MAX);
    let infinity = _mm512_set1_epi32(f32::INFINITY.to_bits() as i32);
    let zeros = _mm512_set1_epi32(i32::from(zero_point));
    let blocks = event
        .as_chunks::<LANES>()
        .0
        .iter()
        .zip(features.as_chunks::<LANES>().0)
        .zip(output.as_chunks_mut::<LANES>().0);
    let mut done = 0;
    for ((samples, records_block), out) in blocks {
        // SAFETY: `samples` is sixteen readable f32s; the load is unaligned.
        let x = unsafe { _mm512_loadu_ps(samples.as_ptr()) };
        let finite = _mm512_cmplt_epi32_mask(
            _mm512_and_si512(_mm512_castps_si512(x), magnitude),
            infinity,
        );
        if finite != u16::MAX {
            break;
        }
        let (offset, gain) = offsets_and_gains(records_block);
        let v = _mm512_mul_ps(_mm512_sub_ps(x, offset), gain);
        let non_negative = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, _mm512_setzero_ps());
        let rounded =
            _mm512_mask_blend_ps(non_negative, _mm512_sub_ps(v, half), _mm512_add_ps(v, half));
        let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(rounded, rounded);
        let clamped = _mm512_max_ps(low, _mm512_min_ps(high, rounded));
        let steps = _mm512_maskz_cvttps_epi32(ordered, clamped);
        // `zero + steps` cannot overflow (|steps| ≤ 2^20); then saturate to i8.
        let bytes = _mm512_cvtsepi32_epi8(_mm512_add_epi32(steps, zeros));
        // SAFETY: `out` is sixteen writable bytes; the store is unaligned.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), bytes) };
        done += LANES;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::input::{FeatureParams, InputQuant, InputSpec};
    use crate::layers::testing::uniform_f32;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Samples that reach every branch: ordinary, huge, tiny, signed zeros, and the odd
    /// non-finite one.
    fn sample() -> impl Strategy<Value = f32> {
        prop_oneof![
            8 => uniform_f32(-1e3, 1e3),
            1 => prop_oneof![Just(3e38f32), Just(-3e38), Just(0.0), Just(-0.0), Just(0.5), Just(-0.5)],
            1 => any::<f32>(),
        ]
    }

    fn params() -> impl Strategy<Value = FeatureParams> {
        prop_oneof![
            4 => (uniform_f32(-1e3, 1e3), uniform_f32(0.0, 10.0)),
            1 => (prop_oneof![Just(-3e38f32), Just(3e38)], prop_oneof![Just(0f32), Just(1e-3)]),
        ]
        .prop_filter_map("representable", |(offset, gain)| {
            FeatureParams::new(offset, gain).ok()
        })
    }

    proptest! {
        #[test]
        fn avx512_matches_the_scalar_path(
            (event, features) in (1usize..80).prop_flat_map(|n| (
                proptest::collection::vec(sample(), n),
                proptest::collection::vec(params(), n),
            )),
            zero_point in any::<i8>(),
        ) {
            if !available() {
                return Ok(());
            }
            let spec = InputSpec {
                channels: 1,
                length: event.len() as u32,
                zero_point,
                features,
            };
            let mut body = Vec::new();
            spec.write_body(&mut body);
            let layer = InputQuant::parse(&body).unwrap();
            let mut fast = std::vec![0i8; event.len()];
            let result = layer.run(&event, &mut fast);
            // The scalar path alone, one sample at a time through the same records.
            let mut scalar = std::vec![0i8; event.len()];
            let mut expected = Ok(());
            for (index, (&x, out)) in event.iter().zip(&mut scalar).enumerate() {
                let params = layer.feature(index).unwrap();
                match crate::layers::Sample::steps(x, &params) {
                    Some(steps) => {
                        *out = (i32::from(zero_point).saturating_add(steps)).clamp(-128, 127) as i8;
                    }
                    None => {
                        expected = Err(crate::layers::InputError::NonFinite { index });
                        break;
                    }
                }
            }
            prop_assert_eq!(result, expected);
            if result.is_ok() {
                prop_assert_eq!(fast, scalar);
            }
        }
    }
}
