//! The model package (DESIGN.md, contract 2): one folder that holds everything the runtime,
//! the bridge and a person need, with a model id that ties the code to its decoder.
//!
//! ```text
//! models/<name>/
//!   manifest.toml      name, versions, model id, input shape and normalisation, code width,
//!                      architecture, training data and its hash, runtime footprint, metrics,
//!                      and the command that made it
//!   encoder.blob       int8 runtime blob (runtime::blob format)
//!   encoder.onnx       float encoder, opset 13: events → mu, posterior_mean, bits
//!   decoder.onnx       float decoder, opset 13: codes → reconstruction (detector units)
//!   model.bpk          burn record of the float model (its decoder decodes on the host)
//!   report.json        the full evaluation report and training log
//!   report.md          its summary, for people
//!   golden/            inputs.npy, float_codes.npy, int8_codes.npy, reconstructions.npy
//! ```
//!
//! The **model id** is the first 8 bytes (little-endian `u64`) of SHA-256 over the runtime
//! blob followed by `model.bpk`. It travels in every wire frame, so a code is never decoded by
//! a decoder it was not made for; change either file and the id changes.

use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{EventShape, Normalisation, npy};
use crate::error::DataError;
use crate::model::VaeConfig;
use crate::train::TrainConfig;

/// Version of the package layout.
pub const FORMAT_VERSION: u32 = 1;

/// File names inside a package.
pub mod files {
    /// Manifest.
    pub const MANIFEST: &str = "manifest.toml";
    /// int8 runtime blob.
    pub const ENCODER_BLOB: &str = "encoder.blob";
    /// Float encoder.
    pub const ENCODER_ONNX: &str = "encoder.onnx";
    /// Float decoder.
    pub const DECODER_ONNX: &str = "decoder.onnx";
    /// burn record of the float model.
    pub const MODEL_RECORD: &str = "model.bpk";
    /// Evaluation report.
    pub const REPORT: &str = "report.json";
    /// Human-readable summary of the report.
    pub const SUMMARY: &str = "report.md";
    /// Example reconstructions (PNG).
    pub const RECONSTRUCTIONS_PNG: &str = "reconstructions.png";
    /// Distribution of per-event reconstruction error (PNG).
    pub const ERRORS_PNG: &str = "errors.png";
    /// Training curve (PNG).
    pub const TRAINING_PNG: &str = "training.png";
    /// Golden vectors folder.
    pub const GOLDEN: &str = "golden";
}

/// `manifest.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Package layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model name.
    pub name: String,
    /// Model id as 16 hex digits (see the module docs).
    pub model_id: String,
    /// Trainer version that wrote the package.
    pub trainer_version: String,
    /// The command that produced the package.
    pub command: String,
    /// What the model reads.
    pub input: InputSection,
    /// What the model sends.
    pub code: CodeSection,
    /// The float model's architecture.
    pub architecture: VaeConfig,
    /// How it was trained.
    pub training: TrainingSection,
    /// Footprint of the int8 encoder.
    pub runtime: RuntimeSection,
    /// Headline metrics (the full report is `report.json`).
    pub metrics: MetricsSection,
}

/// Input shape and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSection {
    /// Channels per event.
    pub channels: usize,
    /// Samples per channel.
    pub length: usize,
    /// Per-feature mean subtracted before the encoder (detector units).
    pub mean: Vec<f32>,
    /// Per-feature scale divided by before the encoder.
    pub std: Vec<f32>,
}

/// Code layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeSection {
    /// Bits per code.
    pub bits: usize,
    /// Bytes per code on the wire.
    pub bytes: usize,
    /// ONNX opset of the float files.
    pub onnx_opset: i64,
}

/// Training provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSection {
    /// Where the data came from (a file, or a simulator and seed).
    pub data: String,
    /// SHA-256 of the training events as little-endian f32, hex.
    pub data_sha256: String,
    /// Events used for training / validation / test.
    pub events: [usize; 3],
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Epoch whose model was kept.
    pub best_epoch: usize,
}

/// int8 encoder footprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeSection {
    /// Worst-case scratch RAM (bytes).
    pub scratch_bytes: usize,
    /// Whole blob (flash, bytes).
    pub blob_bytes: usize,
    /// Multiply-accumulates per event.
    pub macs: u64,
}

/// Headline metrics on the validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSection {
    /// nMSE from int8 runtime codes.
    pub nmse_runtime_codes: f64,
    /// nMSE from float latents.
    pub nmse_float_latents: f64,
    /// nMSE of PCA at the same bits.
    pub nmse_pca_same_bits: f64,
    /// int8 vs float bit agreement.
    pub bit_agreement: f64,
    /// Sum of per-bit entropies (bits).
    pub code_entropy_bits: f64,
    /// Raw event bytes (f32) over code bytes.
    pub compression_ratio: f64,
}

