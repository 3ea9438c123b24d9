//! The int8 layers: a zero-copy view over each layer's bytes in the blob, and its kernel.
//!
//! Every layer module holds three things side by side so that a layer's format lives in one
//! place: the byte layout of its body (a table in its docs), the view that parses and validates
//! that body (`parse`), and the kernel (`run`). Behind the `std` feature each also has a `Spec`,
//! the owned description the blob writer serialises.
//!
//! # Number format
//!
//! Activations are int8 with a per-tensor zero point `z` (real value `s * (q - z)`); weights
//! are symmetric int8 with a scale per output channel; biases are `i32` in units of
//! `weight_scale * input_scale`. An output is `saturate(z_out + requant(bias + Σ w·(x - z_in)))`
//! with a [`Requant`] per output channel. The arithmetic lives in [`crate::kernels`], whose
//! portable loops are the oracle every faster path equals bit for bit.
//!
//! # Why the accumulators cannot overflow
//!
//! Each term `w·(x - z_in)` is at most `128 · 255 = 32 640` in magnitude. Views refuse a fan-in
//! above [`MAX_FAN_IN`] (`32 768`) and biases above [`MAX_BIAS`] (`2^30`), so
//! `|bias| + fan_in · 32 640 < 2^31` and plain `i32` sums are exact in any order.
//!
//! # After parsing, nothing panics
//!
//! A view only exists if its body had exactly the bytes its dimensions need and every
//! parameter is in range. Kernels check their buffer lengths (an error, not a panic) and then
//! index only through iterators and `get`.

pub mod activation;
pub mod conv1d;
pub mod dense;
pub mod head;
pub mod input;
pub mod point_set;
pub mod pool;
#[cfg(test)]
pub(crate) mod testing;

use core::fmt;

use crate::quant::Requant;

pub use activation::{Flatten, LeakyRelu, Relu};
pub use conv1d::Conv1d;
pub use dense::Dense;
pub use head::BinaryHead;
pub use input::{InputError, InputQuant, Sample};
pub use point_set::PointSet;
pub use pool::Pool1d;

/// Largest fan-in (inputs summed into one accumulator) a layer may have.
pub const MAX_FAN_IN: u32 = 32_768;
/// Largest bias magnitude.
pub const MAX_BIAS: i32 = 1 << 30;
/// Largest number of elements in any activation tensor (keeps sizes within `u32` and 32-bit
/// `usize` arithmetic on microcontrollers).
pub const MAX_ELEMENTS: u32 = 1 << 24;
pub use crate::records::CHANNEL_RECORD_LEN;

/// The shape of an activation tensor: `channels × length`, stored channel-major.
///
/// Flat vectors (inputs and outputs of dense layers) have one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of channels.
    pub channels: u32,
    /// Samples per channel.
    pub length: u32,
}

impl Shape {
    /// A flat vector of `length` elements.
    pub const fn flat(length: u32) -> Self {
        Self {
            channels: 1,
            length,
        }
    }

    /// Total number of elements.
    pub const fn elements(self) -> usize {
        self.channels as usize * self.length as usize
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}×{}]", self.channels, self.length)
    }
}

