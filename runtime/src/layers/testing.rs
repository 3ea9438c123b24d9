//! Strategies and reference arithmetic shared by the layer tests.

use proptest::prelude::*;

use super::ChannelParams;
use crate::quant::{Requant, exact_requant};

/// Grid steps of [`uniform_f32`] and [`uniform_f64`].
const UNIFORM_STEPS: u32 = 1 << 24;

/// Uniform floats in `[lo, hi]` on a grid of 2^24 steps. The property tests draw floats
/// this way, not from proptest's own float ranges, whose sampler can trip its internal
/// assertion `self.low - result < initial.step` on some seeds (proptest 1.12; it failed a
/// quantisation test in CI once, and other projects met it too).
pub(crate) fn uniform_f32(lo: f32, hi: f32) -> impl Strategy<Value = f32> {
    (0..=UNIFORM_STEPS).prop_map(move |k| lo + (hi - lo) * (k as f32 / UNIFORM_STEPS as f32))
}

/// [`uniform_f32`] for `f64`.
pub(crate) fn uniform_f64(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (0..=UNIFORM_STEPS)
        .prop_map(move |k| lo + (hi - lo) * (f64::from(k) / f64::from(UNIFORM_STEPS)))
}

/// Random channel parameters with a rescale that keeps typical outputs inside int8 for the
/// given fan-in, while still exercising saturation.
pub(crate) fn channel_params(fan_in: u32) -> impl Strategy<Value = ChannelParams> {
    let typical = 1.0 / (f64::from(fan_in).sqrt() * 128.0);
    (-(1i32 << 20)..(1 << 20), uniform_f64(-3.0, 3.0)).prop_map(move |(bias, log_factor)| {
        ChannelParams {
            bias,
            requant: Requant::from_real(typical * log_factor.exp()).unwrap_or(Requant::ZERO),
        }
    })
}

/// The output arithmetic written from its definition with wide integers (the rescale too:
/// [`crate::quant::exact_requant`], not the kernels' own `Requant::apply`).
pub(crate) fn reference_finish(acc: i64, params: ChannelParams, zero_point: i8, relu: bool) -> i8 {
    let total = i32::try_from(acc + i64::from(params.bias)).unwrap();
    let value = i64::from(zero_point) + i64::from(exact_requant(params.requant, total));
    let floor = if relu { i64::from(zero_point) } else { -128 };
    value.clamp(floor, 127) as i8
}
