//! Fixed-point requantisation: how an `i32` accumulator becomes an `i8` activation without a
//! floating-point unit.
//!
//! A real-valued rescale factor `m` (for a dense layer, `weight_scale * input_scale /
//! output_scale`) is stored as a Q31 `multiplier` and a power-of-two `shift` such that
//! `m ≈ multiplier / 2^31 * 2^shift`, with `multiplier` in `[2^30, 2^31)` for full precision
//! (or 0 for `m = 0`). Applying it is one 32×32→64-bit multiply and one rounding shift:
//!
//! ```text
//! total = 31 - shift                  (1 ..= 62, enforced)
//! apply(acc) = (acc * multiplier + 2^(total-1)) >> total      (round half up)
//! ```
//!
//! This is the scheme of TensorFlow Lite Micro and CMSIS-NN, minus their doubling-high-mul
//! corner cases: the 64-bit product is exact, so the result is `round(acc * m)` up to the
//! multiplier's 2^-31 relative error.

use core::fmt;

/// Smallest allowed `shift` (a rescale of about 2^-32 and below becomes 0).
pub const MIN_SHIFT: i32 = -31;
/// Largest allowed `shift` (rescales up to 2^30).
pub const MAX_SHIFT: i32 = 30;

/// A fixed-point rescale factor: `multiplier / 2^31 * 2^shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    multiplier: i32,
    shift: i32,
}

/// Why a pair of integers or a real number is not a valid [`Requant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequantError {
    /// The multiplier is negative (rescales of activations are always positive).
    NegativeMultiplier,
    /// The shift is outside [`MIN_SHIFT`]`..=`[`MAX_SHIFT`].
    ShiftOutOfRange,
    /// The real factor is negative, NaN or infinite.
    NotFiniteOrNegative,
    /// The real factor is at least 2^30, which no int8 layer needs.
    TooLarge,
}

impl fmt::Display for RequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NegativeMultiplier => "requantisation multiplier is negative",
            Self::ShiftOutOfRange => "requantisation shift is outside -31..=30",
            Self::NotFiniteOrNegative => "rescale factor is negative, NaN or infinite",
            Self::TooLarge => "rescale factor is 2^30 or more",
        })
    }
}

impl core::error::Error for RequantError {}

impl Requant {
    /// The identity rescale (`m = 1`).
    pub const IDENTITY: Self = Self {
        multiplier: 1 << 30,
        shift: 1,
    };

    /// The zero rescale (`m = 0`).
    pub const ZERO: Self = Self {
        multiplier: 0,
        shift: 0,
    };

    /// Builds a rescale from its stored integers.
    ///
    /// # Errors
    /// [`RequantError`] if the multiplier is negative or the shift out of range.
    pub const fn new(multiplier: i32, shift: i32) -> Result<Self, RequantError> {
        if multiplier < 0 {
            Err(RequantError::NegativeMultiplier)
        } else if shift < MIN_SHIFT || shift > MAX_SHIFT {
            Err(RequantError::ShiftOutOfRange)
        } else {
            Ok(Self { multiplier, shift })
        }
    }

    /// The nearest fixed-point representation of a real factor `m >= 0`.
    ///
    /// Runs on the host (exporter); the device only ever calls [`Requant::apply`].
    ///
    /// # Errors
    /// [`RequantError`] if `m` is negative, not finite, or at least 2^30.
    pub fn from_real(m: f64) -> Result<Self, RequantError> {
        if !m.is_finite() || m < 0.0 {
            return Err(RequantError::NotFiniteOrNegative);
        }
        if m >= f64::from(1u32 << 30) {
            return Err(RequantError::TooLarge);
        }
        if m == 0.0 {
            return Ok(Self::ZERO);
        }
        // Normalise m = fraction * 2^shift with fraction in [0.5, 1).
        let (mut fraction, mut shift) = (m, 0i32);
        while fraction >= 1.0 {
            fraction /= 2.0;
            shift += 1;
        }
        while fraction < 0.5 {
            fraction *= 2.0;
            shift -= 1;
        }
        // `f64::round` is not in `core`; the value is positive, so add a half and truncate.
        let mut multiplier = (fraction * f64::from(1u32 << 31) + 0.5) as i64;
        if multiplier == 1i64 << 31 {
            multiplier /= 2;
            shift += 1;
        }
        if shift < MIN_SHIFT {
            // Below 2^-32 every int8-sized accumulator rounds to zero anyway.
            return Ok(Self::ZERO);
        }
        Self::new(multiplier as i32, shift)
    }

