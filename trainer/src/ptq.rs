//! Post-training int8 quantisation: a trained [`Vae`] encoder becomes a runtime blob, written
//! with the runtime's own writer and quantisation helpers so the format lives in one place.
//!
//! Activation ranges are calibrated on a calibration split by running the float encoder
//! layer by layer; weights are quantised per output channel. The blob takes raw events in
//! detector units: its input layer folds in the training normalisation. The binarising head is
//! the `μ` layer, whose signs are the code bits, so agreement between int8 and float codes is
//! exactly the fraction of `μ` signs the integers reproduce.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use latentlink_runtime::blob::write::{LayerSpec, write_blob};
use latentlink_runtime::layers::activation::ElementwiseSpec;
use latentlink_runtime::layers::point_set::PointSetSpec;
use latentlink_runtime::quantize::{self, ConvGeometry, QuantParams};
use latentlink_runtime::{BlobError, Model};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use latentlink_model::tensor::{TensorError, to_array, to_tensor};
use latentlink_model::vae::{
    CONV_KERNEL, CONV_PADDING, CONV_STRIDE, Vae, conv_out_length, conv_parameters,
    linear_parameters,
};

use crate::data::{EventShape, Normalisation};

/// Why a model could not be quantised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtqError {
    /// A parameter could not be represented.
    #[error("cannot quantise layer {layer}: {source}")]
    Quantize {
        /// Which layer.
        layer: String,
        /// The runtime's quantisation error.
        #[source]
        source: quantize::QuantizeError,
    },
    /// A tensor of the float model could not be read back.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// The written blob failed validation (a bug in the exporter).
    #[error("the exported blob is invalid: {0}")]
    Blob(#[from] BlobError),
    /// The runtime refused to run the blob.
    #[error("the runtime cannot run the exported blob: {0}")]
    Encode(#[from] latentlink_runtime::EncodeError),
}

fn quant_error(layer: &str) -> impl Fn(quantize::QuantizeError) -> PtqError + '_ {
    move |source| PtqError::Quantize {
        layer: layer.to_owned(),
        source,
    }
}

/// Float weights of a dense layer, output-major (`[out][in]`), and its bias.
fn linear_weights(layer: &Linear) -> (usize, usize, Vec<f32>, Vec<f32>) {
    let [inputs, outputs] = layer.weight.dims();
    let (w, bias) = linear_parameters(layer);
    // burn stores [in, out]; the runtime wants one row per output.
    let mut transposed = vec![0f32; inputs * outputs];
    for i in 0..inputs {
        for o in 0..outputs {
            transposed[o * inputs + i] = w[i * outputs + o];
        }
    }
    (inputs, outputs, transposed, bias)
}

/// Multiplies column `i` of the output-major weights `w` (`inputs` columns) by `scale[i]`.
fn scale_columns(w: &mut [f32], inputs: usize, scale: &[f32]) {
    for row in w.chunks_mut(inputs) {
        row.iter_mut().zip(scale).for_each(|(w, s)| *w *= s);
    }
}

/// The range of a batch of activations between its `1 − coverage` and `coverage` quantiles,
/// as quantisation parameters. Clipping the rarest extremes buys every other value a finer
/// step; values beyond saturate.
fn range_of(values: &[f32], coverage: f64) -> QuantParams {
    let Some(last) = values.len().checked_sub(1) else {
        return QuantParams::from_range(0.0, 0.0);
    };
    let mut values = values.to_vec();
    // Truncation picks the sample at or inside the quantile, so coverage 1 is the extremes.
    let hi_index = (coverage * last as f64) as usize;
    let lo_index = last - hi_index;
    let (_, &mut hi, _) = values.select_nth_unstable_by(hi_index, f32::total_cmp);
    let (_, &mut lo, _) = values.select_nth_unstable_by(lo_index, f32::total_cmp);
    QuantParams::from_range(lo, hi)
}

/// Activation coverages tried by [`quantize`], from the full range to clipping one value in
/// a thousand at each end.
pub const COVERAGES: [f64; 4] = [1.0, 0.99999, 0.9999, 0.999];

