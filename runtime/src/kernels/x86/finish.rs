//! The output arithmetic of sixteen channels at once with AVX-512:
//! `saturate(zero + requant(acc + bias))` as in [`crate::layers::ChannelParams::finish`].
//!
//! Bias, multiplier and shift are picked out of the sixteen 12-byte records with permutes.
//! The product is formed in 64-bit lanes (`vpmullq`), rounded with the same `2^(total−1)` and
//! arithmetic shift, and narrowed with signed saturation, which is the scalar clamp to `i32`.
//! The rescaled value is then clamped to ±2^16 (anything that large saturates the int8 output
//! either way) so that adding the zero point cannot wrap, and narrowed to i8 with saturation.
//! The records are those of a validated view, so every step is exact and the bytes equal the
//! scalar path's; a property test compares them.

use core::arch::x86_64::{
    __m256i, __m512i, _mm_storeu_si128, _mm512_add_epi32, _mm512_add_epi64, _mm512_castsi256_si512,
    _mm512_cvtepi32_epi64, _mm512_cvtsepi32_epi8, _mm512_cvtsepi64_epi32,
    _mm512_extracti64x4_epi64, _mm512_inserti64x4, _mm512_loadu_si512, _mm512_mask_blend_epi32,
    _mm512_max_epi32, _mm512_min_epi32, _mm512_mullo_epi64, _mm512_permutex2var_epi32,
    _mm512_permutexvar_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_sllv_epi64, _mm512_srav_epi64, _mm512_sub_epi32, _mm512_sub_epi64,
};

use super::{lanes_from, record_words};
use crate::records::CHANNEL_RECORD_LEN;

/// Channels per call.
pub(crate) const CHANNELS: usize = 16;

/// Whether this CPU has AVX-512 F and DQ.
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq")
}

/// `round(acc · multiplier / 2^total)` for eight channels in 64-bit lanes, saturated to i32.
#[target_feature(enable = "avx512f,avx512dq")]
fn rescale(acc: __m256i, multiplier: __m256i, total: __m256i) -> __m256i {
    let product = _mm512_mullo_epi64(
        _mm512_cvtepi32_epi64(acc),
        _mm512_cvtepi32_epi64(multiplier),
    );
    let total = _mm512_cvtepi32_epi64(total);
    let half = _mm512_sllv_epi64(
        _mm512_set1_epi64(1),
        _mm512_sub_epi64(total, _mm512_set1_epi64(1)),
    );
    _mm512_cvtsepi64_epi32(_mm512_srav_epi64(_mm512_add_epi64(product, half), total))
}

/// Words per channel record.
const RECORD_WORDS: usize = CHANNEL_RECORD_LEN / 4;

/// The bias, multiplier and shift of sixteen records, picked out of the three vectors that
/// hold them with permutes.
#[inline]
#[target_feature(enable = "avx512f")]
fn fields(records: &[[u8; CHANNEL_RECORD_LEN]; CHANNELS]) -> [__m512i; RECORD_WORDS] {
    let (words, _) = records.as_flattened().as_chunks::<64>();
    // SAFETY: each chunk is 64 readable bytes; the loads are unaligned.
    let [v0, v1, v2]: [__m512i; RECORD_WORDS] = core::array::from_fn(|k| {
        words.get(k).map_or(_mm512_setzero_si512(), |w| unsafe {
            _mm512_loadu_si512(w.as_ptr().cast())
        })
    });
    // Word `3·c + field` of the 48: in v0:v1 below word 32, else in v2.
    let pick = |field: usize| {
        let index = |first: usize| {
            let lanes = record_words(RECORD_WORDS, field, first);
            // SAFETY: `lanes` is 64 readable bytes.
            unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
        };
        _mm512_mask_blend_epi32(
            lanes_from(RECORD_WORDS, field, 32),
            _mm512_permutex2var_epi32(v0, index(0), v1),
            _mm512_permutexvar_epi32(index(32), v2),
        )
    };
    [pick(0), pick(1), pick(2)]
}

/// Finishes sixteen channels: `out[c] = saturate(zero_point + requant_c(accs[c] + bias_c))`,
/// clamped at the zero point from below when `relu` is set.
///
/// # Safety
/// The CPU must support AVX-512 F and DQ ([`available`]).
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn finish(
    accs: &[i32; CHANNELS],
    records: &[[u8; CHANNEL_RECORD_LEN]; CHANNELS],
    zero_point: i8,
    relu: bool,
    out: &mut [i8; CHANNELS],
) {
    let [bias, multiplier, shift] = fields(records);
    // SAFETY: `accs` is 64 readable bytes; the load is unaligned.
    let accs = unsafe { _mm512_loadu_si512(accs.as_ptr().cast()) };
    // As `Requant::apply`: total = clamp(31 − shift, 1, 62).
    let total = _mm512_min_epi32(
        _mm512_max_epi32(
            _mm512_sub_epi32(_mm512_set1_epi32(31), shift),
            _mm512_set1_epi32(1),
        ),
        _mm512_set1_epi32(62),
    );
    let sums = _mm512_add_epi32(accs, bias);
    let halves = |v: __m512i| {
        (
            _mm512_extracti64x4_epi64::<0>(v),
            _mm512_extracti64x4_epi64::<1>(v),
        )
    };
    let ((s0, s1), (m0, m1), (t0, t1)) = (halves(sums), halves(multiplier), halves(total));
    let rescaled = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(rescale(s0, m0, t0)),
        rescale(s1, m1, t1),
    );
    let limit = 1 << 16;
    let clamped = _mm512_min_epi32(
        _mm512_max_epi32(rescaled, _mm512_set1_epi32(-limit)),
        _mm512_set1_epi32(limit),
    );
    let floor = if relu { i32::from(zero_point) } else { -128 };
    let value = _mm512_max_epi32(
        _mm512_add_epi32(clamped, _mm512_set1_epi32(i32::from(zero_point))),
        _mm512_set1_epi32(floor),
    );
    // SAFETY: `out` is sixteen writable bytes; the store is unaligned.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), _mm512_cvtsepi32_epi8(value)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ChannelParams;
    use crate::layers::testing::channel_params;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn avx512_matches_the_scalar_finish(
            params in proptest::array::uniform16(channel_params(1024)),
            accs in proptest::array::uniform16(prop_oneof![
                4 => -(1i32 << 22)..(1 << 22),
                1 => -(1i32 << 30)..(1 << 30),
            ]),
            zero_point in any::<i8>(),
            relu in any::<bool>(),
        ) {
            if !available() {
                return Ok(());
            }
            let mut bytes = Vec::new();
            params.iter().for_each(|p| p.write(&mut bytes));
            let (records, _) = bytes.as_chunks::<CHANNEL_RECORD_LEN>();
            let records: &[[u8; CHANNEL_RECORD_LEN]; CHANNELS] = records.try_into().unwrap();
            let mut fast = [0i8; CHANNELS];
            // SAFETY: the features are available (checked above).
            unsafe { finish(&accs, records, zero_point, relu, &mut fast) };
            let scalar: [i8; CHANNELS] = core::array::from_fn(|c| {
                ChannelParams::decode(&records[c]).finish(accs[c], zero_point, relu)
            });
            prop_assert_eq!(fast, scalar);
        }
    }
}
