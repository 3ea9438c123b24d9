//! The int8 encoder as ONNX: the runtime blob's integer arithmetic written out in standard
//! operators (opset 15), so that other inference stacks and FPGA flows run the encoder the
//! front-end runs, bit for bit. The file is built from the blob alone (not the float model)
//! and checked in tract against the runtime's own codes before it is written.
//!
//! | file | input | outputs |
//! |---|---|---|
//! | `encoder-int8.onnx` | `events` `[N, D]` f32, raw detector units | `bits` `[N, bits]` (0/1 floats), `logits` `[N, bits]` int32 (the head's accumulators: how far each bit is from flipping) |
//!
//! How each runtime layer is written (`runtime/src/layers/` has the arithmetic):
//!
//! - **input quantisation**: `(x − offset)·gain` in f32 as the runtime computes it, rounded
//!   half away from zero as `Sign(v)·Floor(|v| + ½)`, plus the zero point, clipped to int8.
//! - **dense**: `MatMulInteger` (int8 × int8, the input zero point subtracted) to int32, plus
//!   the bias; the fixed-point requantisation in int64, `(acc·multiplier + 2^(t−1)) >> t`
//!   with `t = 31 − shift`, the shift written as a floor division (ONNX has no arithmetic
//!   shift for signed integers): `Div` truncates, so one is taken off a negative value that
//!   does not divide evenly; plus the
//!   output zero point, clamped to `[floor, 127]` (`floor` the zero point with a fused ReLU).
//! - **ReLU**: `Max` with the zero point. **Leaky ReLU**: below the zero point, the zero point
//!   plus the requantised distance to it. **Flatten**: nothing (events are flat throughout).
//! - **point-set block**: the events reshaped to one row per point, the dense chain,
//!   `ReduceMax` over the points.
//! - **binary head**: `MatMulInteger` plus the bias gives `logits`; `bits` is `logits > 0`.
//!
//! Conv1d and pooling layers are not written (yet): a blob with one is refused with an error
//! that names it. The runtime refuses NaN and infinite samples; this graph has no error path,
//! so a caller checks its inputs first.

use ndarray::Array2;
use onnx_protobuf::ModelProto;
use onnx_protobuf::tensor_proto::DataType;
use tract_onnx::prelude::*;

use latentlink_runtime::Model;
use latentlink_runtime::blob::Layer;
use latentlink_runtime::layers::{ChannelParams, Dense};
use latentlink_runtime::quant::Requant;

use super::onnx::{GraphBuilder, attribute_int, attribute_ints, typed_value_info};

/// The file name inside a package.
pub const FILE: &str = latentlink_package::files::ENCODER_INT8_ONNX;

/// The opset the file declares: 15 for `CastLike` (see [`cast`]).
pub const OPSET: i64 = 15;

/// Why the int8 encoder could not be written or failed its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Int8OnnxError {
    /// The blob does not parse.
    #[error("the runtime blob is invalid: {0}")]
    Blob(latentlink_runtime::BlobError),
    /// The blob has a layer this exporter does not write.
    #[error(
        "layer {index} of the blob is a {kind} layer, which the int8 ONNX export does not write yet (it writes input, dense, ReLU, leaky ReLU, flatten, point-set and binary-head layers)"
    )]
    Unsupported {
        /// Position in the blob.
        index: usize,
        /// The layer kind.
        kind: &'static str,
    },
    /// The blob does not start with an input layer and end with a binary head.
    #[error("the runtime blob does not run from an input layer to a binary head")]
    Structure,
    /// The ONNX file could not be encoded.
    #[error("encoding {FILE}: {0}")]
    Encode(#[from] protobuf::Error),
    /// tract could not load or run the file.
    #[error("tract cannot run {FILE}: {0}")]
    Tract(String),
    /// The file's bits differ from the runtime's.
    #[error(
        "{FILE} gives other bits than the int8 runtime: {differing} of {total} bits differ (first in event {first_event})"
    )]
    Mismatch {
        /// Bits that differ.
        differing: usize,
        /// Bits compared.
        total: usize,
        /// The first event with a differing bit.
        first_event: usize,
    },
}

