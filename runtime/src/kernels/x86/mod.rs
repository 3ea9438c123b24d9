//! Kernels for x86-64, chosen at run time in `std` builds (hosts running the emulator, the
//! trainer's checks or a front-end PC): dot products on AVX-512 VNNI where the CPU has it
//! (`vnni`: one or two rows, sixteen rows with the encoder's weight sums, four events side by
//! side), else AVX2 (`avx2`), else `None` and the caller runs the portable loop; and the
//! input quantisation of `f32` events (`quantise`) and the output arithmetic of sixteen
//! channels (`finish`) on AVX-512. Every path is bit-exact with the portable one; property
//! tests in each module compare them on random inputs.
//!
//! Detection is `std`'s `is_x86_feature_detected!`, which probes once and then costs a cached
//! load per call.

#![allow(unsafe_code)]

mod avx2;
pub(crate) mod finish;
mod quantise;
mod vnni;

/// `&[i8]` as `&[u8]`: the same bytes, for the kernels' loads.
fn bytemuck_i8(values: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast::<u8>(), values.len()) }
}

/// Indices for `vpermt2d`/`vpermd` that pick, for sixteen records of `stride` words laid out
/// back to back, word `field` of each: lane `i` takes word `stride·i + field − first` of the
/// two vectors (32 words) that start at word `first`. Built at compile time.
pub(super) const fn record_words(stride: usize, field: usize, first: usize) -> [i32; 16] {
    let mut lanes = [0; 16];
    let mut i = 0;
    while i < 16 {
        lanes[i] = ((stride * i + field).wrapping_sub(first) & 31) as i32;
        i += 1;
    }
    lanes
}

/// The lanes whose word (as in [`record_words`]) lies at or past word `first`.
pub(super) const fn lanes_from(stride: usize, field: usize, first: usize) -> u16 {
    let mut mask = 0;
    let mut i = 0;
    while i < 16 {
        if stride * i + field >= first {
            mask |= 1 << i;
        }
        i += 1;
    }
    mask
}

/// `Σ w_i · (x_i - zero)` over one row, if this CPU has a fast path.
#[inline]
pub(crate) fn dot(row: &[u8], input: &[i8], zero: i32) -> Option<i32> {
    if vnni::available() {
        // SAFETY: AVX-512 F/BW/VNNI were just detected on this CPU.
        Some(unsafe { vnni::dot(row, input, zero) })
    } else if avx2::available() {
        // SAFETY: AVX2 was just detected on this CPU.
        Some(unsafe { avx2::dot(row, input, zero) })
    } else {
        None
    }
}

/// Two rows stored back to back, if this CPU has a fast path.
#[inline]
pub(crate) fn dot2(rows: &[u8], input: &[i8], zero: i32) -> Option<[i32; 2]> {
    if vnni::available() {
        // SAFETY: AVX-512 F/BW/VNNI were just detected on this CPU.
        Some(unsafe { vnni::dot2(rows, input, zero) })
    } else if avx2::available() {
        // SAFETY: AVX2 was just detected on this CPU.
        Some(unsafe { avx2::dot2(rows, input, zero) })
    } else {
        None
    }
}

/// Quantises the leading whole blocks of sixteen `f32` samples, if this CPU has AVX-512;
/// returns how many samples it wrote (the caller does the rest, and reports bad samples).
#[inline]
pub(crate) fn quantise_f32(
    event: &[f32],
    features: &[[u8; crate::records::FEATURE_RECORD_LEN]],
    zero_point: i8,
    output: &mut [i8],
) -> usize {
    if quantise::available() {
        // SAFETY: AVX-512 F was just detected on this CPU.
        unsafe { quantise::quantise(event, features, zero_point, output) }
    } else {
        0
    }
}

/// Two rows against the activations of `E` events, if this CPU has a fast path for that many
/// (one or four). `weight_sums` are the rows' `Σ w` where the encoder keeps them.
#[inline]
pub(crate) fn dot2_lanes<const E: usize>(
    rows: &[u8],
    inputs: [&[i8]; E],
    zero: i32,
    weight_sums: Option<[i32; 2]>,
) -> Option<[[i32; 2]; E]> {
    if !vnni::available() {
        return None;
    }
    let sums = if let Ok(four) = <[&[i8]; 4]>::try_from(inputs.as_slice()) {
        // SAFETY: AVX-512 F/BW/VNNI were just detected on this CPU.
        unsafe { vnni::dot2_lanes4(rows, four, zero, weight_sums) }
    } else if let [input] = inputs.as_slice() {
        // The same kernel the caller's per-event fallback (`layers::dot2`) would reach, but
        // taken here directly: through the fallback, an event without the weight-sum table
        // ran about 15 % slower.
        // SAFETY: as above.
        let sums = unsafe { vnni::dot2(rows, input, zero) };
        [sums, [0; 2], [0; 2], [0; 2]]
    } else {
        return None;
    };
    Some(core::array::from_fn(|e| {
        sums.get(e).copied().unwrap_or_default()
    }))
}

/// Finishes sixteen output channels with AVX-512 if this CPU has it; `false` leaves them to
/// the caller.
#[inline]
pub(crate) fn finish_channels(
    accs: &[i32; finish::CHANNELS],
    records: &[[u8; crate::records::CHANNEL_RECORD_LEN]; finish::CHANNELS],
    zero_point: i8,
    relu: bool,
    out: &mut [i8; finish::CHANNELS],
) -> bool {
    if finish::available() {
        // SAFETY: AVX-512 F/DQ were just detected on this CPU.
        unsafe { finish::finish(accs, records, zero_point, relu, out) };
        true
    } else {
        false
    }
}

/// Sixteen rows against one event with their weight sums, if this CPU has a fast path and
/// the rows suit it.
#[inline]
pub(crate) fn dot16(
    rows: &[u8],
    input: &[i8],
    zero: i32,
    weight_sums: [i32; 16],
) -> Option<[i32; 16]> {
    if !vnni::available() {
        return None;
    }
    // SAFETY: AVX-512 F/BW/VNNI were just detected on this CPU.
    unsafe { vnni::dot16(rows, input, zero, weight_sums) }
}