/// Quantises the encoder of `model` into a runtime blob, calibrating activation ranges on
/// `calibration` (raw events, detector units). Each of [`COVERAGES`] is tried for the
/// activation ranges, and the blob whose int8 codes agree best with the float model's on the
/// calibration events is kept (the least clipping on a tie).
///
/// # Errors
/// [`PtqError`] if a parameter cannot be represented or the blob does not validate.
pub fn quantize(
    model: &Vae,
    normalisation: &Normalisation,
    shape: EventShape,
    calibration: &Array2<f32>,
    device: &Device,
) -> Result<Vec<u8>, PtqError> {
    let float = float_codes(model, normalisation, calibration, device)?;
    let activations = Activations::of(model, normalisation, shape, calibration, device)?;
    let (mut best_agreement, mut best_blob) = (f64::NEG_INFINITY, Vec::new());
    for coverage in COVERAGES {
        let blob = blob_with(model, shape, &activations, coverage)?;
        let agreement = agreement(&float, &runtime_codes(&blob, calibration)?).bit_agreement;
        tracing::debug!(coverage, agreement, "activation clipping tried");
        if agreement > best_agreement {
            (best_agreement, best_blob) = (agreement, blob);
        }
    }
    Ok(best_blob)
}

/// What calibration measures once, whatever clipping is then tried: how the blob scales
/// its input, and the float encoder's activations on the calibration events.
struct Activations {
    /// The blob's input scaling.
    input_scaling: Normalisation,
    /// Factors for the first dense layer's weight columns (see [`Activations::of`]).
    column_scale: Vec<f32>,
    /// The calibration events in the blob's input scaling.
    input: Vec<f32>,
    /// Each conv layer's output after ReLU, first to last.
    convs: Vec<Vec<f32>>,
    /// Each per-point layer's output after ReLU over every point, first to last.
    points: Vec<Vec<f32>>,
    /// Each hidden dense layer's output after ReLU, first to last.
    dense: Vec<Vec<f32>>,
}

impl Activations {
    fn of(
        model: &Vae,
        normalisation: &Normalisation,
        shape: EventShape,
        calibration: &Array2<f32>,
        device: &Device,
    ) -> Result<Self, PtqError> {
        // The int8 input has 256 levels for the whole event. With one scale for every feature
        // (`Scaling::Global`) a quiet feature would get a handful of them, and the int8 codes
        // would part from the float ones; so in front of a dense layer the blob z-scores each
        // feature and that layer's weight columns absorb the change of scale, which leaves
        // the float model's arithmetic unchanged. It keeps the model's means, which calibration
        // events other than the training set (`latentlink quantize`) would move: a mean that
        // moved would shift the layer's outputs, which scaling its columns cannot undo. A
        // convolution shares its weights along the event, so there the input keeps the
        // model's scaling, and so does a point cloud, whose per-point layers share theirs
        // across the points.
        let input_scaling = if model.convs.is_empty() && model.point_layers.is_empty() {
            Normalisation {
                mean: normalisation.mean.clone(),
                std: Normalisation::fit(calibration).std,
            }
        } else {
            normalisation.clone()
        };
        let column_scale = input_scaling
            .std
            .iter()
            .zip(&normalisation.std)
            .map(|(blob, model)| blob / model)
            .collect();
        let input = input_scaling.apply(calibration).into_iter().collect();
        let values =
            |t: Tensor<2>| -> Result<Vec<f32>, PtqError> { Ok(to_array(t)?.into_iter().collect()) };
        let mut h = to_tensor(&normalisation.apply(calibration), device);
        let mut convs = Vec::new();
        if !model.convs.is_empty() {
            let batch = calibration.nrows();
            let mut c: Tensor<3> = h.reshape([batch, shape.channels, shape.length]);
            for conv in &model.convs {
                c = relu(conv.forward(c));
                convs.push(values(c.clone().flatten(1, 2))?);
            }
            h = c.flatten(1, 2);
        }
        let mut points = Vec::new();
        if !model.point_layers.is_empty() {
            let shape = model.shape();
            let mut p: Tensor<3> =
                h.clone()
                    .reshape([calibration.nrows(), shape.channels, shape.length]);
            for layer in &model.point_layers {
                p = relu(layer.forward(p));
                points.push(values(p.clone().flatten(1, 2))?);
            }
            h = model.pool_points(h);
        }
        let mut dense = Vec::new();
        for layer in &model.encoder {
            h = relu(layer.forward(h));
            dense.push(values(h.clone())?);
        }
        Ok(Self {
            input_scaling,
            column_scale,
            input,
            convs,
            points,
            dense,
        })
    }
}

