//! `manifest.toml`: what a package is, read and written with a real TOML parser.
//!
//! The sections a reader of any side needs ([`InputSection`], [`CodeSection`],
//! [`RuntimeSection`], [`MetricsSection`]) are typed here. The two sections only the
//! training stack understands, `[architecture]` (the burn model's configuration) and
//! `[training.config]` (the hyper-parameters), are kept as TOML tables: the model crate and
//! the trainer parse them into their own types, so this crate needs no ML dependency and a
//! new architecture needs no change here.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{PackageError, io_error};
use crate::files;
use crate::model_id::ModelId;
use crate::shape::{EventShape, Normalisation};

/// Version of the package layout.
pub const FORMAT_VERSION: u32 = 1;

/// `manifest.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Package layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model name.
    pub name: String,
    /// Model id of the blob and record (see [`ModelId`]).
    pub model_id: ModelId,
    /// Trainer version that wrote the package.
    pub trainer_version: String,
    /// The command that produced the package.
    pub command: String,
    /// What the model reads.
    pub input: InputSection,
    /// What the model sends.
    pub code: CodeSection,
    /// The float model's architecture, as the model crate's configuration wrote it.
    pub architecture: toml::Table,
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

impl InputSection {
    /// The event layout.
    pub const fn shape(&self) -> EventShape {
        EventShape {
            channels: self.channels,
            length: self.length,
        }
    }

    /// The normalisation.
    pub fn normalisation(&self) -> Normalisation {
        Normalisation {
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }
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
    /// Hyper-parameters, as the trainer wrote them.
    pub config: toml::Table,
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

/// Headline metrics on the validation split. nMSE without a unit is in the normalised units
/// the model is trained in; packages written before detector units were reported lack them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSection {
    /// nMSE from int8 runtime codes, detector units: the headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nmse_runtime_codes_detector_units: Option<f64>,
    /// nMSE of PCA at the same bits (greedy allocation), detector units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nmse_pca_same_bits_detector_units: Option<f64>,
    /// nMSE from int8 runtime codes.
    pub nmse_runtime_codes: f64,
    /// nMSE from soft float latents (absent for a decoder trained on hard bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nmse_float_latents: Option<f64>,
    /// nMSE of PCA at the same bits.
    pub nmse_pca_same_bits: f64,
    /// For point clouds, the mean Chamfer distance from int8 runtime codes, in the model's
    /// scaled units (the nMSE compares point slots in order, which means little for a cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chamfer_runtime_codes: Option<f64>,
    /// int8 vs float bit agreement.
    pub bit_agreement: f64,
    /// Sum of per-bit entropies (bits).
    pub code_entropy_bits: f64,
    /// Raw event bytes (f32) over code bytes.
    pub compression_ratio: f64,
}

impl Manifest {
    /// Reads `manifest.toml` of the package in `dir` (without checking the model id against
    /// the files: [`crate::Package::open`] does that).
    ///
    /// # Errors
    /// [`PackageError::Io`] or [`PackageError::ManifestSyntax`] naming the file.
    pub fn read(dir: &Path) -> Result<Self, PackageError> {
        let path = dir.join(files::MANIFEST);
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        Self::from_toml(&text, &path)
    }

    /// Parses and checks the text of a manifest; `path` names it in errors.
    ///
    /// # Errors
    /// [`PackageError::ManifestSyntax`] or [`PackageError::Inconsistent`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, PackageError> {
        let manifest: Self =
            toml::from_str(text).map_err(|source| PackageError::ManifestSyntax {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        manifest.inconsistency().map_or(Ok(manifest), |what| {
            Err(PackageError::Inconsistent {
                path: path.to_owned(),
                what,
            })
        })
    }

    /// The manifest's text; `path` names it in errors.
    ///
    /// # Errors
    /// [`PackageError::ManifestWrite`] if a value has no TOML form.
    pub fn to_toml(&self, path: &Path) -> Result<String, PackageError> {
        toml::to_string(self).map_err(|source| PackageError::ManifestWrite {
            path: path.to_owned(),
            source,
        })
    }

    /// What in the manifest contradicts the rest, if anything: every reader indexes codes and
    /// events by these numbers, so they are checked once here rather than trusted.
    fn inconsistency(&self) -> Option<String> {
        let (bits, bytes) = (self.code.bits, self.code.bytes);
        if bits == 0 || bytes != bits.div_ceil(8) {
            return Some(format!("{bits} code bits do not make {bytes}-byte codes"));
        }
        let features = self.input.channels.checked_mul(self.input.length);
        for (name, values) in [("mean", &self.input.mean), ("std", &self.input.std)] {
            if features != Some(values.len()) {
                return Some(format!(
                    "input.{name} has {} values for events of {} x {}",
                    values.len(),
                    self.input.channels,
                    self.input.length
                ));
            }
        }
        let finite = self.input.mean.iter().all(|v| v.is_finite());
        let positive = self.input.std.iter().all(|v| v.is_finite() && *v > 0.0);
        (!finite || !positive)
            .then(|| "input.mean must be finite and input.std finite and above 0".to_owned())
    }

    /// Writes `manifest.toml` into `dir`.
    ///
    /// # Errors
    /// [`PackageError`] naming the file.
    pub fn write(&self, dir: &Path) -> Result<(), PackageError> {
        let path = dir.join(files::MANIFEST);
        fs::write(&path, self.to_toml(&path)?).map_err(io_error(&path))
    }

    /// Parses the `[architecture]` table into the configuration type of the model crate.
    ///
    /// # Errors
    /// [`PackageError::Section`] naming the section and what does not fit.
    pub fn architecture<T: serde::de::DeserializeOwned>(&self) -> Result<T, PackageError> {
        parse_section(&self.architecture, "architecture")
    }

    /// Parses the `[training.config]` table into the trainer's configuration type.
    ///
    /// # Errors
    /// [`PackageError::Section`] naming the section and what does not fit.
    pub fn training_config<T: serde::de::DeserializeOwned>(&self) -> Result<T, PackageError> {
        parse_section(&self.training.config, "training.config")
    }
}

fn parse_section<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    section: &'static str,
) -> Result<T, PackageError> {
    table
        .clone()
        .try_into()
        .map_err(|source| PackageError::Section {
            section,
            source: Box::new(source),
        })
}

/// A configuration as a TOML table, for [`Manifest::architecture`] and
/// [`TrainingSection::config`].
///
/// # Errors
/// [`PackageError::SectionWrite`] if the value is not a TOML table.
pub fn to_table<T: Serialize>(
    value: &T,
    section: &'static str,
) -> Result<toml::Table, PackageError> {
    toml::Table::try_from(value).map_err(|source| PackageError::SectionWrite { section, source })
}
