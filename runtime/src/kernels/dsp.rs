//! The dot product on the Cortex-M4/M7 DSP extension (feature `dsp`, ARM targets only).
//!
//! Four weights and four activations are loaded as one word each; `SXTB16` sign-extends the
//! weight bytes into 16-bit pairs, `SXTAB16` does the same to the activations while
//! subtracting the zero point, and `SMLAD` multiplies and accumulates two pairs at once.
//! Every lane fits 16 bits (|w| ≤ 128, |x − zero| ≤ 255) and `SMLAD` accumulates with the same
//! 32-bit wrapping add as the portable loop, so the result is bit-exact with
//! [`super::generic::dot_reference`]; the firmware's QEMU test checks whole codes against the host.

#![allow(unsafe_code)]

use core::arch::asm;

/// `(sext(x[0]), sext(x[2]))` as two 16-bit lanes.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let out;
    // SAFETY: a register-only DSP instruction; no memory, stack or flags are touched.
    unsafe {
        asm!("sxtb16 {o}, {x}", o = lateout(reg) out, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `(sext(x[1]), sext(x[3]))` as two 16-bit lanes.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let out;
    // SAFETY: as `sxtb16`.
    unsafe {
        asm!("sxtb16 {o}, {x}, ror #8", o = lateout(reg) out, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `add + (sext(x[0]), sext(x[2]))`, lane by lane.
#[inline(always)]
fn sxtab16(add: u32, x: u32) -> u32 {
    let out;
    // SAFETY: as `sxtb16`.
    unsafe {
        asm!("sxtab16 {o}, {a}, {x}", o = lateout(reg) out, a = in(reg) add, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `add + (sext(x[1]), sext(x[3]))`, lane by lane.
#[inline(always)]
fn sxtab16_ror8(add: u32, x: u32) -> u32 {
    let out;
    // SAFETY: as `sxtb16`.
    unsafe {
        asm!("sxtab16 {o}, {a}, {x}, ror #8", o = lateout(reg) out, a = in(reg) add,
             x = in(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `acc + a.lo·b.lo + a.hi·b.hi` (signed 16-bit lanes, wrapping 32-bit sum).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let out;
    // SAFETY: as `sxtb16`; SMLAD sets only the sticky Q flag, which nothing reads.
    unsafe {
        asm!("smlad {o}, {a}, {b}, {c}", o = lateout(reg) out, a = in(reg) a, b = in(reg) b,
             c = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
    }
    out
}

fn word(bytes: &[u8]) -> u32 {
    match bytes {
        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

fn word_i8(bytes: &[i8]) -> u32 {
    match bytes {
        [a, b, c, d] => u32::from_le_bytes([*a as u8, *b as u8, *c as u8, *d as u8]),
        _ => 0,
    }
}

/// `Σ w_i · (x_i - zero)`, as [`super::generic::dot_reference`].
#[inline]
pub(crate) fn dot(row: &[u8], input: &[i8], zero: i32) -> i32 {
    // −zero in both 16-bit lanes (zero is an i8 zero point, so it fits).
    let minus_zero = u32::from((-zero) as u16) * 0x0001_0001;
    let mut acc = 0i32;
    let weights = row.chunks_exact(4);
    let activations = input.chunks_exact(4);
    let (weights_tail, activations_tail) = (weights.remainder(), activations.remainder());
    for (w, x) in weights.zip(activations) {
        let (w, x) = (word(w), word_i8(x));
        acc = smlad(sxtb16(w), sxtab16(minus_zero, x), acc);
        acc = smlad(sxtb16_ror8(w), sxtab16_ror8(minus_zero, x), acc);
    }
    acc.wrapping_add(super::generic::dot_reference(
        weights_tail,
        activations_tail,
        zero,
    ))
}

/// Two rows at once (`rows` holds them back to back, `input.len()` bytes each): the
/// activations are widened once for both. (Four rows run out of registers and spill.)
#[inline]
pub(crate) fn dot2(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    let n = input.len();
    let (r0, r1) = rows.split_at_checked(n).unwrap_or((&[], &[]));
    let minus_zero = u32::from((-zero) as u16) * 0x0001_0001;
    let (mut acc0, mut acc1) = (0i32, 0i32);
    let (xs, w0s, w1s) = (
        input.chunks_exact(4),
        r0.chunks_exact(4),
        r1.chunks_exact(4),
    );
    let tails = (xs.remainder(), w0s.remainder(), w1s.remainder());
    for ((x, w0), w1) in xs.zip(w0s).zip(w1s) {
        let x = word_i8(x);
        let (low, high) = (sxtab16(minus_zero, x), sxtab16_ror8(minus_zero, x));
        let (w0, w1) = (word(w0), word(w1));
        acc0 = smlad(sxtb16_ror8(w0), high, smlad(sxtb16(w0), low, acc0));
        acc1 = smlad(sxtb16_ror8(w1), high, smlad(sxtb16(w1), low, acc1));
    }
    let (x, w0, w1) = tails;
    [
        acc0.wrapping_add(super::generic::dot_reference(w0, x, zero)),
        acc1.wrapping_add(super::generic::dot_reference(w1, x, zero)),
    ]
}
