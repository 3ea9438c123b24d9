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
//! with a [`Requant`] per output channel. The portable kernels here are the oracle: any faster
//! path added later must equal them bit for bit.
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
#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod dsp;
pub mod head;
pub mod input;
pub mod point_set;
pub mod pool;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86;

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
/// Bytes of one per-output-channel record: bias `i32`, multiplier `i32`, shift `i32`.
pub const CHANNEL_RECORD_LEN: usize = 12;

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

/// Output channels that [`finish_channels`] takes at a time.
pub(crate) const FINISH_BLOCK: usize = 16;

/// `out[c] = ChannelParams::decode(records[c]).finish(accs[c], …)` for up to
/// [`FINISH_BLOCK`] channels: the end of a dense layer. On x86-64 `std` builds with AVX-512
/// (checked at run time) a whole block is one vector pass, bit-exact with this loop.
pub(crate) fn finish_channels(
    accs: &[i32; FINISH_BLOCK],
    records: &[[u8; CHANNEL_RECORD_LEN]],
    zero_point: i8,
    relu: bool,
    out: &mut [i8],
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let (Ok(records), Ok(out)) = (
        records.try_into(),
        <&mut [i8; FINISH_BLOCK]>::try_from(&mut *out),
    ) && x86::finish_channels(accs, records, zero_point, relu, out)
    {
        return;
    }
    for ((out, &acc), record) in out.iter_mut().zip(accs).zip(records) {
        *out = ChannelParams::decode(record).finish(acc, zero_point, relu);
    }
}

/// Reinterprets stored weight bytes as `i8` (two's complement, the same bits).
#[inline]
pub(crate) fn weight(byte: u8) -> i32 {
    i32::from(byte as i8)
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

/// [`dot2`] by the portable loop.
#[inline]
pub(crate) fn dot2_reference(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    let (first, second) = rows.split_at_checked(input.len()).unwrap_or((&[], &[]));
    [
        dot_reference(first, input, zero),
        dot_reference(second, input, zero),
    ]
}

/// The portable dot product: the reference every faster path must match bit for bit.
#[inline]
pub(crate) fn dot_reference(row: &[u8], input: &[i8], zero: i32) -> i32 {
    row.iter()
        .zip(input)
        .map(|(&w, &x)| weight(w) * (i32::from(x) - zero))
        .sum()
}
