//! The encoder: runs a validated [`Model`] on one event with fixed, caller-provided scratch.
//!
//! ```
//! # fn demo(blob: &[u8], event: &[f32]) -> Result<(), latentlink_runtime::EncodeError> {
//! use latentlink_runtime::{Code128, Encoder, Model, Scratch};
//!
//! // On a device, `blob` is `include_bytes!("encoder.blob")` and the scratch a `static`.
//! let model = Model::from_bytes(blob)?;
//! let mut scratch = Scratch::<4096>::new();
//! let mut encoder = Encoder::new(model, &mut scratch)?; // error if 4096 < model.scratch_bytes()
//! let code: Code128 = encoder.encode(event)?;
//! # Ok(()) }
//! ```
//!
//! # Scratch layout
//!
//! Activations ping-pong between the two ends of the scratch (see `scratch.rs`): each layer
//! reads from one end and writes at the other, in-place layers (ReLU, leaky ReLU) and flatten
//! stay where they are, and the point-set block keeps its per-point temporaries between the
//! ends. The need of a model is the largest [`Layer::scratch_need`] over its layers, computed
//! when the blob is validated and stored in its header.
//!
//! Host scratch ([`Model::batch_scratch_bytes`]) holds [`LANES`] such slots one after another,
//! one per event that a batch runs side by side, and then the weight-sum table: each dense and
//! head row's `Σ w` as a little-endian `i32`, the layers' rows in order, written once by
//! [`Encoder::with_slice`] and read by the x86 kernels.

use core::fmt;

use crate::blob::{BlobError, Layer, Model};
use crate::code::Code;
pub use crate::kernels::LANES;
use crate::kernels::weight_sums;
use crate::layers::{BufferLengthError, InputError, Sample};
use crate::scratch::{End, at_end, split_ends};

/// Scratch memory of `N` bytes for an [`Encoder`]; put it in a `static` on a device.
#[derive(Debug, Clone)]
pub struct Scratch<const N: usize>([i8; N]);

impl<const N: usize> Scratch<N> {
    /// Zeroed scratch.
    pub const fn new() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> Default for Scratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an event could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The blob is invalid (from [`Model::from_bytes`]).
    Blob(BlobError),
    /// The scratch is smaller than the model needs.
    ScratchTooSmall {
        /// Bytes the model needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The code type holds fewer bits than the model produces.
    CodeTooSmall {
        /// Bits the model produces.
        bits: u32,
        /// Bits the code holds.
        capacity: usize,
    },
    /// The event has the wrong number of samples.
    EventLength {
        /// Samples per event the model takes.
        expected: usize,
        /// Samples given.
        found: usize,
    },
    /// A sample is NaN or infinite.
    NonFiniteSample {
        /// Index of the sample in the event (in the batch for batch calls).
        index: usize,
    },
    /// A batch's samples and codes do not match.
    BatchLength {
        /// Samples given.
        samples: usize,
        /// Codes given.
        codes: usize,
        /// Samples per event.
        per_event: usize,
    },
    /// A kernel got a buffer of the wrong size; a bug, reported instead of panicking.
    Internal(BufferLengthError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Blob(e) => write!(f, "invalid model blob: {e}"),
            Self::ScratchTooSmall { needed, available } => write!(
                f,
                "scratch has {available} bytes but the model needs {needed}: raise the scratch size to at least {needed}"
            ),
            Self::CodeTooSmall { bits, capacity } => write!(
                f,
                "the model produces {bits}-bit codes but the code type holds {capacity} bits"
            ),
            Self::EventLength { expected, found } => write!(
                f,
                "event has {found} samples but the model takes {expected}"
            ),
            Self::NonFiniteSample { index } => write!(f, "sample {index} is NaN or infinite"),
            Self::BatchLength {
                samples,
                codes,
                per_event,
            } => write!(
                f,
                "batch of {samples} samples does not fill {codes} codes of {per_event} samples each"
            ),
            Self::Internal(e) => write!(f, "internal encoder error: {e}"),
        }
    }
}