/// What is wrong with one layer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerError {
    /// The body is shorter than its dimensions need.
    Truncated {
        /// Offset in the body where more bytes were needed.
        offset: usize,
        /// How many bytes were needed there.
        needed: usize,
    },
    /// The body has bytes past what its dimensions need.
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
    },
    /// A dimension is zero.
    ZeroDimension {
        /// Which dimension.
        field: &'static str,
    },
    /// A dimension or tensor size is beyond the format's limits.
    TooLarge {
        /// Which quantity.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A reserved byte or an enumerated byte has an unknown value.
    InvalidByte {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: u8,
    },
    /// An output channel's requantisation or bias is out of range.
    InvalidChannel {
        /// Output channel index.
        channel: u32,
    },
    /// An input feature's quantisation parameters are not finite or out of range.
    InvalidFeature {
        /// Feature index.
        feature: u32,
    },
    /// The geometry of a convolution or pooling does not fit its input.
    Geometry {
        /// What does not fit.
        reason: &'static str,
    },
    /// The shapes inside a point-set block do not chain.
    InnerShape {
        /// Index of the inner dense layer.
        inner: u8,
    },
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { offset, needed } => {
                write!(
                    f,
                    "body truncated: needed {needed} more bytes at offset {offset}"
                )
            }
            Self::TrailingBytes { extra } => write!(f, "{extra} unexpected bytes after the body"),
            Self::ZeroDimension { field } => write!(f, "{field} is zero"),
            Self::TooLarge { field, value, max } => {
                write!(f, "{field} is {value}, more than the limit {max}")
            }
            Self::InvalidByte { field, value } => write!(f, "{field} has invalid value {value}"),
            Self::InvalidChannel { channel } => write!(
                f,
                "output channel {channel} has a bias above 2^30 or an invalid requantisation"
            ),
            Self::InvalidFeature { feature } => write!(
                f,
                "input feature {feature} has a non-finite offset/gain or invalid integer scaling"
            ),
            Self::Geometry { reason } => f.write_str(reason),
            Self::InnerShape { inner } => {
                write!(
                    f,
                    "inner dense layer {inner} of the point-set block does not chain"
                )
            }
        }
    }
}

impl core::error::Error for LayerError {}

/// A kernel was handed a buffer of the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLengthError {
    /// Elements the layer needs.
    pub expected: usize,
    /// Elements in the buffer given.
    pub found: usize,
}

impl fmt::Display for BufferLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer holds {} elements, the layer needs {}",
            self.found, self.expected
        )
    }
}

impl core::error::Error for BufferLengthError {}

/// Returns `Ok` when `found == expected`.
pub(crate) fn check_len(expected: usize, found: usize) -> Result<(), BufferLengthError> {
    if expected == found {
        Ok(())
    } else {
        Err(BufferLengthError { expected, found })
    }
}

/// How much of a body a parse checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Everything: the bytes are untrusted.
    Full,
    /// Layout and dimensions, not the per-record tables (channel rescales, input features):
    /// the body belongs to a [`crate::Model`] whose bytes passed `Full` checks when it was
    /// built and are borrowed immutably since. The encoder parses its layers on every call,
    /// and walking a thousand feature records each time was a fifth of an encode.
    SkipRecords,
}

/// A little-endian cursor over a body. Every read is bounds-checked and reports where it ran
/// out.
#[derive(Debug, Clone)]
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    checks: Checks,
}

impl<'a> ByteReader<'a> {
    pub(crate) const fn new(bytes: &'a [u8], checks: Checks) -> Self {
        Self {
            bytes,
            pos: 0,
            checks,
        }
    }

    /// Whether per-record tables must be validated.
    pub(crate) fn checks_records(&self) -> bool {
        self.checks == Checks::Full
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], LayerError> {
        let truncated = LayerError::Truncated {
            offset: self.pos,
            needed: n,
        };
        let end = self.pos.checked_add(n).ok_or(truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LayerError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, LayerError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i8(&mut self) -> Result<i8, LayerError> {
        Ok(i8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, LayerError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, LayerError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, LayerError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads `n` reserved bytes, which must be zero (room for later versions).
    pub(crate) fn reserved(&mut self, n: usize) -> Result<(), LayerError> {
        match self.take(n)?.iter().find(|&&b| b != 0) {
            Some(&value) => Err(LayerError::InvalidByte {
                field: "reserved byte",
                value,
            }),
            None => Ok(()),
        }
    }

    /// Takes `count` records of `N` bytes.
    pub(crate) fn records<const N: usize>(
        &mut self,
        count: usize,
    ) -> Result<&'a [[u8; N]], LayerError> {
        let len = count.checked_mul(N).ok_or(LayerError::TooLarge {
            field: "record table",
            value: count as u64,
            max: (usize::MAX / N) as u64,
        })?;
        let (records, _) = self.take(len)?.as_chunks::<N>();
        Ok(records)
    }

    /// Succeeds only if the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), LayerError> {
        match self.bytes.len() - self.pos.min(self.bytes.len()) {
            0 => Ok(()),
            extra => Err(LayerError::TrailingBytes { extra }),
        }
    }
}

/// Checks a dimension is in `1..=max`.
pub(crate) fn dimension(field: &'static str, value: u32, max: u32) -> Result<u32, LayerError> {
    if value == 0 {
        Err(LayerError::ZeroDimension { field })
    } else if value > max {
        Err(LayerError::TooLarge {
            field,
            value: u64::from(value),
            max: u64::from(max),
        })
    } else {
        Ok(value)
    }
}

/// Checks a tensor's element count is within [`MAX_ELEMENTS`].
pub(crate) fn elements(field: &'static str, shape: Shape) -> Result<Shape, LayerError> {
    let n = u64::from(shape.channels) * u64::from(shape.length);
    if n > u64::from(MAX_ELEMENTS) {
        Err(LayerError::TooLarge {
            field,
            value: n,
            max: u64::from(MAX_ELEMENTS),
        })
    } else {
        Ok(shape)
    }
}

/// Reads an activation byte: 0 = none, 1 = ReLU (fused as a clamp at the output zero point).
pub(crate) fn read_relu(reader: &mut ByteReader<'_>) -> Result<bool, LayerError> {
    match reader.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(LayerError::InvalidByte {
            field: "activation",
            value,
        }),
    }
}

/// One output channel's bias and requantisation, decoded from its 12-byte record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelParams {
    /// Bias in accumulator units.
    pub bias: i32,
    /// Rescale from accumulator to output units.
    pub requant: Requant,
}