/// Writes the int8 encoder of a runtime blob as ONNX bytes.
///
/// # Errors
/// [`Int8OnnxError`] if the blob is invalid, has a layer the export does not write, or the
/// file cannot be encoded.
pub fn encoder(blob: &[u8]) -> Result<Vec<u8>, Int8OnnxError> {
    let model = Model::from_bytes(blob).map_err(Int8OnnxError::Blob)?;
    let mut g = GraphBuilder::default();
    let mut features = 0;
    let mut bits = 0;
    let mut h = String::new();
    for (index, layer) in model.layers().enumerate() {
        let layer = layer.map_err(Int8OnnxError::Blob)?;
        let name = format!("layer{index}");
        match (index, &layer) {
            (0, Layer::Input(input)) => {
                features = input.shape().elements();
                let params: Vec<_> = (0..features).filter_map(|i| input.feature(i)).collect();
                let offsets = params.iter().map(|p| p.offset).collect();
                let gains = params.iter().map(|p| p.gain).collect();
                h = input_quantisation(&mut g, &name, offsets, gains, input.zero_point());
            }
            (0, _) => return Err(Int8OnnxError::Structure),
            (_, Layer::Dense(dense)) => h = self::dense(&mut g, &h, dense, &name),
            (_, Layer::Relu(relu)) => {
                // On int32: not every stack has Max for int8.
                let wide = cast(&mut g, &h, DataType::INT32);
                let zero_point = vec![i32::from(relu.zero_point())];
                let z = g.int32(&format!("{name}.zero_point"), &[], zero_point);
                let clamped = g.node("Max", &[&wide, &z], Vec::new());
                h = cast(&mut g, &clamped, DataType::INT8);
            }
            (_, Layer::LeakyRelu(leaky)) => {
                h = leaky_relu(&mut g, &h, leaky.zero_point(), leaky.alpha(), &name);
            }
            (_, Layer::Flatten(_)) => {}
            (_, Layer::PointSet(block)) => {
                let inner = block.inner();
                let (Some(first), Some(last)) = (inner.first(), inner.last()) else {
                    return Err(Int8OnnxError::Structure);
                };
                let per_point = first.input_shape().elements() as i64;
                let shape = g.int64(&format!("{name}.points"), vec![-1, per_point]);
                h = g.node("Reshape", &[&h, &shape], Vec::new());
                for (i, dense) in inner.iter().enumerate() {
                    h = self::dense(&mut g, &h, dense, &format!("{name}.inner{i}"));
                }
                let width = last.output_shape().elements() as i64;
                let points = i64::from(block.points());
                let shape = g.int64(&format!("{name}.sets"), vec![-1, points, width]);
                h = g.node("Reshape", &[&h, &shape], Vec::new());
                // Max over the points, on int32 (every stack reduces those).
                h = cast(&mut g, &h, DataType::INT32);
                let pooled = vec![attribute_ints("axes", &[1]), attribute_int("keepdims", 0)];
                h = g.node("ReduceMax", &[&h], pooled);
                h = cast(&mut g, &h, DataType::INT8);
            }
            (_, Layer::BinaryHead(head)) => {
                bits = head.bits() as usize;
                let (rows, n) = (head.weights(), head.input_shape().elements());
                let acc = mat_mul_integer(&mut g, &h, rows, n, head.input_zero_point(), &name);
                let bias = g.int32(&format!("{name}.bias"), &[bits], head.biases().collect());
                let logits = g.named_node("Add", &[&acc, &bias], Vec::new(), "logits");
                let zero = g.int32(&format!("{name}.zero"), &[], vec![0]);
                let positive = g.node("Greater", &[&logits, &zero], Vec::new());
                g.named_node(
                    "Cast",
                    &[&positive],
                    vec![attribute_int("to", DataType::FLOAT as i64)],
                    "bits",
                );
            }
            (_, other) => {
                return Err(Int8OnnxError::Unsupported {
                    index,
                    kind: other.kind().name(),
                });
            }
        }
    }
    if features == 0 || bits == 0 {
        return Err(Int8OnnxError::Structure);
    }
    let model: ModelProto = g.finish_with_opset(
        "latentlink_encoder_int8",
        vec![typed_value_info("events", features, DataType::FLOAT)],
        vec![
            typed_value_info("bits", bits, DataType::FLOAT),
            typed_value_info("logits", bits, DataType::INT32),
        ],
        OPSET,
    );
    Ok(super::onnx::to_bytes(&model)?)
}