impl core::error::Error for EncodeError {}

impl From<BlobError> for EncodeError {
    fn from(e: BlobError) -> Self {
        Self::Blob(e)
    }
}

impl From<BufferLengthError> for EncodeError {
    fn from(e: BufferLengthError) -> Self {
        Self::Internal(e)
    }
}

impl From<InputError> for EncodeError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Length(BufferLengthError { expected, found }) => {
                Self::EventLength { expected, found }
            }
            InputError::NonFinite { index } => Self::NonFiniteSample { index },
        }
    }
}

/// Runs a model on events. Holds the model and borrows the scratch; no allocation.
///
/// With [`Model::batch_scratch_bytes`] of scratch (hosts), the encoder keeps a table of each
/// weight row's sum at the end of it, computed once here, and batches run [`LANES`] events
/// side by side; with less (microcontrollers) it runs one event at a time in
/// [`Model::scratch_bytes`].
#[derive(Debug)]
pub struct Encoder<'m, 's> {
    model: Model<'m>,
    /// Activations: one slot per event that runs at once.
    scratch: &'s mut [i8],
    /// The weight-sum table (little-endian `i32`s, the rows of each dense layer and the head
    /// in order), or empty.
    weight_sums: &'s [[i8; 4]],
}

impl<'m, 's> Encoder<'m, 's> {
    /// An encoder over compile-time-sized scratch.
    ///
    /// # Errors
    /// [`EncodeError::ScratchTooSmall`] if `N < model.scratch_bytes()`.
    pub fn new<const N: usize>(
        model: Model<'m>,
        scratch: &'s mut Scratch<N>,
    ) -> Result<Self, EncodeError> {
        Self::with_slice(model, &mut scratch.0)
    }

    /// An encoder over a scratch slice (hosts that load models at run time).
    ///
    /// # Errors
    /// [`EncodeError::ScratchTooSmall`] if the slice is shorter than `model.scratch_bytes()`.
    pub fn with_slice(model: Model<'m>, scratch: &'s mut [i8]) -> Result<Self, EncodeError> {
        if scratch.len() < model.scratch_bytes() {
            return Err(EncodeError::ScratchTooSmall {
                needed: model.scratch_bytes(),
                available: scratch.len(),
            });
        }
        let table_len = model.weight_sum_bytes();
        if scratch.len() < model.batch_scratch_bytes() {
            return Ok(Self {
                model,
                scratch,
                weight_sums: &[],
            });
        }
        let (scratch, table) = scratch.split_at_mut(scratch.len() - table_len);
        let (entries, _) = table.as_chunks_mut::<4>();
        let sums = model
            .layers()
            .flatten()
            .filter_map(|layer| match layer {
                Layer::Dense(l) => Some(l.weight_rows()),
                Layer::BinaryHead(l) => Some(l.weight_rows()),
                _ => None,
            })
            .flat_map(|(weights, n)| weight_sums(weights, n));
        for (entry, sum) in entries.iter_mut().zip(sums) {
            *entry = sum.to_le_bytes().map(|b| b as i8);
        }
        Ok(Self {
            model,
            scratch,
            weight_sums: entries,
        })
    }

    /// The model this encoder runs.
    pub const fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Encodes one event into a code.
    ///
    /// # Errors
    /// [`EncodeError`] if the event has the wrong length or a non-finite sample, or the code
    /// type is narrower than the model's code.
    pub fn encode<S: Sample, const BYTES: usize>(
        &mut self,
        event: &[S],
    ) -> Result<Code<BYTES>, EncodeError> {
        let mut code = Code::zero();
        self.encode_into(event, code.as_bytes_mut())?;
        Ok(code)
    }