/// Why a package could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest could not be parsed or written.
    #[error("{path}: invalid manifest ({reason})")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A golden array could not be written.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The burn record does not fit the manifest's architecture.
    #[error("{path}: cannot load the model record ({reason})")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model id in the manifest does not match the files.
    #[error(
        "{path}: model id {declared} does not match its files ({computed}); the package was modified or is incomplete"
    )]
    ModelId {
        /// Package folder.
        path: PathBuf,
        /// Id in the manifest.
        declared: String,
        /// Id of the files.
        computed: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The model id of a blob and a model record (see the module docs).
pub fn model_id(blob: &[u8], record: &[u8]) -> u64 {
    let digest = Sha256::new()
        .chain_update(blob)
        .chain_update(record)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// SHA-256 of events as little-endian f32, hex.
pub fn data_hash(events: &Array2<f32>) -> String {
    let mut hasher = Sha256::new();
    for v in events {
        hasher.update(v.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The golden vectors every side must reproduce.
#[derive(Debug, Clone)]
pub struct Golden {
    /// Raw events, `[n, D]`.
    pub inputs: Array2<f32>,
    /// Float model code bits (0/1), `[n, bits]`.
    pub float_codes: Array2<f32>,
    /// int8 runtime code bits (0/1), `[n, bits]`.
    pub int8_codes: Array2<f32>,
    /// Reconstructions of the int8 codes by the float decoder, detector units, `[n, D]`.
    pub reconstructions: Array2<f32>,
}

/// Writes the golden vectors under `dir/golden`.
///
/// # Errors
/// [`PackageError`] naming the file that could not be written.
pub fn write_golden(dir: &Path, golden: &Golden) -> Result<(), PackageError> {
    let folder = dir.join(files::GOLDEN);
    fs::create_dir_all(&folder).map_err(io(&folder))?;
    for (name, array) in [
        ("inputs.npy", &golden.inputs),
        ("float_codes.npy", &golden.float_codes),
        ("int8_codes.npy", &golden.int8_codes),
        ("reconstructions.npy", &golden.reconstructions),
    ] {
        npy::write_f32(&folder.join(name), array)?;
    }
    Ok(())
}

/// Reads the golden vectors of a package.
///
/// # Errors
/// [`PackageError`] naming the file that is missing or invalid.
pub fn read_golden(dir: &Path) -> Result<Golden, PackageError> {
    let folder = dir.join(files::GOLDEN);
    let read = |name: &str| -> Result<Array2<f32>, PackageError> {
        let path = folder.join(name);
        let array = npy::read_f32(&path)?;
        let shape = array.shape().to_vec();
        array.into_dimensionality::<ndarray::Ix2>().map_err(|_| {
            PackageError::Data(DataError::Shape {
                source_name: path.display().to_string(),
                shape,
                expected: "[n, width]",
            })
        })
    };
    Ok(Golden {
        inputs: read("inputs.npy")?,
        float_codes: read("float_codes.npy")?,
        int8_codes: read("int8_codes.npy")?,
        reconstructions: read("reconstructions.npy")?,
    })
}

/// Writes a file of the package.
///
/// # Errors
/// [`PackageError::Io`] naming the file.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PackageError> {
    let path = dir.join(name);
    fs::write(&path, bytes).map_err(io(&path))
}

/// Writes `manifest.toml`.
///
/// # Errors
/// [`PackageError`] naming the file.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), PackageError> {
    let path = dir.join(files::MANIFEST);
    let text = toml::to_string(manifest).map_err(|e| PackageError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    fs::write(&path, text).map_err(io(&path))
}

/// A package read from disk: its manifest, and the two files its model id covers.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The manifest.
    pub manifest: Manifest,
    /// `encoder.blob`.
    pub blob: Vec<u8>,
    /// `model.bpk`.
    pub record: Vec<u8>,
}

/// Reads a package's manifest, blob and record, and checks the model id against the files.
///
/// # Errors
/// [`PackageError`] if a file is missing or invalid, or the id does not match.
pub fn open(dir: &Path) -> Result<Opened, PackageError> {
    let path = dir.join(files::MANIFEST);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| PackageError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let blob_path = dir.join(files::ENCODER_BLOB);
    let record_path = dir.join(files::MODEL_RECORD);
    let blob = fs::read(&blob_path).map_err(io(&blob_path))?;
    let record = fs::read(&record_path).map_err(io(&record_path))?;
    let computed = format!("{:016x}", model_id(&blob, &record));
    if computed != manifest.model_id {
        return Err(PackageError::ModelId {
            path: dir.to_owned(),
            declared: manifest.model_id,
            computed,
        });
    }
    Ok(Opened {
        manifest,
        blob,
        record,
    })
}

/// Reads a package's manifest and checks its model id against its files.
///
/// # Errors
/// As [`open`].
pub fn read_manifest(dir: &Path) -> Result<Manifest, PackageError> {
    open(dir).map(|opened| opened.manifest)
}

/// Loads the float model of a package on `device`.
///
/// # Errors
/// [`PackageError::Record`] if `model.bpk` does not fit the manifest's architecture.
pub fn load_model(
    dir: &Path,
    manifest: &Manifest,
    device: &burn::tensor::Device,
) -> Result<crate::model::Vae, PackageError> {
    use burn::module::Module;
    let path = dir.join(files::MODEL_RECORD);
    manifest
        .architecture
        .init(device)
        .try_load_file(&path)
        .map_err(|e| PackageError::Record {
            path: path.clone(),
            reason: e.to_string(),
        })
}

/// The event layout of a manifest.
pub fn event_shape(manifest: &Manifest) -> EventShape {
    EventShape {
        channels: manifest.input.channels,
        length: manifest.input.length,
    }
}

/// The normalisation of a manifest.
pub fn normalisation(manifest: &Manifest) -> Normalisation {
    Normalisation {
        mean: manifest.input.mean.clone(),
        std: manifest.input.std.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_depends_on_both_files() {
        let id = model_id(b"blob", b"record");
        assert_eq!(id, model_id(b"blob", b"record"));
        assert_ne!(id, model_id(b"blob!", b"record"));
        assert_ne!(id, model_id(b"blob", b"record!"));
    }

    #[test]
    fn data_hash_is_stable_and_sensitive() {
        let a = Array2::<f32>::zeros((2, 3));
        let mut b = a.clone();
        assert_eq!(data_hash(&a), data_hash(&b));
        b[[1, 2]] = 1e-7;
        assert_ne!(data_hash(&a), data_hash(&b));
        assert_eq!(data_hash(&a).len(), 64);
    }
}