fn cast(g: &mut GraphBuilder, x: &str, to: DataType) -> String {
    if to == DataType::INT64 {
        // tract reads `Cast(to = int64)` as a cast to its symbolic dimension type, whose
        // arithmetic is not meant for 2^40-sized values; `CastLike` an int64 constant gives
        // plain int64 everywhere.
        let like = g.int64_shaped(&format!("{x}.int64_like"), &[], vec![0]);
        return g.node("CastLike", &[x, &like], Vec::new());
    }
    g.node("Cast", &[x], vec![attribute_int("to", to as i64)])
}

/// `saturate(z + round_half_away((x − offset)·gain))` per feature, as int8.
fn input_quantisation(
    g: &mut GraphBuilder,
    name: &str,
    offsets: Vec<f32>,
    gains: Vec<f32>,
    zero_point: i8,
) -> String {
    let features = offsets.len();
    let offset = g.float(&format!("{name}.offset"), &[features], offsets);
    let gain = g.float(&format!("{name}.gain"), &[features], gains);
    let centred = g.node("Sub", &["events", &offset], Vec::new());
    let v = g.node("Mul", &[&centred, &gain], Vec::new());
    let magnitude = g.node("Abs", &[&v], Vec::new());
    let half = g.scalar(&format!("{name}.half"), 0.5);
    let lifted = g.node("Add", &[&magnitude, &half], Vec::new());
    let rounded = g.node("Floor", &[&lifted], Vec::new());
    let sign = g.node("Sign", &[&v], Vec::new());
    let steps = g.node("Mul", &[&sign, &rounded], Vec::new());
    let z = g.scalar(&format!("{name}.zero_point"), f32::from(zero_point));
    let shifted = g.node("Add", &[&steps, &z], Vec::new());
    let (lo, hi) = (
        g.scalar(&format!("{name}.min"), -128.0),
        g.scalar(&format!("{name}.max"), 127.0),
    );
    let clipped = g.node("Clip", &[&shifted, &lo, &hi], Vec::new());
    cast(g, &clipped, DataType::INT8)
}

/// `Σ w·(x − z)` of int8 `x` `[M, n]` against `rows` (`n` weights each), as int32 `[M, rows]`.
fn mat_mul_integer(
    g: &mut GraphBuilder,
    x: &str,
    rows: &[u8],
    n: usize,
    input_zero_point: i8,
    name: &str,
) -> String {
    let out = rows.len() / n.max(1);
    // The blob stores rows (one per output); MatMul takes `[in, out]`.
    let transposed = (0..n * out)
        .map(|k| rows[(k % out) * n + k / out])
        .collect();
    let w = g.int8(&format!("{name}.weight"), &[n, out], transposed);
    let z = g.int8(
        &format!("{name}.input_zero_point"),
        &[],
        vec![input_zero_point as u8],
    );
    g.node("MatMulInteger", &[x, &w, &z], Vec::new())
}

/// A dense layer: accumulate, add the bias, requantise per channel, clamp to int8.
fn dense(g: &mut GraphBuilder, x: &str, dense: &Dense<'_>, name: &str) -> String {
    let n = dense.input_shape().elements();
    let acc = mat_mul_integer(g, x, dense.weights(), n, dense.input_zero_point(), name);
    let channels: Vec<ChannelParams> = dense.channels().collect();
    let bias = g.int32(
        &format!("{name}.bias"),
        &[channels.len()],
        channels.iter().map(|c| c.bias).collect(),
    );
    let biased = g.node("Add", &[&acc, &bias], Vec::new());
    let wide = cast(g, &biased, DataType::INT64);
    let requants: Vec<Requant> = channels.iter().map(|c| c.requant).collect();
    let scaled = requantise(g, &wide, &requants, &[channels.len()], name);
    let zero_point = dense.output_zero_point();
    let floor = if dense.relu() { zero_point } else { i8::MIN };
    clamp_to_int8(g, &scaled, zero_point, floor, name)
}