    /// Encodes a batch: `events` holds `codes.len()` events back to back.
    ///
    /// With scratch for [`LANES`] events ([`Model::batch_scratch_bytes`]) the batch runs
    /// [`LANES`] events at a time through each layer, so that dense layers read each weight
    /// once for all of them; with less it runs event by event. The codes are the same.
    ///
    /// # Errors
    /// [`EncodeError::BatchLength`] if the sizes do not match, else as [`Encoder::encode`],
    /// with sample indices counted from the start of the batch. Codes before the failing
    /// event are written.
    pub fn encode_batch<S: Sample, const BYTES: usize>(
        &mut self,
        events: &[S],
        codes: &mut [Code<BYTES>],
    ) -> Result<(), EncodeError> {
        let per_event = self.model.input_len();
        if events.len() != codes.len() * per_event {
            return Err(EncodeError::BatchLength {
                samples: events.len(),
                codes: codes.len(),
                per_event,
            });
        }
        let slot = self.model.scratch_bytes().max(1);
        let mut done = 0;
        if self.scratch.len() >= LANES * slot {
            let groups = events
                .chunks_exact(LANES * per_event)
                .zip(codes.chunks_exact_mut(LANES));
            for (events, codes) in groups {
                let events: [&[S]; LANES] = core::array::from_fn(|lane| {
                    events
                        .get(lane * per_event..(lane + 1) * per_event)
                        .unwrap_or(&[])
                });
                let mut codes = codes
                    .iter_mut()
                    .map(|code| code.as_bytes_mut().as_mut_slice());
                let codes: [&mut [u8]; LANES] =
                    core::array::from_fn(|_| codes.next().unwrap_or_default());
                let mut slots = self.scratch.chunks_exact_mut(slot);
                let slots: [&mut [i8]; LANES] =
                    core::array::from_fn(|_| slots.next().unwrap_or_default());
                // On an error, the event-by-event loop below redoes this group: it writes the
                // codes before the failing event and reports the error where it is.
                if run_lanes(&self.model, slots, events, codes, self.weight_sums).is_err() {
                    break;
                }
                done += LANES;
            }
        }
        let rest = events
            .chunks_exact(per_event)
            .zip(codes.iter_mut())
            .enumerate()
            .skip(done);
        for (n, (event, code)) in rest {
            self.encode_into(event, code.as_bytes_mut())
                .map_err(|e| match e {
                    EncodeError::NonFiniteSample { index } => EncodeError::NonFiniteSample {
                        index: n * per_event + index,
                    },
                    other => other,
                })?;
        }
        Ok(())
    }

    /// Encodes one event into `code` (LSB-first bytes as in [`Code`]); bytes past the code
    /// width are zeroed.
    ///
    /// # Errors
    /// As [`Encoder::encode`].
    pub fn encode_into<S: Sample>(
        &mut self,
        event: &[S],
        code: &mut [u8],
    ) -> Result<(), EncodeError> {
        run_lanes(
            &self.model,
            [&mut *self.scratch],
            [event],
            [code],
            self.weight_sums,
        )
    }
}