    /// The Q31 multiplier.
    pub const fn multiplier(self) -> i32 {
        self.multiplier
    }

    /// The power-of-two shift.
    pub const fn shift(self) -> i32 {
        self.shift
    }

    /// The real factor this represents (host-side diagnostics and float references).
    pub fn to_real(self) -> f64 {
        // 2^shift built from its exponent bits (`powi` is not in `core`); shift is in -31..=30.
        let power = f64::from_bits(((1023 + i64::from(self.shift)) as u64) << 52);
        f64::from(self.multiplier) / f64::from(1u32 << 31) * power
    }

    /// `round(acc * m)`, rounding halves up, saturated to `i32`.
    #[inline]
    pub fn apply(self, acc: i32) -> i32 {
        let product = i64::from(acc) * i64::from(self.multiplier);
        // The constructor keeps shift in range; the clamp makes an out-of-range shift (which
        // cannot be built) harmless instead of a shift overflow.
        let total = (31 - self.shift).clamp(1, 62);
        // |product| < 2^62, so adding 2^61 cannot overflow.
        let rounded = (product + (1i64 << (total - 1))) >> total;
        rounded.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

/// Saturates an `i32` into `lo..=127` and returns it as `i8` (`lo >= -128`).
#[inline]
pub(crate) fn saturate_i8(value: i32, lo: i32) -> i8 {
    value.clamp(lo.max(-128), 127) as i8
}

/// `acc * multiplier / 2^(31 - shift)` rounded half up and saturated to `i32`, written from
/// the definition with exact rational arithmetic (a division, not the shift-and-add of
/// [`Requant::apply`]): the independent reference the kernels and layers are tested against.
#[cfg(test)]
pub(crate) fn exact_requant(requant: Requant, acc: i32) -> i32 {
    let numerator = i128::from(acc) * i128::from(requant.multiplier());
    let denominator = 1i128 << (31 - requant.shift());
    // round(n / d) with halves up = floor((2n + d) / 2d), for d > 0.
    let rounded = (2 * numerator + denominator).div_euclid(2 * denominator);
    rounded.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::uniform_f64;
    use proptest::prelude::*;

    #[test]
    fn identity_is_exact() {
        for acc in [-5, -1, 0, 1, 7, 1 << 20, i32::MIN, i32::MAX] {
            assert_eq!(Requant::IDENTITY.apply(acc), acc);
        }
    }

    #[test]
    fn rounds_halves_up() {
        let half = Requant::from_real(0.5).unwrap();
        assert_eq!(half.apply(3), 2); // 1.5 -> 2
        assert_eq!(half.apply(-3), -1); // -1.5 -> -1
        assert_eq!(half.apply(4), 2);
    }

    #[test]
    fn rejects_invalid_factors() {
        assert_eq!(
            Requant::from_real(-1.0),
            Err(RequantError::NotFiniteOrNegative)
        );
        assert_eq!(
            Requant::from_real(f64::NAN),
            Err(RequantError::NotFiniteOrNegative)
        );
        assert_eq!(Requant::from_real(2e9), Err(RequantError::TooLarge));
        assert_eq!(Requant::new(-1, 0), Err(RequantError::NegativeMultiplier));
        assert_eq!(Requant::new(1, 31), Err(RequantError::ShiftOutOfRange));
        assert_eq!(Requant::from_real(1e-12).unwrap().apply(i32::MAX), 0);
    }

    proptest! {
        #[test]
        fn matches_real_rounding(m in uniform_f64(1e-6, 1000.0), acc in -(1i32 << 24)..(1i32 << 24)) {
            let r = Requant::from_real(m).unwrap();
            prop_assert!((r.to_real() / m - 1.0).abs() < 1e-9);
            let exact = (f64::from(acc) * m).clamp(f64::from(i32::MIN), f64::from(i32::MAX));
            let got = f64::from(r.apply(acc));
            // Multiplier error 2^-31 relative plus half-unit rounding.
            prop_assert!((got - exact).abs() <= 0.5 + exact.abs() * 1e-9 + 1e-9,
                "m={m} acc={acc} got={got} exact={exact}");
        }

        #[test]
        fn equals_exact_rational_rounding(
            multiplier in 0i32..=i32::MAX,
            shift in MIN_SHIFT..=MAX_SHIFT,
            acc in any::<i32>(),
        ) {
            let r = Requant::new(multiplier, shift).unwrap();
            prop_assert_eq!(r.apply(acc), exact_requant(r, acc));
        }
    }
}
