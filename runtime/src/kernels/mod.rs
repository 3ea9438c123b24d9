//! The kernels: the arithmetic of the int8 layers, apart from the layers' byte formats.
//!
//! | module | what |
//! |---|---|
//! | [`generic`] | the portable loops: the oracle every faster path equals bit for bit |
//! | `x86` | AVX2 and AVX-512 (VNNI) paths, chosen at run time in `std` builds on x86-64 |
//! | `dsp` | Cortex-M4/M7 `SMLAD` paths, with the `dsp` feature on `thumbv7em` |
//!
//! The functions here pick a path and fall back to [`generic`]. All `unsafe` of the crate
//! (inline assembly and intrinsics) lives in `x86` and `dsp`, each block with a SAFETY comment;
//! property tests in those modules compare them with [`generic`] on random inputs.
//!
//! Layers ([`crate::layers`]) call in here; nothing here reads a layer. The per-channel and
//! per-feature record layouts that the vector paths load directly come from
//! [`crate::records`].

#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod dsp;
pub(crate) mod generic;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86;

use crate::records::CHANNEL_RECORD_LEN;
use generic::{dot_reference, dot2_reference, weight};

/// Events that [`crate::Encoder::encode_batch`] runs side by side through each layer, so
/// that dense layers load each weight block once for all of them.
pub const LANES: usize = 4;

/// Output channels that [`block_dots`] computes, and [`finish_block`] finishes, at a time.
pub(crate) const FINISH_BLOCK: usize = 16;

/// `out[c] = saturate(zero_point + requant(bias_c + accs[c]))` for a whole block of
/// [`FINISH_BLOCK`] channels in one vector pass, where the CPU has one (AVX-512 on x86-64
/// `std` builds, checked at run time), bit-exact with the layers' per-channel loop. Returns
/// `false`, writing nothing, where there is no such path or the block is not whole; the
/// caller then finishes channel by channel.
#[inline]
pub(crate) fn finish_block(
    accs: &[i32; FINISH_BLOCK],
    records: &[[u8; CHANNEL_RECORD_LEN]],
    zero_point: i8,
    relu: bool,
    out: &mut [i8],
) -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let (Ok(records), Ok(out)) = (
        <&[[u8; CHANNEL_RECORD_LEN]; FINISH_BLOCK]>::try_from(records),
        <&mut [i8; FINISH_BLOCK]>::try_from(&mut *out),
    ) {
        return x86::finish_channels(accs, records, zero_point, relu, out);
    }
    let _ = (accs, records, zero_point, relu, out);
    false
}

/// Quantises the leading whole blocks of sixteen `f32` samples in vector passes where the
/// CPU has them (AVX-512 on x86-64 `std` builds, checked at run time); returns how many
/// samples it wrote, 0 elsewhere. The caller ([`crate::layers::input`]) does the rest and
/// reports bad samples; the result equals its portable loop bit for bit.
#[inline]
pub(crate) fn quantise_f32(
    event: &[f32],
    features: &[[u8; crate::records::FEATURE_RECORD_LEN]],
    zero_point: i8,
    output: &mut [i8],
) -> usize {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    return x86::quantise_f32(event, features, zero_point, output);
    #[allow(unreachable_code)]
    {
        let _ = (event, features, zero_point, output);
        0
    }
}

/// `Σ w_i · (x_i - zero)` over one weight row: the inner loop of the head. Fast paths as for
/// [`dot2`].
#[inline]
pub(crate) fn dot(row: &[u8], input: &[i8], zero: i32) -> i32 {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    return dsp::dot(row, input, zero);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(acc) = x86::dot(row, input, zero) {
        return acc;
    }
    #[allow(unreachable_code)]
    dot_reference(row, input, zero)
}

/// [`dot`] of two rows stored back to back (`rows.len() == 2 * input.len()`): what
/// [`dot2_lanes`] runs per event where it has nothing faster. On ARM with the `dsp` feature it
/// runs on the DSP extension, on x86-64 `std` builds with AVX-512 VNNI or AVX2 when the CPU has
/// it (checked at run time), elsewhere it is [`dot_reference`] twice.
#[inline]
pub(crate) fn dot2(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    return dsp::dot2(rows, input, zero);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(accs) = x86::dot2(rows, input, zero) {
        return accs;
    }
    #[allow(unreachable_code)]
    dot2_reference(rows, input, zero)
}

