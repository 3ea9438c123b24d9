//! Binary codes: the unit that travels from the front-end to the host.
//!
//! # Contract (docs/ARCHITECTURE.md, contract 1)
//!
//! A [`Code<BYTES>`] holds `BYTES * 8` bits. Bit `i` is latent `i`'s posterior mean `> 0.5`
//! (the encoder's binarising head computes it as the sign of a logit). Bit `i` lives in byte
//! `i / 8` at bit position `i % 8`, least significant bit first. Bits past the model's code width
//! are zero.
//!
//! The hex form prints the bytes in storage order, two lowercase digits each, so
//! `Code128` prints 32 hex digits and byte 0 (bits 0..8) comes first. Parsing accepts upper or
//! lower case and nothing else.

use core::fmt;
use core::str::FromStr;

/// A fixed-width binary code of `BYTES * 8` bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code<const BYTES: usize>([u8; BYTES]);

/// The default 128-bit code.
pub type Code128 = Code<16>;

impl<const BYTES: usize> Code<BYTES> {
    /// Number of bits the code can hold.
    pub const BITS: usize = BYTES * 8;

    /// The all-zero code.
    pub const fn zero() -> Self {
        Self([0; BYTES])
    }

    /// Wraps raw bytes laid out as in the module contract.
    pub const fn from_bytes(bytes: [u8; BYTES]) -> Self {
        Self(bytes)
    }

    /// Reads a code from a slice of exactly `BYTES` bytes; `None` if the length differs.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The bytes in storage order.
    pub const fn as_bytes(&self) -> &[u8; BYTES] {
        &self.0
    }

    /// Mutable access to the bytes, for kernels that write bits in place.
    pub fn as_bytes_mut(&mut self) -> &mut [u8; BYTES] {
        &mut self.0
    }

    /// Bit `i`, or `None` if `i >= Self::BITS`.
    pub fn bit(&self, i: usize) -> Option<bool> {
        self.0.get(i / 8).map(|byte| byte >> (i % 8) & 1 == 1)
    }

    /// Sets bit `i` to `value`.
    ///
    /// # Errors
    /// Returns `Err(value)` (the bit handed back) if `i >= Self::BITS`.
    pub fn set_bit(&mut self, i: usize, value: bool) -> Result<(), bool> {
        let byte = self.0.get_mut(i / 8).ok_or(value)?;
        let mask = 1u8 << (i % 8);
        if value {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
        Ok(())
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// Number of bits in which `self` and `other` differ.
    pub fn hamming(&self, other: &Self) -> u32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }
}

impl<const BYTES: usize> Default for Code<BYTES> {
    fn default() -> Self {
        Self::zero()
    }
}

impl<const BYTES: usize> fmt::Display for Code<BYTES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl<const BYTES: usize> fmt::Debug for Code<BYTES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code<{}>({self})", Self::BITS)
    }
}

/// Why a hex string is not a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseCodeError {
    /// The string has the wrong number of hex digits.
    Length {
        /// Digits a code of this width needs (`2 * BYTES`).
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A character that is not a hex digit.
    InvalidDigit {
        /// Byte offset of the character in the string.
        index: usize,
    },
}

impl fmt::Display for ParseCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, found } => {
                write!(f, "code has {found} hex digits, expected {expected}")
            }
            Self::InvalidDigit { index } => {
                write!(
                    f,
                    "character at offset {index} of the code is not a hex digit"
                )
            }
        }
    }
}

impl core::error::Error for ParseCodeError {}

impl<const BYTES: usize> FromStr for Code<BYTES> {
    type Err = ParseCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.as_bytes();
        if digits.len() != 2 * BYTES {
            return Err(ParseCodeError::Length {
                expected: 2 * BYTES,
                found: digits.len(),
            });
        }
        let nibble = |index: usize| -> Result<u8, ParseCodeError> {
            let c = digits.get(index).copied().unwrap_or(b'?');
            char::from(c)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(ParseCodeError::InvalidDigit { index })
        };
        let mut code = Self::zero();
        for (i, byte) in code.0.iter_mut().enumerate() {
            *byte = nibble(2 * i)? << 4 | nibble(2 * i + 1)?;
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    #[test]
    fn bit_layout_is_lsb_first_within_bytes() {
        let mut code = Code128::zero();
        code.set_bit(0, true).unwrap();
        code.set_bit(9, true).unwrap();
        code.set_bit(127, true).unwrap();
        assert_eq!(code.as_bytes()[0], 0b0000_0001);
        assert_eq!(code.as_bytes()[1], 0b0000_0010);
        assert_eq!(code.as_bytes()[15], 0b1000_0000);
        assert_eq!(code.bit(9), Some(true));
        assert_eq!(code.bit(8), Some(false));
        assert_eq!(code.bit(128), None);
        assert_eq!(code.set_bit(128, true), Err(true));
        assert_eq!(code.count_ones(), 3);
    }

    #[test]
    fn hex_prints_bytes_in_storage_order() {
        let mut bytes = [0u8; 16];
        bytes[0] = 0x01;
        bytes[15] = 0xab;
        let code = Code128::from_bytes(bytes);
        assert_eq!(code.to_string(), "010000000000000000000000000000ab");
        assert_eq!(
            "010000000000000000000000000000AB".parse::<Code128>(),
            Ok(code)
        );
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert_eq!(
            "abc".parse::<Code<2>>(),
            Err(ParseCodeError::Length {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            "0g00".parse::<Code<2>>(),
            Err(ParseCodeError::InvalidDigit { index: 1 })
        );
        // Multi-byte characters are rejected, not split.
        assert!("ééé".parse::<Code<3>>().is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 16]>()) {
            let code = Code128::from_bytes(bytes);
            prop_assert_eq!(code.to_string().parse::<Code128>(), Ok(code));
        }

        #[test]
        fn hamming_is_a_metric(a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), c in any::<[u8; 16]>()) {
            let (a, b, c) = (Code128::from_bytes(a), Code128::from_bytes(b), Code128::from_bytes(c));
            prop_assert_eq!(a.hamming(&a), 0);
            prop_assert_eq!(a.hamming(&b), b.hamming(&a));
            prop_assert!(a.hamming(&c) <= a.hamming(&b) + b.hamming(&c));
            let flipped_bits = (0..128).filter(|&i| a.bit(i) != b.bit(i)).count();
            prop_assert_eq!(a.hamming(&b) as usize, flipped_bits);
        }
    }
}
