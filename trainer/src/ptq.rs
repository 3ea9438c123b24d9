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

/// Quantisation parameters covering a calibration batch of activations.
fn activation_range<const D: usize>(activations: &Tensor<D>) -> QuantParams {
    let values = activations
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    range_of(&values)
}

/// Range of a batch of activations, as quantisation parameters.
fn range_of(values: &[f32]) -> QuantParams {
    let (lo, hi) = values
        .iter()
        .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    QuantParams::from_range(lo, hi)
}

/// Quantises the encoder of `model` into a runtime blob, calibrating activation ranges on
/// `calibration` (raw events, detector units).
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
    let normalised = normalisation.apply(calibration);
    let input_q = range_of(normalised.as_slice().unwrap_or(&[]));
    let mut layers = vec![LayerSpec::Input(
        quantize::input(
            shape.channels as u32,
            shape.length as u32,
            &normalisation.mean,
            &normalisation.std,
            input_q,
        )
        .map_err(quant_error("input"))?,
    )];
    let mut current_q = input_q;
    let batch = normalised.nrows();
    let mut h = to_tensor(&normalised, device);
    if !model.convs.is_empty() {
        let mut c: Tensor<3> = h.reshape([batch, shape.channels, shape.length]);
        let mut length = shape.length;
        for (index, conv) in model.convs.iter().enumerate() {
            let [out_channels, in_channels, _] = conv.weight.dims();
            let (w, b) = conv_parameters(conv);
            c = relu(conv.forward(c));
            let out_q = activation_range(&c);
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
            current_q = out_q;
        }
        let [_, channels, length] = c.dims();
        layers.push(LayerSpec::Flatten(ElementwiseSpec {
            channels: channels as u32,
            length: length as u32,
            zero_point: current_q.zero_point,
        }));
        h = c.flatten(1, 2);
    } else if shape.channels > 1 {
        // Dense layers read flat vectors; channel-major events flatten without moving bytes.
        layers.push(LayerSpec::Flatten(ElementwiseSpec {
            channels: shape.channels as u32,
            length: shape.length as u32,
            zero_point: current_q.zero_point,
        }));
    }
    for (index, layer) in model.encoder.iter().enumerate() {
        let (inputs, outputs, w, b) = linear_weights(layer);
        h = relu(layer.forward(h));
        let out_q = activation_range(&h);
        layers.push(LayerSpec::Dense(
            quantize::dense(
                inputs as u32,
                outputs as u32,
                &w,
                &b,
                current_q,
                out_q,
                true,
            )
            .map_err(quant_error(&format!("dense {index}")))?,
        ));
        current_q = out_q;
    }
    let (inputs, bits, w, b) = linear_weights(&model.mu);
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