/// [`dot2`] of the same two rows against the activations of `E` events: the inner loop of
/// dense layers and the head (see [`crate::Encoder::encode_batch`]). Where the CPU has a path
/// that loads each weight once for all events it takes it, else it is [`dot2`] per event.
/// `weight_sums` are the rows' `Σ w` where the encoder keeps them (the x86 kernels need them
/// and otherwise form them as they go).
#[inline]
pub(crate) fn dot2_lanes<const E: usize>(
    rows: &[u8],
    inputs: [&[i8]; E],
    zero: i32,
    weight_sums: Option<[i32; 2]>,
) -> [[i32; 2]; E] {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(accs) = x86::dot2_lanes(rows, inputs, zero, weight_sums) {
        return accs;
    }
    let _ = weight_sums;
    inputs.map(|input| dot2(rows, input, zero))
}

/// Sixteen rows ([`FINISH_BLOCK`], stored back to back) against one event, given their
/// entries of the encoder's weight-sum table, where the CPU has a path that does better than
/// eight [`dot2_lanes`] calls; `None` leaves them to those.
#[inline]
pub(crate) fn dot16(
    rows: &[u8],
    input: &[i8],
    zero: i32,
    weight_sums: &[[i8; 4]],
) -> Option<[i32; FINISH_BLOCK]> {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        let sums = block_sums(weight_sums.get(..FINISH_BLOCK)?)?;
        return x86::dot16(rows, input, zero, sums);
    }
    #[allow(unreachable_code)]
    {
        let _ = (rows, input, zero, weight_sums);
        None
    }
}

/// One entry of the encoder's weight-sum table: a little-endian `i32` in scratch bytes.
fn table_entry(bytes: [i8; 4]) -> i32 {
    i32::from_le_bytes(bytes.map(|b| b as u8))
}

/// A block of [`FINISH_BLOCK`] entries of the weight-sum table.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn block_sums(table: &[[i8; 4]]) -> Option<[i32; FINISH_BLOCK]> {
    let block: &[[i8; 4]; FINISH_BLOCK] = table.try_into().ok()?;
    Some(block.map(table_entry))
}

/// The sums of rows `row` and `row + 1` from a layer's part of the encoder's weight-sum table,
/// if there is one.
fn pair_sums(table: Option<&[[i8; 4]]>, row: usize) -> Option<[i32; 2]> {
    let &[first, second] = table?.get(row..row + 2)? else {
        return None;
    };
    Some([first, second].map(table_entry))
}

/// `Σ w·(x − zero)` of a block of up to [`FINISH_BLOCK`] rows (`rows`, `n` weights each, the
/// layer's rows from `first_row` on) for each of `E` events: the work of dense layers and the
/// head. A single event with the layer's weight sums takes the block in one [`dot16`] call;
/// otherwise rows go two at a time through [`dot2_lanes`], and an odd last row through [`dot`].
#[inline]
pub(crate) fn block_dots<const E: usize>(
    rows: &[u8],
    n: usize,
    inputs: [&[i8]; E],
    zero: i32,
    weight_sums: Option<&[[i8; 4]]>,
    first_row: usize,
) -> [[i32; FINISH_BLOCK]; E] {
    if let ([input], Some(table)) = (inputs.as_slice(), weight_sums)
        && let Some(block) = table
            .get(first_row..)
            .and_then(|table| dot16(rows, input, zero, table))
    {
        return [block; E]; // E is 1 here
    }
    let mut accs = [[0i32; FINISH_BLOCK]; E];
    let pairs = rows.chunks_exact(2 * n);
    let last = pairs.remainder();
    for (pair, rows) in pairs.enumerate() {
        let sums = dot2_lanes(
            rows,
            inputs,
            zero,
            pair_sums(weight_sums, first_row + 2 * pair),
        );
        for (accs, sums) in accs.iter_mut().zip(sums) {
            if let Some(accs) = accs.get_mut(2 * pair..2 * pair + 2) {
                accs.copy_from_slice(&sums);
            }
        }
    }
    if !last.is_empty() {
        let row = rows.len() / n.max(1) - 1;
        for (accs, input) in accs.iter_mut().zip(inputs) {
            if let Some(acc) = accs.get_mut(row) {
                *acc = dot(last, input, zero);
            }
        }
    }
    accs
}

/// `Σ w` of each row of `weights` (`in_features` weights each), in order: the table that
/// [`crate::Encoder`] keeps for [`dot2_lanes`].
pub(crate) fn weight_sums(weights: &[u8], in_features: usize) -> impl Iterator<Item = i32> + '_ {
    weights
        .chunks_exact(in_features.max(1))
        .map(|row| row.iter().map(|&w| weight(w)).sum())
}