/// Runs the model on `E` events, layer by layer, each event in its own scratch slot, with the
/// weight-sum table if there is one (else it is empty).
fn run_lanes<S: Sample, const E: usize>(
    model: &Model<'_>,
    mut slots: [&mut [i8]; E],
    events: [&[S]; E],
    mut codes: [&mut [u8]; E],
    weight_sums: &[[i8; 4]],
) -> Result<(), EncodeError> {
    // Each dense layer and the head take their rows' entries in turn.
    let mut weight_sums = weight_sums;
    let mut take_sums = |rows: usize| {
        let (mine, rest) = weight_sums.split_at_checked(rows)?;
        weight_sums = rest;
        Some(mine)
    };
    let bits = model.code_bits();
    for code in &mut codes {
        if code.len() * 8 < bits as usize {
            return Err(EncodeError::CodeTooSmall {
                bits,
                capacity: code.len() * 8,
            });
        }
        code.fill(0);
    }
    let slot_len = slots.iter().map(|slot| slot.len()).min().unwrap_or(0);
    let too_small = move |needed: usize| {
        EncodeError::Internal(BufferLengthError {
            expected: needed,
            found: slot_len,
        })
    };
    // The current activation: which end of each slot, and how many elements.
    let (mut end, mut len) = (End::Front, 0usize);
    for layer in model.layers() {
        let layer = layer?;
        let out_len = layer.output().map_or(0, |(shape, _)| shape.elements());
        match &layer {
            Layer::Input(l) => {
                for (slot, event) in slots.iter_mut().zip(events) {
                    let out = at_end(slot, End::Front, out_len).ok_or(too_small(out_len))?;
                    l.run(event, out)?;
                }
                end = End::Front;
            }
            Layer::Relu(l) => {
                for slot in &mut slots {
                    l.run(at_end(slot, end, len).ok_or(too_small(len))?)?;
                }
            }
            Layer::LeakyRelu(l) => {
                for slot in &mut slots {
                    l.run(at_end(slot, end, len).ok_or(too_small(len))?)?;
                }
            }
            Layer::Flatten(_) => {}
            Layer::BinaryHead(l) => {
                let mut inputs: [&[i8]; E] = [&[]; E];
                for (slot, input) in slots.iter_mut().zip(&mut inputs) {
                    *input = at_end(slot, end, len).ok_or(too_small(len))?;
                }
                l.run_lanes(inputs, codes, take_sums(l.bits() as usize))?;
                // The head is the last layer (the blob's validation sees to it).
                return Ok(());
            }
            Layer::Dense(l) => {
                let mut inputs: [&[i8]; E] = [&[]; E];
                let mut outputs: [&mut [i8]; E] = core::array::from_fn(|_| Default::default());
                let parts = slots.iter_mut().zip(&mut inputs).zip(&mut outputs);
                for ((slot, input), output) in parts {
                    let need = layer.scratch_need();
                    (*input, *output, _) =
                        split_ends(slot, end, len, out_len).ok_or(too_small(need))?;
                }
                l.run_lanes(inputs, outputs, take_sums(out_len))?;
                end = end.other();
            }
            Layer::Conv1d(_) | Layer::Pool1d(_) | Layer::PointSet(_) => {
                for slot in &mut slots {
                    let need = layer.scratch_need();
                    let (input, output, middle) =
                        split_ends(slot, end, len, out_len).ok_or(too_small(need))?;
                    match &layer {
                        Layer::Conv1d(l) => l.run(input, output)?,
                        Layer::Pool1d(l) => l.run(input, output)?,
                        Layer::PointSet(l) => l.run(input, output, middle)?,
                        _ => {}
                    }
                }
                end = end.other();
            }
        }
        len = out_len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Whole networks: the encoder must equal a layer-by-layer reference built from the
    //! specs with straightforward loops, for random architectures and parameters.
    use super::*;
    use crate::Code128;
    use crate::blob::write::{LayerSpec, write_blob};
    use crate::layers::ChannelParams;
    use crate::layers::activation::ElementwiseSpec;
    use crate::layers::conv1d::Conv1dSpec;
    use crate::layers::dense::DenseSpec;
    use crate::layers::head::HeadSpec;
    use crate::layers::input::{FeatureParams, InputSpec};
    use crate::layers::point_set::PointSetSpec;
    use crate::layers::pool::PoolSpec;
    use crate::quant::Requant;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// A tiny deterministic generator so one proptest seed drives a whole architecture.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + (self.next() % u64::from(hi - lo + 1)) as u32
        }
        fn i8(&mut self) -> i8 {
            self.next() as i8
        }
        fn i8s(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.i8()).collect()
        }
        fn channels(&mut self, n: u32, fan_in: u32) -> Vec<ChannelParams> {
            (0..n)
                .map(|_| ChannelParams {
                    bias: self.range(0, 2000) as i32 - 1000,
                    requant: Requant::from_real(
                        (0.3 + f64::from(self.range(0, 100)) / 50.0)
                            / (f64::from(fan_in).sqrt() * 128.0),
                    )
                    .unwrap(),
                })
                .collect()
        }
        fn dense(&mut self, n_in: u32, n_out: u32, zin: i8, relu: bool) -> DenseSpec {
            DenseSpec {
                in_features: n_in,
                out_features: n_out,
                input_zero_point: zin,
                output_zero_point: self.i8(),
                relu,
                weights: self.i8s((n_in * n_out) as usize),
                channels: self.channels(n_out, n_in),
            }
        }
    }

    fn input_spec(rng: &mut Rng, channels: u32, length: u32) -> InputSpec {
        InputSpec {
            channels,
            length,
            zero_point: rng.i8(),
            features: (0..channels * length)
                .map(|_| {
                    let gain = f64::from(rng.range(1, 400)) / 100.0;
                    FeatureParams::new(rng.range(0, 10) as f32 - 5.0, gain as f32).unwrap()
                })
                .collect(),
        }
    }

    fn head(rng: &mut Rng, n_in: u32, zin: i8, bits: u32) -> HeadSpec {
        HeadSpec {
            in_features: n_in,
            bits,
            input_zero_point: zin,
            weights: rng.i8s((n_in * bits) as usize),
            biases: (0..bits)
                .map(|_| rng.range(0, 4000) as i32 - 2000)
                .collect(),
        }
    }

    /// input [C×L] → conv(+relu) → max/avg pool → relu → flatten → dense → leaky → dense → head.
    fn spectrum_network(seed: u64) -> Vec<LayerSpec> {
        let mut rng = Rng(seed | 1);
        let (channels, length) = (rng.range(1, 3), rng.range(8, 40));
        let input = input_spec(&mut rng, channels, length);
        let (k, stride, padding) = (rng.range(1, 5) as u16, rng.range(1, 2) as u16, 0u16);
        let padding = padding.max(k / 2);
        let conv_out = rng.range(1, 6);
        let conv = Conv1dSpec {
            in_channels: channels,
            in_length: length,
            out_channels: conv_out,
            kernel: k,
            stride,
            padding,
            input_zero_point: input.zero_point,
            output_zero_point: rng.i8(),
            relu: rng.next().is_multiple_of(2),
            weights: rng.i8s((conv_out * channels * u32::from(k)) as usize),
            channels: rng.channels(conv_out, channels * u32::from(k)),
        };
        let pool = PoolSpec {
            channels: conv_out,
            in_length: conv.out_length(),
            kernel: rng.range(1, 2.min(conv.out_length())) as u16,
            stride: rng.range(1, 2) as u16,
            zero_point: conv.output_zero_point,
        };
        let flat = conv_out * pool.out_length();
        let pooled = ElementwiseSpec {
            channels: conv_out,
            length: pool.out_length(),
            zero_point: pool.zero_point,
        };
        let hidden = rng.range(4, 40);
        let dense1 = rng.dense(flat, hidden, pool.zero_point, false);
        let leaky = ElementwiseSpec {
            channels: 1,
            length: hidden,
            zero_point: dense1.output_zero_point,
        };
        let width = rng.range(4, 24);
        let dense2 = rng.dense(hidden, width, dense1.output_zero_point, true);
        let bits = rng.range(1, 128);
        let head = head(
            &mut rng,
            dense2.out_features,
            dense2.output_zero_point,
            bits,
        );
        let pool_layer = if rng.next().is_multiple_of(2) {
            LayerSpec::MaxPool1d(pool)
        } else {
            LayerSpec::AvgPool1d(pool)
        };
        vec![
            LayerSpec::Input(input),
            LayerSpec::Conv1d(conv),
            pool_layer,
            LayerSpec::Relu(pooled.clone()),
            LayerSpec::Flatten(pooled),
            LayerSpec::Dense(dense1),
            LayerSpec::LeakyRelu(leaky, Requant::from_real(0.1).unwrap()),
            LayerSpec::Dense(dense2),
            LayerSpec::BinaryHead(head),
        ]
    }

    /// input [1×P·3] → point set (1-3 shared dense layers, max over points) → dense → head.
    fn point_cloud_network(seed: u64) -> Vec<LayerSpec> {
        let mut rng = Rng(seed | 1);
        let points = rng.range(1, 24);
        let input = input_spec(&mut rng, 1, points * 3);
        let mut inner = Vec::new();
        let (mut width, mut zero) = (3, input.zero_point);
        for _ in 0..rng.range(1, 3) {
            let out = rng.range(2, 16);
            let dense = rng.dense(width, out, zero, true);
            (width, zero) = (out, dense.output_zero_point);
            inner.push(dense);
        }
        let out = rng.range(2, 16);
        let dense = rng.dense(width, out, zero, false);
        let head = head(&mut rng, dense.out_features, dense.output_zero_point, 64);
        vec![
            LayerSpec::Input(input),
            LayerSpec::PointSet(PointSetSpec {
                points,
                features: 3,
                inner,
            }),
            LayerSpec::Dense(dense),
            LayerSpec::BinaryHead(head),
        ]
    }

    /// The specs executed one at a time on owned vectors, from the layer references.
    fn reference_forward(specs: &[LayerSpec], event: &[f32]) -> Vec<u8> {
        let mut x: Vec<i8> = Vec::new();
        let mut code = Vec::new();
        for spec in specs {
            x = match spec {
                LayerSpec::Input(s) => event
                    .iter()
                    .zip(&s.features)
                    .map(|(&v, p)| {
                        let steps = f64::from((v - p.offset) * p.gain);
                        (f64::from(s.zero_point) + steps.round()).clamp(-128.0, 127.0) as i8
                    })
                    .collect(),
                LayerSpec::Dense(s) => crate::layers::dense::tests::reference(s, &x),
                LayerSpec::Conv1d(s) => crate::layers::conv1d::tests::reference(s, &x),
                LayerSpec::MaxPool1d(s) | LayerSpec::AvgPool1d(s) => {
                    let max = matches!(spec, LayerSpec::MaxPool1d(_));
                    let mut out = Vec::new();
                    for c in 0..s.channels as usize {
                        for t in 0..s.out_length() as usize {
                            let start = c * s.in_length as usize + t * s.stride as usize;
                            let w = &x[start..start + s.kernel as usize];
                            out.push(if max {
                                *w.iter().max().unwrap()
                            } else {
                                (w.iter().map(|&v| f64::from(v)).sum::<f64>() / w.len() as f64)
                                    .round() as i8
                            });
                        }
                    }
                    out
                }
                LayerSpec::Relu(s) => x.iter().map(|&v| v.max(s.zero_point)).collect(),
                LayerSpec::LeakyRelu(s, alpha) => x
                    .iter()
                    .map(|&v| {
                        if v >= s.zero_point {
                            v
                        } else {
                            let z = i32::from(s.zero_point);
                            (z + alpha.apply(i32::from(v) - z)).clamp(-128, 127) as i8
                        }
                    })
                    .collect(),
                LayerSpec::Flatten(_) => x,
                LayerSpec::PointSet(s) => {
                    let mut out = vec![i8::MIN; s.inner.last().unwrap().out_features as usize];
                    for point in x.chunks(s.features as usize) {
                        let mut h = point.to_vec();
                        for d in &s.inner {
                            h = crate::layers::dense::tests::reference(d, &h);
                        }
                        out.iter_mut().zip(&h).for_each(|(m, &v)| *m = (*m).max(v));
                    }
                    out
                }
                LayerSpec::BinaryHead(s) => {
                    let n = s.in_features as usize;
                    code = vec![0u8; (s.bits as usize).div_ceil(8)];
                    for bit in 0..s.bits as usize {
                        let logit = i64::from(s.biases[bit])
                            + (0..n)
                                .map(|j| {
                                    i64::from(s.weights[bit * n + j])
                                        * (i64::from(x[j]) - i64::from(s.input_zero_point))
                                })
                                .sum::<i64>();
                        if logit > 0 {
                            code[bit / 8] |= 1 << (bit % 8);
                        }
                    }
                    Vec::new()
                }
            };
        }
        code
    }

    fn events(seed: u64, len: usize, count: usize) -> Vec<f32> {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        (0..len * count)
            .map(|_| rng.range(0, 2000) as f32 / 100.0 - 10.0)
            .collect()
    }

    /// Encodes a batch of nine events (two groups of [`LANES`] and one more) with the least
    /// scratch and with batch scratch (lanes and the weight-sum table), and one at a time with
    /// each: every code must equal the reference.
    fn check_network(specs: &[LayerSpec], seed: u64) -> Result<(), TestCaseError> {
        let blob = write_blob(specs).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let n = model.input_len();
        let batch = events(seed, n, 9);
        let expected: Vec<Vec<u8>> = batch
            .chunks(n)
            .map(|event| reference_forward(specs, event))
            .collect();
        for scratch_len in [model.scratch_bytes(), model.batch_scratch_bytes()] {
            let mut scratch = vec![0i8; scratch_len];
            let mut encoder = Encoder::with_slice(model, &mut scratch).unwrap();
            let mut codes = [Code::<16>::zero(); 9];
            encoder.encode_batch(&batch, &mut codes).unwrap();
            for ((event, code), expected) in batch.chunks(n).zip(&codes).zip(&expected) {
                let single: Code<16> = encoder.encode(event).unwrap();
                prop_assert_eq!(single, *code, "scratch {}", scratch_len);
                prop_assert_eq!(&code.as_bytes()[..expected.len()], &expected[..]);
                prop_assert!(code.as_bytes()[expected.len()..].iter().all(|&b| b == 0));
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn random_spectrum_networks_match_reference(seed in any::<u64>()) {
            check_network(&spectrum_network(seed), seed)?;
        }

        #[test]
        fn random_point_cloud_networks_match_reference(seed in any::<u64>()) {
            check_network(&point_cloud_network(seed), seed)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        /// The shape of the shipped spectrum model, where the sixteen-row kernels apply.
        #[test]
        fn random_dense_1024_networks_match_reference(seed in any::<u64>()) {
            check_network(&dense_1024_network(seed), seed)?;
        }
    }

    #[test]
    fn point_set_is_order_invariant() {
        let mut specs = point_cloud_network(7);
        // Give every point the same input parameters, so that only the order differs.
        if let LayerSpec::Input(input) = &mut specs[0] {
            let first = input.features[..3].to_vec();
            input
                .features
                .chunks_mut(3)
                .for_each(|c| c.copy_from_slice(&first));
        }
        let blob = write_blob(&specs).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let mut scratch = vec![0i8; model.scratch_bytes()];
        let mut encoder = Encoder::with_slice(model, &mut scratch).unwrap();
        let event = events(3, model.input_len(), 1);
        let reversed: Vec<f32> = event.chunks(3).rev().flatten().copied().collect();
        let forward: Code<8> = encoder.encode(&event).unwrap();
        let backward: Code<8> = encoder.encode(&reversed).unwrap();
        assert_eq!(forward, backward);
    }

    /// The 1024 → 256 → 128 → 128-bit dense encoder of the issue, for its figures.
    fn dense_1024_network(seed: u64) -> Vec<LayerSpec> {
        let mut rng = Rng(seed | 1);
        let input = input_spec(&mut rng, 1, 1024);
        let d1 = rng.dense(1024, 256, input.zero_point, true);
        let d2 = rng.dense(256, 128, d1.output_zero_point, true);
        let head = head(&mut rng, 128, d2.output_zero_point, 128);
        vec![
            LayerSpec::Input(input),
            LayerSpec::Dense(d1),
            LayerSpec::Dense(d2),
            LayerSpec::BinaryHead(head),
        ]
    }

    #[test]
    fn dense_1024_encoder_figures() {
        let blob = write_blob(&dense_1024_network(99)).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        // Input 1024 + first dense output 256 at the two ends of the scratch.
        assert_eq!(model.scratch_bytes(), 1024 + 256);
        assert_eq!(model.macs(), 1024 * 256 + 256 * 128 + 128 * 128);
        // Weights + 12-byte channel records + head biases + 20-byte input records.
        let params = 1024 * 256 + 256 * 128 + 128 * 128 + 12 * (256 + 128) + 4 * 128 + 20 * 1024;
        assert_eq!(model.parameter_bytes(), params);
        assert_eq!(model.blob_len(), params + 32 + 4 * 8 + 4 * 3 * 4 + 4);
        let mut scratch = Scratch::<1280>::new();
        let mut encoder = Encoder::new(model, &mut scratch).unwrap();
        let code: Code128 = encoder.encode(&events(1, 1024, 1)).unwrap();
        assert_ne!(code, Code128::zero());
        let mut small = Scratch::<1279>::new();
        assert_eq!(
            Encoder::new(model, &mut small).err(),
            Some(EncodeError::ScratchTooSmall {
                needed: 1280,
                available: 1279
            })
        );
    }

    #[test]
    fn bad_calls_are_errors_not_panics() {
        let blob = write_blob(&spectrum_network(5)).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let mut scratch = vec![0i8; model.scratch_bytes()];
        let mut encoder = Encoder::with_slice(model, &mut scratch).unwrap();
        let n = model.input_len();
        assert!(matches!(
            encoder.encode::<f32, 16>(&vec![0.0; n + 1]),
            Err(EncodeError::EventLength { .. })
        ));
        let mut event = vec![0.0f32; n];
        event[2] = f32::INFINITY;
        assert_eq!(
            encoder.encode::<f32, 16>(&event),
            Err(EncodeError::NonFiniteSample { index: 2 })
        );
        let mut two = vec![0.0f32; 2 * n];
        two[n + 1] = f32::NAN;
        assert_eq!(
            encoder.encode_batch(&two, &mut [Code::<16>::zero(); 2]),
            Err(EncodeError::NonFiniteSample { index: n + 1 })
        );
        // In a group of events that run side by side too: the codes before the bad event are
        // written, and the error names its sample.
        let mut batch_scratch = vec![0i8; model.batch_scratch_bytes()];
        let mut batch_encoder = Encoder::with_slice(model, &mut batch_scratch).unwrap();
        let mut six = events(3, n, 6);
        six[2 * n + 5] = f32::NAN;
        let mut codes = [Code::<16>::zero(); 6];
        assert_eq!(
            batch_encoder.encode_batch(&six, &mut codes),
            Err(EncodeError::NonFiniteSample { index: 2 * n + 5 })
        );
        for (event, code) in six.chunks(n).zip(&codes).take(2) {
            assert_eq!(*code, batch_encoder.encode::<f32, 16>(event).unwrap());
        }
        assert!(matches!(
            encoder.encode_batch(&two, &mut [Code::<16>::zero(); 3]),
            Err(EncodeError::BatchLength { .. })
        ));
        if model.code_bits() > 8 {
            assert!(matches!(
                encoder.encode::<f32, 1>(&vec![0.0; n]),
                Err(EncodeError::CodeTooSmall { .. })
            ));
        }
    }

    #[test]
    fn integer_adc_input_matches_float_input_of_the_same_counts() {
        let blob = write_blob(&dense_1024_network(99)).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let mut scratch = Scratch::<1280>::new();
        let mut encoder = Encoder::new(model, &mut scratch).unwrap();
        let adc: Vec<i16> = (0..1024).map(|i| ((i * 37) % 23) as i16 - 11).collect();
        let floats: Vec<f32> = adc.iter().map(|&v| f32::from(v)).collect();
        let from_int: Code128 = encoder.encode(&adc).unwrap();
        let from_float: Code128 = encoder.encode(&floats).unwrap();
        // The integer path may differ by one input step in rare ties; bits almost all agree.
        assert!(
            from_int.hamming(&from_float) <= 4,
            "{from_int} vs {from_float}"
        );
    }
}