/// [`Requant::apply`] of int64 `x`, one rescale per channel (`dims` `[channels]`) or one for
/// all (`dims` `[]`): `(x·multiplier + 2^(t−1)) >> t`, `t = 31 − shift`, as int64.
fn requantise(
    g: &mut GraphBuilder,
    x: &str,
    requants: &[Requant],
    dims: &[usize],
    name: &str,
) -> String {
    // As `Requant::apply`: the shift is kept in 1..=62, so 2^t fits an i64.
    let totals: Vec<u32> = requants
        .iter()
        .map(|r| (31 - r.shift()).clamp(1, 62) as u32)
        .collect();
    let multipliers = requants.iter().map(|r| i64::from(r.multiplier())).collect();
    let halves = totals.iter().map(|t| 1i64 << (t - 1)).collect();
    let divisors = totals.iter().map(|t| 1i64 << t).collect();
    let multiplier = g.int64_shaped(&format!("{name}.multiplier"), dims, multipliers);
    let half = g.int64_shaped(&format!("{name}.rounding"), dims, halves);
    let divisor = g.int64_shaped(&format!("{name}.divisor"), dims, divisors);
    // |acc| < 2^31 and multiplier < 2^31: the product and the rounding term fit in i64.
    let product = g.node("Mul", &[x, &multiplier], Vec::new());
    let rounded = g.node("Add", &[&product, &half], Vec::new());
    // The arithmetic shift is a floor division. Integer Div truncates towards zero, so a
    // negative value that does not divide evenly is one too high: take one off.
    let truncated = g.node("Div", &[&rounded, &divisor], Vec::new());
    let back = g.node("Mul", &[&truncated, &divisor], Vec::new());
    let even = g.node("Equal", &[&back, &rounded], Vec::new());
    let uneven = g.node("Not", &[&even], Vec::new());
    let zero = g.int64_shaped(&format!("{name}.zero"), &[], vec![0]);
    let negative = g.node("Less", &[&rounded, &zero], Vec::new());
    let high = g.node("And", &[&uneven, &negative], Vec::new());
    let correction = cast(g, &high, DataType::INT64);
    g.node("Sub", &[&truncated, &correction], Vec::new())
}

/// `clamp(z + x, floor, 127)` of int64 `x`, as int8.
fn clamp_to_int8(g: &mut GraphBuilder, x: &str, zero_point: i8, floor: i8, name: &str) -> String {
    let clamped = clamp(g, x, zero_point, floor, name);
    cast(g, &clamped, DataType::INT8)
}

/// `clamp(z + x, floor, 127)` of int64 `x`, as int64.
fn clamp(g: &mut GraphBuilder, x: &str, zero_point: i8, floor: i8, name: &str) -> String {
    let z = vec![i64::from(zero_point)];
    let z = g.int64_shaped(&format!("{name}.output_zero_point"), &[], z);
    let lo = g.int64_shaped(&format!("{name}.floor"), &[], vec![i64::from(floor)]);
    let hi = g.int64_shaped(&format!("{name}.ceiling"), &[], vec![127]);
    let shifted = g.node("Add", &[x, &z], Vec::new());
    let above = g.node("Max", &[&shifted, &lo], Vec::new());
    g.node("Min", &[&above, &hi], Vec::new())
}

/// Leaky ReLU: values below the zero point become `z + alpha·(x − z)`, requantised; in int64
/// throughout, as not every stack compares or selects int8.
fn leaky_relu(g: &mut GraphBuilder, x: &str, zero_point: i8, alpha: Requant, name: &str) -> String {
    let wide = cast(g, x, DataType::INT64);
    let z = vec![i64::from(zero_point)];
    let z = g.int64_shaped(&format!("{name}.zero_point"), &[], z);
    let distance = g.node("Sub", &[&wide, &z], Vec::new());
    let scaled = requantise(g, &distance, &[alpha], &[], name);
    let leaked = clamp(g, &scaled, zero_point, i8::MIN, name);
    let below = g.node("Less", &[&wide, &z], Vec::new());
    let chosen = g.node("Where", &[&below, &leaked, &wide], Vec::new());
    cast(g, &chosen, DataType::INT8)
}

