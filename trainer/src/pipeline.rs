//! From events to a complete model package: train, quantise, evaluate, export, verify and
//! write (what `latentlink train` runs, as a library call for tests and tools).

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use ndarray::Array2;

use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::{ArchitectureError, Backend, Vae, VaeConfig};
use latentlink_package::manifest::{self, Manifest};
use latentlink_package::open::{data_hash, write_file};
use latentlink_package::{Golden, ModelId, PackageError, files};

use crate::cloud::WeightScaling;
use crate::data::{self, Events, Normalisation};
use crate::error::DataError;
use crate::evaluate::{self, Evaluation};
use crate::export::{int8_onnx, onnx, verify};
use crate::plot::PlotError;
use crate::ptq::{self, PtqError};
use crate::train::{self, TrainConfig, TrainError, TrainingLog};

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The output folder holds a package already, which training would overwrite.
    #[error("{path} holds a model package already; give a new --out folder (or remove this one)")]
    Occupied {
        /// The folder.
        path: PathBuf,
    },
    /// Bad input data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A PointNet encoder with a scaling that differs from point to point: the codes would
    /// depend on the order of the points after all.
    #[error(
        "the pointnet encoder needs --scaling points (one scale for every point), not {scaling:?}"
    )]
    PointScaling {
        /// The scaling asked for.
        scaling: train::Scaling,
    },
    /// The architecture does not fit the events.
    #[error("model configuration: {0}")]
    Config(#[from] ArchitectureError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Quantisation or the runtime blob failed.
    #[error(transparent)]
    Ptq(#[from] PtqError),
    /// Evaluating the model failed.
    #[error(transparent)]
    Evaluate(#[from] evaluate::EvaluateError),
    /// An ONNX file could not be encoded.
    #[error("cannot encode ONNX: {0}")]
    Onnx(#[from] protobuf::Error),
    /// An ONNX file disagrees with the burn model.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// The int8 ONNX encoder could not be written or disagrees with the runtime.
    #[error(transparent)]
    Int8Onnx(#[from] int8_onnx::Int8OnnxError),
    /// The package could not be written.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The burn record could not be written.
    #[error("cannot write {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: burn::store::RecordError,
    },
    /// The report could not be serialised.
    #[error("cannot write the report: {0}")]
    Report(#[from] serde_json::Error),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What to train and where to write it.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// All events (split 80/10/10 with the training seed).
    pub events: Events,
    /// Where they came from, for the manifest.
    pub data_description: String,
    /// The architecture.
    pub config: VaeConfig,
    /// The training settings.
    pub train_config: TrainConfig,
    /// Compute backend.
    pub backend: Backend,
    /// Package folder.
    pub out: PathBuf,
    /// Model name in the manifest.
    pub name: String,
    /// The command that made it, for the manifest.
    pub command: String,
    /// Show a progress bar.
    pub progress: bool,
}

/// What training produced, besides the files.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The manifest written.
    pub manifest: Manifest,
    /// The evaluation on the validation split.
    pub evaluation: Evaluation,
    /// The training log.
    pub log: TrainingLog,
}

/// Trains a model on `request.events` and writes its complete package to `request.out`:
/// int8 blob, ONNX files verified in tract, burn record, golden vectors, manifest, report
/// and plots.
///
/// # Errors
/// [`PipelineError`] naming the step and file that failed.
pub fn train_package(request: &TrainRequest) -> Result<TrainOutcome, PipelineError> {
    let events = &request.events;
    let train_config = &request.train_config;
    request.config.validate()?;
    let point_encoder =
        request.config.encoder_kind() == latentlink_model::vae::EncoderKind::PointNet;
    if point_encoder && train_config.scaling != train::Scaling::Points {
        return Err(PipelineError::PointScaling {
            scaling: train_config.scaling,
        });
    }
    // Checked before minutes of training, not when the files are written.
    if request.out.join(files::MANIFEST).exists() {
        return Err(PipelineError::Occupied {
            path: request.out.clone(),
        });
    }
    fs::create_dir_all(&request.out).map_err(io(&request.out))?;
    let split = data::split(events, 0.1, 0.1, train_config.seed)?;
    let normalisation = train_config.scaling.fit(&split.train.data, events.shape);
    // The energy-weighted transport reads the weights in detector units, from a decoder
    // that keeps them at or above zero.
    let point_weight = (train_config.likelihood == train::Likelihood::SinkhornWeighted)
        .then(|| WeightScaling::of(&normalisation, events.shape.length))
        .flatten();
    let train_config = &TrainConfig {
        point_weight,
        ..train_config.clone()
    };
    let config = request
        .config
        .clone()
        .with_point_weight_floor(point_weight.map(WeightScaling::floor));
    let model = {
        let device = request.backend.training_device();
        device.seed(train_config.seed);
        config.init(&device)
    };
    let device = request.backend.training_device();
    let normalised_train = normalisation.apply(&split.train.data);
    let normalised_validation = normalisation.apply(&split.validation.data);
    let (model, log) = train::train(
        model,
        train_config,
        &normalised_train,
        &normalised_validation,
        &device,
        Some(request.out.join("checkpoint.bpk")),
        request.progress,
    )?;
    let inference = request.backend.device();
    let out = &request.out;
    let blob = ptq::quantize(
        &model,
        &normalisation,
        events.shape,
        &split.train.data,
        &inference,
    )?;
    // The decoder learns the int8 codes it will be given; the encoder, so the blob, stays.
    let (train_codes, validation_codes) = (
        ptq::runtime_codes(&blob, &split.train.data)?,
        ptq::runtime_codes(&blob, &split.validation.data)?,
    );
    let (model, fine_tune) = train::fine_tune_decoder(
        model,
        &config,
        train_config,
        train::CodedEvents {
            codes: &train_codes,
            events: &normalised_train,
        },
        train::CodedEvents {
            codes: &validation_codes,
            events: &normalised_validation,
        },
        &device,
    )?;
    let evaluation = evaluate::evaluate(
        &model,
        &blob,
        &normalisation,
        &split,
        train_config,
        &inference,
    )?;
    let report = &evaluation.report;

    // Export the float model and check every file in tract before it is written.
    let encoder_onnx = onnx::to_bytes(&onnx::encoder(&model, &normalisation, events.shape))?;
    let decoder_onnx = onnx::to_bytes(&onnx::decoder(&model, &normalisation))?;
    let golden_count = split.validation.len().min(GOLDEN_EVENTS);
    let golden_inputs = split
        .validation
        .data
        .slice(ndarray::s![..golden_count, ..])
        .to_owned();
    let parity = verify::check(
        &model,
        &normalisation,
        &encoder_onnx,
        &decoder_onnx,
        &golden_inputs,
        &inference,
    )?;

    let record_path = out.join(files::MODEL_RECORD);
    model
        .clone()
        .save_file(&record_path)
        .map_err(|source| PipelineError::Record {
            path: record_path.clone(),
            source,
        })?;
    let record = fs::read(&record_path).map_err(io(&record_path))?;
    let id = ModelId::of(&blob, &record);
    write_file(out, files::ENCODER_BLOB, &blob)?;
    write_file(out, files::ENCODER_ONNX, &encoder_onnx)?;
    write_file(out, files::DECODER_ONNX, &decoder_onnx)?;
    let golden = golden(&model, &normalisation, &blob, golden_inputs, &inference)?;
    // The int8 encoder for other inference stacks, checked against the runtime's own codes.
    if let Some((encoder_int8, _)) =
        int8_onnx::export_if_supported(&blob, &golden.inputs, &golden.int8_codes)?
    {
        write_file(out, files::ENCODER_INT8_ONNX, &encoder_int8)?;
    }
    golden.write(out)?;
    let footprint = footprint(&blob)?;
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        name: request.name.clone(),
        model_id: id,
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        command: request.command.clone(),
        input: manifest::InputSection {
            channels: events.shape.channels,
            length: events.shape.length,
            mean: normalisation.mean.clone(),
            std: normalisation.std.clone(),
        },
        code: manifest::CodeSection {
            bits: report.bits,
            bytes: report.bits.div_ceil(8),
            onnx_opset: onnx::OPSET,
        },
        architecture: manifest::to_table(&config, "architecture")?,
        training: manifest::TrainingSection {
            data: request.data_description.clone(),
            data_sha256: data_hash(&split.train.data),
            events: [split.train.len(), split.validation.len(), split.test.len()],
            config: manifest::to_table(train_config, "training.config")?,
            best_epoch: log.best_epoch,
        },
        runtime: footprint,
        metrics: manifest::MetricsSection {
            nmse_runtime_codes_detector_units: Some(report.nmse_runtime_codes_detector_units),
            nmse_pca_same_bits_detector_units: Some(report.pca_detector_units.nmse),
            nmse_runtime_codes: report.nmse_runtime_codes,
            nmse_float_latents: report.nmse_float_latents,
            nmse_pca_same_bits: report.pca.nmse,
            chamfer_runtime_codes: report
                .point_cloud
                .as_ref()
                .map(|cloud| cloud.runtime_codes.chamfer),
            bit_agreement: report.agreement.bit_agreement,
            code_entropy_bits: report.bit_usage.total_entropy,
            compression_ratio: report.compression_ratio,
        },
    };
    manifest.write(out)?;
    // The checkpoint guarded against a crash mid-training; model.bpk now holds the same model.
    let checkpoint = out.join("checkpoint.bpk");
    if checkpoint.exists() {
        fs::remove_file(&checkpoint).map_err(io(&checkpoint))?;
    }
    let json = serde_json::json!({
        "training": log,
        "decoder_fine_tune": fine_tune,
        "report": report,
        "onnx_parity": parity,
    });
    write_file(
        out,
        files::REPORT,
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    write_file(
        out,
        files::SUMMARY,
        evaluate::markdown(&manifest.name, report, &log).as_bytes(),
    )?;
    evaluate::write_plots(out, &manifest.name, &evaluation, events.shape, &log)?;
    Ok(TrainOutcome {
        manifest,
        evaluation,
        log,
    })
}

/// Golden events a new package gets (fewer if the validation split is smaller): enough to
/// exercise every bit of the code and the decoder's range, small enough to commit.
pub const GOLDEN_EVENTS: usize = 256;

/// The golden vectors of `inputs`: float codes from the burn model, int8 codes from the
/// runtime blob, and the burn decoder's reconstructions of the int8 codes.
///
/// # Errors
/// [`PtqError`] if the blob does not encode the inputs.
pub fn golden(
    model: &Vae,
    normalisation: &Normalisation,
    blob: &[u8],
    inputs: Array2<f32>,
    device: &Device,
) -> Result<Golden, PtqError> {
    let int8_codes = ptq::runtime_codes(blob, &inputs)?;
    let decoded = model.decode(to_tensor(&int8_codes, device));
    Ok(Golden {
        float_codes: ptq::float_codes(model, normalisation, &inputs, device)?,
        reconstructions: normalisation.invert(&to_array(decoded)?),
        int8_codes,
        inputs,
    })
}

/// Footprint of a blob, for the manifest.
///
/// # Errors
/// [`PtqError::Blob`] if the blob does not validate.
pub fn footprint(blob: &[u8]) -> Result<manifest::RuntimeSection, PtqError> {
    let model = latentlink_runtime::Model::from_bytes(blob)?;
    Ok(manifest::RuntimeSection {
        scratch_bytes: model.scratch_bytes(),
        blob_bytes: model.blob_len(),
        macs: model.macs(),
    })
}