/// A dense layer followed by ReLU, from `linear_weights`' `(inputs, outputs, weights,
/// bias)`, reading `input` and writing `output`; returns the spec and its output parameters.
fn relu_dense(
    (inputs, outputs, w, b): (usize, usize, Vec<f32>, Vec<f32>),
    input: QuantParams,
    output: QuantParams,
    name: &str,
) -> Result<(latentlink_runtime::layers::dense::DenseSpec, QuantParams), PtqError> {
    let spec = quantize::dense(inputs as u32, outputs as u32, &w, &b, input, output, true)
        .map_err(quant_error(name))?;
    Ok((spec, output))
}

/// The blob of `model` with activation ranges clipped to `coverage` of the calibration
/// `activations`.
fn blob_with(
    model: &Vae,
    shape: EventShape,
    activations: &Activations,
    coverage: f64,
) -> Result<Vec<u8>, PtqError> {
    let input_q = range_of(&activations.input, coverage);
    let mut layers = vec![LayerSpec::Input(
        quantize::input(
            shape.channels as u32,
            shape.length as u32,
            &activations.input_scaling.mean,
            &activations.input_scaling.std,
            input_q,
        )
        .map_err(quant_error("input"))?,
    )];
    let mut current_q = input_q;
    if !model.convs.is_empty() {
        let mut length = shape.length;
        let mut channels = shape.channels;
        for (index, (conv, output)) in model.convs.iter().zip(&activations.convs).enumerate() {
            let [out_channels, in_channels, _] = conv.weight.dims();
            let (w, b) = conv_parameters(conv);
            let out_q = range_of(output, coverage);
            let geometry = ConvGeometry {
                in_channels: in_channels as u32,
                in_length: length as u32,
                out_channels: out_channels as u32,
                kernel: CONV_KERNEL as u16,
                stride: CONV_STRIDE as u16,
                padding: CONV_PADDING as u16,
            };
            layers.push(LayerSpec::Conv1d(
                quantize::conv1d(geometry, &w, &b, current_q, out_q, true)
                    .map_err(quant_error(&format!("conv {index}")))?,
            ));
            length = conv_out_length(length);
            channels = out_channels;
            current_q = out_q;
        }
        layers.push(LayerSpec::Flatten(ElementwiseSpec {
            channels: channels as u32,
            length: length as u32,
            zero_point: current_q.zero_point,
        }));
    } else if shape.channels > 1 {
        // Dense layers read flat vectors; channel-major events flatten without moving bytes.
        layers.push(LayerSpec::Flatten(ElementwiseSpec {
            channels: shape.channels as u32,
            length: shape.length as u32,
            zero_point: current_q.zero_point,
        }));
    }
    if !model.point_layers.is_empty() {
        let mut inner = Vec::new();
        for (index, (layer, output)) in model
            .point_layers
            .iter()
            .zip(&activations.points)
            .enumerate()
        {
            let (dense, out_q) = relu_dense(
                linear_weights(layer),
                current_q,
                range_of(output, coverage),
                &format!("point layer {index}"),
            )?;
            inner.push(dense);
            current_q = out_q;
        }
        layers.push(LayerSpec::PointSet(PointSetSpec {
            points: shape.channels as u32,
            features: shape.length as u32,
            inner,
        }));
    }
    // The input's change of scale goes into the first layer that reads it directly.
    let fold_input = model.convs.is_empty() && model.point_layers.is_empty();
    for (index, (layer, output)) in model.encoder.iter().zip(&activations.dense).enumerate() {
        let mut weights = linear_weights(layer);
        if index == 0 && fold_input {
            scale_columns(&mut weights.2, weights.0, &activations.column_scale);
        }
        let (dense, out_q) = relu_dense(
            weights,
            current_q,
            range_of(output, coverage),
            &format!("dense {index}"),
        )?;
        layers.push(LayerSpec::Dense(dense));
        current_q = out_q;
    }
    let (inputs, bits, mut w, b) = linear_weights(&model.mu);
    if model.encoder.is_empty() && fold_input {
        scale_columns(&mut w, inputs, &activations.column_scale);
    }
    layers.push(LayerSpec::BinaryHead(
        quantize::binary_head(inputs as u32, bits as u32, &w, &b, current_q)
            .map_err(quant_error("binary head"))?,
    ));
    Ok(write_blob(&layers)?)
}