/// Writes the int8 encoder of `blob` and checks it in tract on `events` against the runtime's
/// `int8_codes` of them (the package's golden vectors): the bytes to write, and what was
/// checked.
///
/// # Errors
/// As [`encoder`] and [`check`].
pub fn export(
    blob: &[u8],
    events: &Array2<f32>,
    int8_codes: &Array2<f32>,
) -> Result<(Vec<u8>, Int8Parity), Int8OnnxError> {
    let bytes = encoder(blob)?;
    let parity = check(&bytes, events, int8_codes)?;
    Ok((bytes, parity))
}

/// [`export`], for a package being written: the bytes, or `None` with a warning when the blob
/// has a layer the export does not write (the package is still whole without the file).
///
/// # Errors
/// Every other [`Int8OnnxError`]: a file that would run differently is never written.
pub fn export_if_supported(
    blob: &[u8],
    events: &Array2<f32>,
    int8_codes: &Array2<f32>,
) -> Result<Option<(Vec<u8>, Int8Parity)>, Int8OnnxError> {
    match export(blob, events, int8_codes) {
        Ok(done) => Ok(Some(done)),
        Err(error @ Int8OnnxError::Unsupported { .. }) => {
            tracing::warn!(%error, "{FILE} not written");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// What [`check`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int8Parity {
    /// Events compared.
    pub events: usize,
    /// Bits compared (all equal).
    pub bits: usize,
}

/// Runs the file in tract on `events` and holds its bits against the runtime's `int8_codes`
/// (0/1 `[N, bits]`, e.g. the golden ones): every bit must be equal.
///
/// # Errors
/// [`Int8OnnxError::Tract`] if tract cannot run it, [`Int8OnnxError::Mismatch`] if a bit
/// differs.
pub fn check(
    onnx: &[u8],
    events: &Array2<f32>,
    int8_codes: &Array2<f32>,
) -> Result<Int8Parity, Int8OnnxError> {
    let (bits, _) = run(onnx, events)?;
    compare(&bits, int8_codes)
}

/// The outputs of the file in tract: `bits` and `logits`.
///
/// # Errors
/// [`Int8OnnxError::Tract`] if tract cannot load or run it.
pub fn run(onnx: &[u8], events: &Array2<f32>) -> Result<(Array2<f32>, Array2<i32>), Int8OnnxError> {
    let fail = |e: TractError| Int8OnnxError::Tract(format!("{e:#}"));
    let (rows, cols) = events.dim();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.with_input_fact(0, f32::fact([rows, cols]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(fail)?;
    let events = events.as_standard_layout();
    let tensor =
        Tensor::from_shape(&[rows, cols], events.as_slice().unwrap_or(&[])).map_err(fail)?;
    let outputs = plan.run(tvec!(tensor.into())).map_err(fail)?;
    let output = |index: usize| {
        outputs
            .get(index)
            .ok_or_else(|| Int8OnnxError::Tract(format!("no output {index}")))
    };
    let bits = output(0)?.to_plain_array_view::<f32>().map_err(fail)?;
    let logits = output(1)?.to_plain_array_view::<i32>().map_err(fail)?;
    let width = bits.shape().get(1).copied().unwrap_or(0);
    let shape_error = |e: ndarray::ShapeError| Int8OnnxError::Tract(e.to_string());
    Ok((
        Array2::from_shape_vec((rows, width), bits.iter().copied().collect())
            .map_err(shape_error)?,
        Array2::from_shape_vec((rows, width), logits.iter().copied().collect())
            .map_err(shape_error)?,
    ))
}

fn compare(bits: &Array2<f32>, int8_codes: &Array2<f32>) -> Result<Int8Parity, Int8OnnxError> {
    let total = int8_codes.len();
    if bits.dim() != int8_codes.dim() {
        return Err(Int8OnnxError::Mismatch {
            differing: total,
            total,
            first_event: 0,
        });
    }
    let width = int8_codes.ncols().max(1);
    let differing: Vec<usize> = bits
        .iter()
        .zip(int8_codes.iter())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i / width)
        .collect();
    match differing.first() {
        None => Ok(Int8Parity {
            events: int8_codes.nrows(),
            bits: total,
        }),
        Some(&first_event) => Err(Int8OnnxError::Mismatch {
            differing: differing.len(),
            total,
            first_event,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latentlink_runtime::blob::write::{LayerSpec, write_blob};
    use latentlink_runtime::layers::activation::ElementwiseSpec;
    use latentlink_runtime::layers::conv1d::Conv1dSpec;
    use latentlink_runtime::layers::dense::DenseSpec;
    use latentlink_runtime::layers::head::HeadSpec;
    use latentlink_runtime::layers::input::{FeatureParams, InputSpec};
    use latentlink_runtime::layers::point_set::PointSetSpec;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn dense(
        rng: &mut StdRng,
        inputs: u32,
        outputs: u32,
        zero_points: (i8, i8),
        relu: bool,
    ) -> DenseSpec {
        DenseSpec {
            in_features: inputs,
            out_features: outputs,
            input_zero_point: zero_points.0,
            output_zero_point: zero_points.1,
            relu,
            weights: (0..inputs * outputs)
                .map(|_| rng.random_range(-128..=127))
                .collect(),
            channels: (0..outputs)
                .map(|_| ChannelParams {
                    bias: rng.random_range(-20_000..20_000),
                    // Rescales from tiny to above one, so requantised values land on both
                    // sides of zero, in and out of the int8 range.
                    requant: Requant::from_real(10f64.powf(rng.random_range(-4.0..0.3))).unwrap(),
                })
                .collect(),
        }
    }

    fn input(rng: &mut StdRng, features: u32, zero_point: i8) -> LayerSpec {
        LayerSpec::Input(InputSpec {
            channels: 1,
            length: features,
            zero_point,
            // Every third feature passes samples through (offset 0, gain 1), so that samples on
            // halves meet the rounding's ties.
            features: (0..features)
                .map(|i| {
                    let (offset, gain) = if i % 3 == 0 {
                        (0.0, 1.0)
                    } else {
                        (rng.random_range(-2.0..2.0), rng.random_range(1.0..60.0))
                    };
                    FeatureParams::new(offset, gain).unwrap()
                })
                .collect(),
        })
    }

    fn head(rng: &mut StdRng, inputs: u32, bits: u32, zero_point: i8) -> LayerSpec {
        LayerSpec::BinaryHead(HeadSpec {
            in_features: inputs,
            bits,
            input_zero_point: zero_point,
            weights: (0..inputs * bits)
                .map(|_| rng.random_range(-128..=127))
                .collect(),
            biases: (0..bits).map(|_| rng.random_range(-5_000..5_000)).collect(),
        })
    }

    /// Events with every kind of value the input layer meets: halves (ties of the rounding),
    /// values far past the int8 range, negatives.
    fn events(rng: &mut StdRng, n: usize, features: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, features), |(i, _)| match i % 4 {
            0 => rng.random_range(-3.0..3.0),
            1 => f32::from(rng.random_range(-300i16..300)) * 0.5,
            2 => rng.random_range(-1e4..1e4),
            _ => rng.random_range(-0.2..0.2),
        })
    }

    /// The head's logits of one event, from the runtime's layers run one by one: a reference
    /// far more sensitive than the bits (one int8 step anywhere moves them).
    fn runtime_logits(blob: &[u8], event: &[f32]) -> Vec<i32> {
        let model = Model::from_bytes(blob).unwrap();
        let mut x: Vec<i8> = Vec::new();
        for layer in model.layers() {
            match layer.unwrap() {
                Layer::Input(input) => {
                    x = vec![0; event.len()];
                    input.run(event, &mut x).unwrap();
                }
                Layer::Dense(dense) => {
                    let mut y = vec![0; dense.output_shape().elements()];
                    dense.run(&x, &mut y).unwrap();
                    x = y;
                }
                Layer::PointSet(block) => {
                    let mut y = vec![0; block.output_shape().elements()];
                    let mut temp = vec![0; block.temp_len()];
                    block.run(&x, &mut y, &mut temp).unwrap();
                    x = y;
                }
                Layer::Relu(relu) => relu.run(&mut x).unwrap(),
                Layer::LeakyRelu(leaky) => leaky.run(&mut x).unwrap(),
                Layer::Flatten(_) => {}
                Layer::BinaryHead(head) => {
                    let mut logits = vec![0; head.bits() as usize];
                    head.logits(&x, &mut logits).unwrap();
                    return logits;
                }
                other => panic!("no reference for {:?}", other.kind()),
            }
        }
        panic!("no head")
    }

    /// The file's bits in tract against the runtime's codes of the same events, and its
    /// logits against the runtime's, exactly.
    fn assert_bit_exact(layers: &[LayerSpec], features: usize, seed: u64) -> Int8Parity {
        let blob = write_blob(layers).unwrap();
        let events = events(&mut StdRng::seed_from_u64(seed), 64, features);
        let codes = crate::ptq::runtime_codes(&blob, &events).unwrap();
        let (bytes, parity) = export(&blob, &events, &codes).unwrap();
        let (_, logits) = run(&bytes, &events).unwrap();
        for (event, logits) in events.outer_iter().zip(logits.outer_iter()) {
            let expected = runtime_logits(&blob, event.as_slice().unwrap());
            assert_eq!(logits.to_vec(), expected);
        }
        parity
    }

    #[test]
    fn an_mlp_with_every_elementwise_layer_is_bit_exact() {
        let mut rng = StdRng::seed_from_u64(1);
        let flat = |length, zero_point| ElementwiseSpec {
            channels: 1,
            length,
            zero_point,
        };
        let layers = [
            input(&mut rng, 24, -3),
            LayerSpec::Flatten(flat(24, -3)),
            LayerSpec::Dense(dense(&mut rng, 24, 32, (-3, 5), true)),
            LayerSpec::Dense(dense(&mut rng, 32, 16, (5, -7), false)),
            LayerSpec::Relu(flat(16, -7)),
            LayerSpec::Dense(dense(&mut rng, 16, 16, (-7, 2), false)),
            LayerSpec::LeakyRelu(flat(16, 2), Requant::from_real(0.1).unwrap()),
            head(&mut rng, 16, 40, 2),
        ];
        let parity = assert_bit_exact(&layers, 24, 2);
        assert_eq!((parity.events, parity.bits), (64, 64 * 40));
    }

    #[test]
    fn a_point_set_encoder_is_bit_exact() {
        let mut rng = StdRng::seed_from_u64(3);
        let (points, features) = (6, 4);
        let layers = [
            input(&mut rng, points * features, 1),
            LayerSpec::PointSet(PointSetSpec {
                points,
                features,
                inner: vec![
                    dense(&mut rng, features, 12, (1, -4), true),
                    dense(&mut rng, 12, 10, (-4, 3), true),
                ],
            }),
            LayerSpec::Dense(dense(&mut rng, 10, 8, (3, 0), true)),
            head(&mut rng, 8, 16, 0),
        ];
        assert_bit_exact(&layers, (points * features) as usize, 4);
    }

    #[test]
    fn a_layer_it_does_not_write_is_named_and_a_wrong_code_is_caught() {
        let mut rng = StdRng::seed_from_u64(5);
        let conv = Conv1dSpec {
            in_channels: 1,
            in_length: 8,
            out_channels: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            relu: true,
            weights: vec![1; 6],
            channels: vec![
                ChannelParams {
                    bias: 0,
                    requant: Requant::IDENTITY,
                };
                2
            ],
        };
        let blob = write_blob(&[
            input(&mut rng, 8, 0),
            LayerSpec::Conv1d(conv),
            LayerSpec::Flatten(ElementwiseSpec {
                channels: 2,
                length: 8,
                zero_point: 0,
            }),
            head(&mut rng, 16, 8, 0),
        ])
        .unwrap();
        let error = encoder(&blob).unwrap_err();
        assert!(
            matches!(error, Int8OnnxError::Unsupported { index: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("conv1d"), "{error}");

        let layers = [input(&mut rng, 8, 0), head(&mut rng, 8, 8, 0)];
        let blob = write_blob(&layers).unwrap();
        let events = events(&mut rng, 4, 8);
        let mut codes = crate::ptq::runtime_codes(&blob, &events).unwrap();
        codes[[2, 5]] = 1.0 - codes[[2, 5]];
        let error = export(&blob, &events, &codes).unwrap_err();
        assert!(
            matches!(
                error,
                Int8OnnxError::Mismatch {
                    differing: 1,
                    total: 32,
                    first_event: 2
                }
            ),
            "{error}"
        );
    }
}
