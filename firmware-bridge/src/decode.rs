//! Decoders: codes back to events in detector units, on a burn backend or in tract.
//!
//! Both run the package's float decoder: [`BurnDecoder`] loads `model.bpk` into the trainer's
//! burn model (CPU `flex` by default; `ndarray`, and GPUs through `wgpu`, with those cargo
//! features), [`TractDecoder`] runs `decoder.onnx`. They agree on the golden vectors within
//! 1e-4 relative (tested).

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use latentlink_trainer::backend::Backend;
use latentlink_trainer::data::Normalisation;
use latentlink_trainer::model::Vae;
use latentlink_trainer::package::{self, Manifest, PackageError, files};
use latentlink_trainer::train::{to_array, to_tensor};
use ndarray::Array2;
use tract_onnx::prelude::{
    Arc, Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, Tensor,
    TypedRunnableModel, tvec,
};

/// Why codes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The package could not be loaded.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// tract could not load or run `decoder.onnx`.
    #[error("tract cannot run {path}: {reason}")]
    Tract {
        /// The ONNX file.
        path: String,
        /// tract's message.
        reason: String,
    },
}

/// Which decoder runs the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderKind {
    /// burn on its pure-Rust CPU backend (default).
    Flex,
    /// burn on the burn-ndarray CPU backend.
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// burn on a GPU through wgpu (Vulkan, Metal, DX12; Mesa's software Vulkan in CI).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// tract-onnx running the package's `decoder.onnx` on the CPU.
    Tract,
}

/// Codes `[N, bits]` (0/1) to events `[N, channels · length]` in detector units.
pub trait Decoder {
    /// Decodes a batch.
    ///
    /// # Errors
    /// [`DecodeError`] if the backend fails.
    fn decode(&mut self, codes: &Array2<f32>) -> Result<Array2<f32>, DecodeError>;

    /// A name for logs and summaries.
    fn name(&self) -> &'static str;
}

/// Opens the decoder `kind` of the package in `dir`.
///
/// # Errors
/// [`DecodeError`] if the package is invalid or the decoder cannot load.
pub fn open(dir: &Path, kind: DecoderKind) -> Result<Box<dyn Decoder>, DecodeError> {
    let opened = package::open(dir)?;
    let backend = match kind {
        DecoderKind::Tract => {
            return Ok(Box::new(TractDecoder::open(
                &dir.join(files::DECODER_ONNX),
                opened.manifest.code.bits,
            )?));
        }
        DecoderKind::Flex => Backend::Flex,
        #[cfg(feature = "ndarray")]
        DecoderKind::Ndarray => Backend::Ndarray,
        #[cfg(feature = "wgpu")]
        DecoderKind::Wgpu => Backend::Wgpu,
    };
    Ok(Box::new(BurnDecoder::open(dir, &opened.manifest, backend)?))
}

/// The burn model of a package on one backend.
#[derive(Debug)]
pub struct BurnDecoder {
    model: Vae,
    normalisation: Normalisation,
    device: Device,
    name: &'static str,
}

impl BurnDecoder {
    /// Loads `model.bpk` of the package in `dir` onto `backend`.
    ///
    /// # Errors
    /// [`PackageError`] if the record does not fit the manifest.
    pub fn open(dir: &Path, manifest: &Manifest, backend: Backend) -> Result<Self, PackageError> {
        let device = backend.device();
        Ok(Self {
            model: package::load_model(dir, manifest, &device)?,
            normalisation: package::normalisation(manifest),
            device,
            name: match backend {
                Backend::Flex => "burn-flex",
                #[cfg(feature = "ndarray")]
                Backend::Ndarray => "burn-ndarray",
                #[cfg(feature = "wgpu")]
                Backend::Wgpu => "burn-wgpu",
            },
        })
    }
}

impl Decoder for BurnDecoder {
    fn decode(&mut self, codes: &Array2<f32>) -> Result<Array2<f32>, DecodeError> {
        let decoded = self.model.decode(to_tensor(codes, &self.device));
        Ok(self.normalisation.invert(&to_array(decoded)))
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

type Plan = Arc<TypedRunnableModel>;

/// `decoder.onnx` in tract, with one optimised plan per batch size seen.
#[derive(Debug)]
pub struct TractDecoder {
    model: tract_onnx::prelude::InferenceModel,
    plans: HashMap<usize, Plan>,
    bits: usize,
    path: String,
}

impl TractDecoder {
    /// Loads `decoder.onnx` (denormalisation included, so outputs are in detector units).
    ///
    /// # Errors
    /// [`DecodeError::Tract`] if tract cannot read the file.
    pub fn open(path: &Path, bits: usize) -> Result<Self, DecodeError> {
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| DecodeError::Tract {
                path: path.display().to_string(),
                reason: format!("{e:#}"),
            })?;
        Ok(Self {
            model,
            plans: HashMap::new(),
            bits,
            path: path.display().to_string(),
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> DecodeError {
        DecodeError::Tract {
            path: self.path.clone(),
            reason: format!("{e:#}"),
        }
    }
}

impl Decoder for TractDecoder {
    fn decode(&mut self, codes: &Array2<f32>) -> Result<Array2<f32>, DecodeError> {
        let rows = codes.nrows();
        if !self.plans.contains_key(&rows) {
            let fact = InferenceFact::dt_shape(f32::datum_type(), [rows, self.bits]);
            let plan = self
                .model
                .clone()
                .with_input_fact(0, fact)
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| self.error(e))?;
            self.plans.insert(rows, plan);
        }
        let plan = &self.plans[&rows];
        let values: Vec<f32> = codes.iter().copied().collect();
        let input = Tensor::from_shape(&[rows, self.bits], &values).map_err(|e| self.error(e))?;
        let outputs = plan.run(tvec!(input.into())).map_err(|e| self.error(e))?;
        let view = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| self.error(e))?;
        let width = view.len() / rows.max(1);
        Array2::from_shape_vec((rows, width), view.iter().copied().collect())
            .map_err(|e| self.error(e))
    }

    fn name(&self) -> &'static str {
        "tract"
    }
}

/// Code bytes (`width` per code, bit `i` in byte `i / 8` at bit `i % 8`) to a `[N, bits]`
/// 0/1 matrix.
pub fn codes_to_bits(codes: &[u8], width: usize, bits: usize) -> Array2<f32> {
    let n = codes.len() / width.max(1);
    Array2::from_shape_fn((n, bits), |(row, bit)| {
        f32::from(codes[row * width + bit / 8] >> (bit % 8) & 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bytes_become_lsb_first_bits() {
        let bits = codes_to_bits(&[0b0000_0101, 0b1000_0000, 0xff, 0x00], 2, 16);
        assert_eq!(bits.row(0).iter().filter(|&&b| b == 1.0).count(), 3);
        assert_eq!((bits[[0, 0]], bits[[0, 1]], bits[[0, 2]]), (1.0, 0.0, 1.0));
        assert_eq!(bits[[0, 15]], 1.0);
        assert_eq!(bits.row(1).sum(), 8.0);
        assert_eq!(bits[[1, 8]], 0.0);
    }
}