/// How well int8 codes reproduce the float model's codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Fraction of all bits equal.
    pub bit_agreement: f64,
    /// Fraction of events whose whole code is equal.
    pub code_agreement: f64,
    /// Fraction of agreeing bits per latent.
    pub per_bit: Vec<f64>,
}

/// Float codes (signs of `μ`) of raw events, `[N, bits]` as 0/1.
pub fn float_codes(
    model: &Vae,
    normalisation: &Normalisation,
    events: &Array2<f32>,
    device: &Device,
) -> Result<Array2<f32>, TensorError> {
    let posterior = model.encode(to_tensor(&normalisation.apply(events), device));
    to_array(latentlink_model::latent::binarise(posterior.mu))
}

/// Int8 runtime codes of raw events, `[N, bits]` as 0/1.
///
/// # Errors
/// [`PtqError`] if the blob is invalid or an event cannot be encoded.
pub fn runtime_codes(blob: &[u8], events: &Array2<f32>) -> Result<Array2<f32>, PtqError> {
    let model = Model::from_bytes(blob)?;
    let bits = model.code_bits() as usize;
    let width = bits.div_ceil(8);
    let samples: Vec<f32> = events.iter().copied().collect();
    let bytes = latentlink_runtime::host::encode_events(model, &samples)?;
    Ok(Array2::from_shape_fn(
        (events.nrows(), bits),
        |(row, bit)| f32::from(bytes[row * width + bit / 8] >> (bit % 8) & 1),
    ))
}

/// Compares two code matrices of the same shape.
pub fn agreement(a: &Array2<f32>, b: &Array2<f32>) -> Agreement {
    let (n, bits) = a.dim();
    let mut per_bit = vec![0usize; bits];
    let mut identical = 0;
    for (ra, rb) in a.rows().into_iter().zip(b.rows()) {
        let mut same_code = true;
        for (k, (x, y)) in ra.iter().zip(rb.iter()).enumerate() {
            if x == y {
                per_bit[k] += 1;
            } else {
                same_code = false;
            }
        }
        identical += usize::from(same_code);
    }
    let total: usize = per_bit.iter().sum();
    let denominator = (n * bits).max(1) as f64;
    Agreement {
        bit_agreement: total as f64 / denominator,
        code_agreement: identical as f64 / n.max(1) as f64,
        per_bit: per_bit
            .iter()
            .map(|&c| c as f64 / n.max(1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_clips_the_rarest_extremes_only() {
        let mut values: Vec<f32> = (0..=1000).map(|i| i as f32 / 1000.0).collect();
        values.push(50.0);
        values.push(-20.0);
        let full = range_of(&values, 1.0);
        assert!(full.dequantize(127) >= 50.0 - full.scale);
        assert!(full.dequantize(-128) <= -20.0 + full.scale);
        // One value in a thousand at each end: the two outliers saturate, the rest keeps
        // a step about 70 times finer.
        let clipped = range_of(&values, 0.999);
        assert!(clipped.dequantize(127) < 1.01 && clipped.dequantize(127) > 0.99);
        assert!(clipped.scale * 60.0 < full.scale);
        assert_eq!(range_of(&[], 0.999), QuantParams::from_range(0.0, 0.0));
    }

    #[test]
    fn columns_scale_in_every_row() {
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        scale_columns(&mut w, 3, &[10.0, 1.0, 0.5]);
        assert_eq!(w, vec![10.0, 2.0, 1.5, 40.0, 5.0, 3.0]);
    }
}
