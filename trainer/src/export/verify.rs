//! Runs exported ONNX files in `tract-onnx` and compares them with the burn model, so a file
//! that another tool would run differently is never shipped.

use burn::tensor::Device;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use latentlink_model::Vae;
use latentlink_model::latent;
use latentlink_model::tensor::{TensorError, to_array, to_tensor};

use crate::data::Normalisation;

/// Largest tolerated error relative to the largest magnitude of an output.
pub const TOLERANCE: f64 = 1e-4;

/// Why an exported file failed verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// tract could not load or run the file.
    #[error("tract cannot run {file}: {source}")]
    Tract {
        /// Which file.
        file: &'static str,
        /// tract's error (`anyhow`, kept with its chain).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A file has fewer outputs than the exporter writes.
    #[error("{file} has no output {index}")]
    MissingOutput {
        /// Which file.
        file: &'static str,
        /// The output's index.
        index: usize,
    },
    /// A tensor of the burn model could not be read back.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// An output differs from the burn model.
    #[error(
        "{file} output {output} differs from the burn model by {relative_error:.2e} (relative), more than {TOLERANCE:.0e}"
    )]
    Mismatch {
        /// Which file.
        file: &'static str,
        /// Which output.
        output: &'static str,
        /// The error found.
        relative_error: f64,
    },
}

/// Runs an ONNX model with one `[N, D]` input and returns its outputs as `[N, *]` arrays.
///
/// # Errors
/// [`VerifyError::Tract`] naming `file` if tract cannot load or run it.
pub fn run(
    file: &'static str,
    onnx: &[u8],
    input: &Array2<f32>,
) -> Result<Vec<Array2<f32>>, VerifyError> {
    let fail = |e: TractError| VerifyError::Tract {
        file,
        source: e.into(),
    };
    let (rows, cols) = input.dim();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.with_input_fact(0, f32::fact([rows, cols]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(fail)?;
    let tensor =
        Tensor::from_shape(&[rows, cols], input.as_slice().unwrap_or(&[])).map_err(fail)?;
    let outputs = plan.run(tvec!(tensor.into())).map_err(fail)?;
    outputs
        .iter()
        .map(|t| {
            let view = t.to_plain_array_view::<f32>().map_err(fail)?;
            let shape = view.shape().to_vec();
            let (n, width) = (
                shape.first().copied().unwrap_or(0),
                shape.get(1).copied().unwrap_or(1),
            );
            Array2::from_shape_vec((n, width), view.iter().copied().collect()).map_err(|e| {
                VerifyError::Tract {
                    file,
                    source: e.into(),
                }
            })
        })
        .collect()
}

/// Largest absolute difference over the largest magnitude of `reference`.
///
/// NaN when either side holds a value that is not finite: `f32::max` ignores NaN, so without
/// this check an all-NaN output would score 0 and pass every tolerance.
pub fn relative_error(reference: &Array2<f32>, other: &Array2<f32>) -> f64 {
    if reference.dim() != other.dim() {
        return f64::INFINITY;
    }
    if reference.iter().chain(other.iter()).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = reference
        .iter()
        .zip(other.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    f64::from(worst / scale)
}

/// Relative errors of each exported output against burn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parity {
    /// Encoder `mu`.
    pub mu: f64,
    /// Encoder `posterior_mean`.
    pub posterior_mean: f64,
    /// Fraction of `bits` equal to burn's.
    pub bits_agreement: f64,
    /// Decoder `reconstruction`.
    pub reconstruction: f64,
}

/// Checks `encoder.onnx` and `decoder.onnx` against `model` on raw `events`.
///
/// # Errors
/// [`VerifyError`] if tract cannot run a file or an output differs by more than
/// [`TOLERANCE`]. Code bits may differ only where burn's `mu` is within the tolerance of 0.
pub fn check(
    model: &Vae,
    normalisation: &Normalisation,
    encoder_onnx: &[u8],
    decoder_onnx: &[u8],
    events: &Array2<f32>,
    device: &Device,
) -> Result<Parity, VerifyError> {
    let posterior = model.encode(to_tensor(&normalisation.apply(events), device));
    let mu = to_array(posterior.mu.clone())?;
    let mean = to_array(latent::binary_mean(
        posterior.mu.clone(),
        posterior.log_sigma,
    ))?;
    let bits = to_array(latent::binarise(posterior.mu))?;
    let reconstruction = normalisation.invert(&to_array(model.decode(to_tensor(&bits, device)))?);

    let output = |outputs: &[Array2<f32>], file: &'static str, index: usize| {
        outputs
            .get(index)
            .cloned()
            .ok_or(VerifyError::MissingOutput { file, index })
    };
    let encoded = run("encoder.onnx", encoder_onnx, events)?;
    let onnx_mu = output(&encoded, "encoder.onnx", 0)?;
    let onnx_mean = output(&encoded, "encoder.onnx", 1)?;
    let onnx_bits = output(&encoded, "encoder.onnx", 2)?;
    let decoded = run("decoder.onnx", decoder_onnx, &bits)?;
    let onnx_reconstruction = output(&decoded, "decoder.onnx", 0)?;

    let scale = mu.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut agreeing = 0usize;
    for ((b, o), m) in bits.iter().zip(onnx_bits.iter()).zip(mu.iter()) {
        let ambiguous = f64::from(m.abs()) <= TOLERANCE * f64::from(scale);
        if b == o || ambiguous {
            agreeing += 1;
        }
    }
    let parity = Parity {
        mu: relative_error(&mu, &onnx_mu),
        posterior_mean: relative_error(&mean, &onnx_mean),
        bits_agreement: agreeing as f64 / bits.len().max(1) as f64,
        reconstruction: relative_error(&reconstruction, &onnx_reconstruction),
    };
    let checks = [
        ("encoder.onnx", "mu", parity.mu),
        ("encoder.onnx", "posterior_mean", parity.posterior_mean),
        ("encoder.onnx", "bits", 1.0 - parity.bits_agreement),
        ("decoder.onnx", "reconstruction", parity.reconstruction),
    ];
    for (file, output, relative_error) in checks {
        if relative_error > TOLERANCE || relative_error.is_nan() {
            return Err(VerifyError::Mismatch {
                file,
                output,
                relative_error,
            });
        }
    }
    Ok(parity)
}
