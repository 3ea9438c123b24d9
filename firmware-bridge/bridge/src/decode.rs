//! Decoders: codes back to events in detector units, on a burn backend or in tract.
//!
//! Both run the package's float decoder: [`BurnDecoder`] loads `model.bpk` into the model
//! crate's burn model (CPU `flex` by default; `ndarray`, and GPUs through `wgpu`, with those
//! cargo features), [`TractDecoder`] runs `decoder.onnx`. They agree on the golden vectors
//! within 1e-4 relative (tested). Both take an opened [`Package`]: nothing here reads the
//! package folder again.

use burn::tensor::Device;
use latentlink_model::tensor::{TensorError, to_array, to_tensor};
use latentlink_model::{Backend, ModelError, Vae, load_vae};
use latentlink_package::{Normalisation, Package, files};
use ndarray::Array2;
use tract_onnx::prelude::{
    Arc, Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, Tensor,
    TypedRunnableModel, tvec,
};

/// An error of a library that reports dynamic errors (tract), with its chain kept.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why codes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The package's float model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The burn backend returned a tensor that cannot be read back.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// tract could not load or run `decoder.onnx`.
    #[error("tract cannot run {path}: {source}")]
    Tract {
        /// The ONNX file.
        path: String,
        /// tract's error (tract reports `anyhow` errors, kept here as the error chain).
        #[source]
        source: BoxedError,
    },
    /// Codes of another width than the decoder's.
    #[error("codes of {found} bits given to a decoder of {expected} bits")]
    Width {
        /// Bits the decoder takes.
        expected: usize,
        /// Bits given.
        found: usize,
    },
}

/// Which decoder runs the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl std::str::FromStr for DecoderKind {
    type Err = latentlink_model::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [
            ("flex", Self::Flex),
            #[cfg(feature = "ndarray")]
            ("ndarray", Self::Ndarray),
            #[cfg(feature = "wgpu")]
            ("wgpu", Self::Wgpu),
            ("tract", Self::Tract),
        ];
        latentlink_model::vae::UnknownName::pick("decoder", name, &choices)
    }
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

/// Opens the decoder `kind` of an opened package.
///
/// # Errors
/// [`DecodeError`] if the decoder cannot load.
pub fn open(package: &Package, kind: DecoderKind) -> Result<Box<dyn Decoder>, DecodeError> {
    let backend = match kind {
        DecoderKind::Tract => {
            return Ok(Box::new(TractDecoder::open(package)?));
        }
        DecoderKind::Flex => Backend::Flex,
        #[cfg(feature = "ndarray")]
        DecoderKind::Ndarray => Backend::Ndarray,
        #[cfg(feature = "wgpu")]
        DecoderKind::Wgpu => Backend::Wgpu,
    };
    Ok(Box::new(BurnDecoder::open(package, backend)?))
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
    /// Loads the package's `model.bpk` onto `backend`.
    ///
    /// # Errors
    /// [`ModelError`] if the record does not fit the manifest.
    pub fn open(package: &Package, backend: Backend) -> Result<Self, ModelError> {
        let device = backend.device();
        Ok(Self {
            model: load_vae(package, &device)?,
            normalisation: package.manifest.input.normalisation(),
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
        Ok(self.normalisation.invert(&to_array(decoded)?))
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

type Plan = Arc<TypedRunnableModel>;

/// Optimised plans a [`TractDecoder`] keeps: a listener's batches come in every size up to
/// its batch size, and each plan holds a copy of the decoder's weights.
const MAX_PLANS: usize = 8;

/// `decoder.onnx` in tract, with an optimised plan for each of the last [`MAX_PLANS`] batch
/// sizes seen.
#[derive(Debug)]
pub struct TractDecoder {
    model: tract_onnx::prelude::InferenceModel,
    /// `(rows, plan)`, the most recently used last.
    plans: Vec<(usize, Plan)>,
    bits: usize,
    path: String,
}

impl TractDecoder {
    /// Loads the package's `decoder.onnx` (denormalisation included, so outputs are in
    /// detector units).
    ///
    /// # Errors
    /// [`DecodeError::Tract`] if tract cannot read the file.
    pub fn open(package: &Package) -> Result<Self, DecodeError> {
        let path = package.path(files::DECODER_ONNX);
        let path_text = path.display().to_string();
        let model =
            tract_onnx::onnx()
                .model_for_path(&path)
                .map_err(|source| DecodeError::Tract {
                    path: path_text.clone(),
                    source: source.into(),
                })?;
        Ok(Self {
            model,
            plans: Vec::new(),
            bits: package.manifest.code.bits,
            path: path_text,
        })
    }

    fn error(&self, source: impl Into<BoxedError>) -> DecodeError {
        DecodeError::Tract {
            path: self.path.clone(),
            source: source.into(),
        }
    }
}

impl Decoder for TractDecoder {
    fn decode(&mut self, codes: &Array2<f32>) -> Result<Array2<f32>, DecodeError> {
        let (rows, width) = codes.dim();
        if width != self.bits {
            return Err(DecodeError::Width {
                expected: self.bits,
                found: width,
            });
        }
        let plan = match self.plans.iter().position(|(r, _)| *r == rows) {
            Some(index) => {
                let used = self.plans.remove(index);
                let plan = used.1.clone();
                self.plans.push(used);
                plan
            }
            None => {
                let fact = InferenceFact::dt_shape(f32::datum_type(), [rows, self.bits]);
                let plan = self
                    .model
                    .clone()
                    .with_input_fact(0, fact)
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .map_err(|e| self.error(e))?;
                if self.plans.len() == MAX_PLANS {
                    self.plans.remove(0);
                }
                self.plans.push((rows, plan.clone()));
                plan
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tract_keeps_a_bounded_number_of_plans_and_any_batch_size_decodes_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/opis-b128");
        let package = Package::open(&dir).unwrap();
        let codes = package.golden().unwrap().int8_codes;
        let mut decoder = TractDecoder::open(&package).unwrap();
        let whole = decoder.decode(&codes).unwrap();
        for rows in 1..=codes.nrows() {
            let part = decoder
                .decode(&codes.slice(ndarray::s![..rows, ..]).to_owned())
                .unwrap();
            let expected = whole.slice(ndarray::s![..rows, ..]);
            let worst = part
                .iter()
                .zip(expected.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-3, "{rows} rows: {worst}");
            assert!(decoder.plans.len() <= MAX_PLANS);
        }
        assert_eq!(decoder.plans.len(), MAX_PLANS);
        // The most recent batch size is kept, and the oldest went first.
        assert_eq!(
            decoder.plans.last().map(|(rows, _)| *rows),
            Some(codes.nrows())
        );
        assert!(
            decoder
                .plans
                .iter()
                .all(|(rows, _)| *rows > codes.nrows() - MAX_PLANS)
        );
    }
}