impl ChannelParams {
    /// Parses a record; `None` if its rescale is invalid or its bias exceeds [`MAX_BIAS`].
    fn parse(record: &[u8; CHANNEL_RECORD_LEN]) -> Option<Self> {
        let [b0, b1, b2, b3, m0, m1, m2, m3, s0, s1, s2, s3] = *record;
        let bias = i32::from_le_bytes([b0, b1, b2, b3]);
        let requant = Requant::new(
            i32::from_le_bytes([m0, m1, m2, m3]),
            i32::from_le_bytes([s0, s1, s2, s3]),
        )
        .ok()?;
        (bias.unsigned_abs() <= MAX_BIAS.unsigned_abs()).then_some(Self { bias, requant })
    }

    /// Decodes a record inside a parsed view. Those records were validated; an invalid one
    /// would decode to a harmless zero channel instead of panicking.
    pub(crate) fn decode(record: &[u8; CHANNEL_RECORD_LEN]) -> Self {
        Self::parse(record).unwrap_or(Self {
            bias: 0,
            requant: Requant::ZERO,
        })
    }

    /// Validates a table of records.
    pub(crate) fn validate(records: &[[u8; CHANNEL_RECORD_LEN]]) -> Result<(), LayerError> {
        match records
            .iter()
            .position(|record| Self::parse(record).is_none())
        {
            Some(channel) => Err(LayerError::InvalidChannel {
                channel: channel as u32,
            }),
            None => Ok(()),
        }
    }

    /// Finishes an output: `saturate(zero_point + requant(bias + acc))`, clamped at the zero
    /// point (real 0) from below when `relu` is set.
    #[inline]
    pub(crate) fn finish(self, acc: i32, zero_point: i8, relu: bool) -> i8 {
        let value = i32::from(zero_point).saturating_add(self.requant.apply(acc + self.bias));
        let floor = if relu { i32::from(zero_point) } else { -128 };
        crate::quant::saturate_i8(value, floor)
    }

    /// Serialises the record (blob writer).
    #[cfg(any(test, feature = "std"))]
    pub fn write(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&self.requant.multiplier().to_le_bytes());
        out.extend_from_slice(&self.requant.shift().to_le_bytes());
    }
}

/// Reads `count` channel records, validated unless the reader skips records.
pub(crate) fn channel_records<'a>(
    reader: &mut ByteReader<'a>,
    count: usize,
) -> Result<&'a [[u8; CHANNEL_RECORD_LEN]], LayerError> {
    let records = reader.records::<CHANNEL_RECORD_LEN>(count)?;
    if reader.checks_records() {
        ChannelParams::validate(records)?;
    }
    Ok(records)
}
