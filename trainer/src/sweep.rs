//! Rate–distortion sweep: what each bit per event buys, for the binary-code VAE against
//! what a physicist would otherwise use, on the same events and the same validation split.
//!
//! For each code length it trains
//! - the **Beta-binary VAE** with that many bits, and measures the int8 runtime's codes (what
//!   actually goes on the wire);
//! - a **Gaussian VAE** with the same number of latents, stored as 32-bit floats, so it spends
//!   32× the bits; its reconstruction is from the posterior mean;
//!
//! and reports **PCA** at the binary code's bit budget (`pca::baseline`: bits allocated
//! greedily over the components, fitted in detector units), **ZFP** in fixed-rate mode at a
//! few rates from its smallest size up ([`crate::zfp`]), and the **lossless** size of the raw
//! f32 events under zstd (level 19). The table names, for each code length, the best
//! classical codec that fits in the code's bits. Errors are nMSE on the validation events in
//! detector units, the headline of the package report.
//!
//! SZ3 is not among them: its Rust crate builds the C++ library with CMake, which downloads
//! zstd's sources during the build, and builds here have no network.

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Array2;
use serde::Serialize;

use crate::data::{self, Events};
use crate::evaluate;
use crate::plot::{self, PlotError};
use crate::ptq;
use crate::train::{self, TrainConfig, nmse};
use crate::zfp;
use latentlink_model::Backend;
use latentlink_model::latent::HeadKind;
use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::vae::VaeConfig;

/// zstd level for the lossless reference (19: the strongest of the normal levels).
pub const ZSTD_LEVEL: i32 = 19;

/// ZFP rates tried, bits per sample (ZFP raises the lowest to its 9-bit block minimum).
pub const ZFP_RATES: [f64; 4] = [0.1, 1.0, 2.0, 4.0];

/// Why a sweep (of code lengths here, or of β in [`crate::resolution`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Splitting the events failed.
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] train::TrainError),
    /// Quantisation or evaluation failed.
    #[error(transparent)]
    Ptq(#[from] ptq::PtqError),
    /// Evaluating a model failed.
    #[error(transparent)]
    Evaluate(#[from] evaluate::EvaluateError),
    /// The config is invalid.
    #[error("invalid model: {0}")]
    Config(#[from] latentlink_model::ArchitectureError),
    /// A tensor could not be read back from the backend.
    #[error(transparent)]
    Tensor(#[from] latentlink_model::tensor::TensorError),
    /// zstd failed.
    #[error("zstd: {0}")]
    Zstd(#[from] std::io::Error),
    /// ZFP failed.
    #[error(transparent)]
    Zfp(#[from] zfp::ZfpError),
    /// A β that is not a positive finite number.
    #[error("every β must be a finite number above 0, got {0}")]
    Beta(f64),
}

/// The events of a sweep split (10 % validation, 10 % test, by `seed`) and scaled as every
/// model of the sweep sees them.
pub(crate) struct Prepared {
    /// The split, in detector units.
    pub split: data::Split,
    /// The scaling fitted on its training events.
    pub normalisation: data::Normalisation,
    /// Training events, scaled.
    pub train: Array2<f32>,
    /// Validation events, scaled.
    pub validation: Array2<f32>,
}

impl Prepared {
    /// Splits `events` by `config.seed` and fits `config.scaling` on the training events.
    ///
    /// # Errors
    /// [`crate::error::DataError`] if the events cannot be split.
    pub(crate) fn new(
        events: &Events,
        config: &TrainConfig,
    ) -> Result<Self, crate::error::DataError> {
        let split = data::split(events, 0.1, 0.1, config.seed)?;
        let normalisation = config.scaling.fit(&split.train.data, events.shape);
        Ok(Self {
            train: normalisation.apply(&split.train.data),
            validation: normalisation.apply(&split.validation.data),
            split,
            normalisation,
        })
    }
}

/// One point of the curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// What made it.
    pub method: Method,
    /// Latents of the model (components for PCA).
    pub latents: usize,
    /// Bits per event on the wire.
    pub bits: usize,
    /// nMSE on the validation events.
    pub nmse: f64,
}

/// The compressors compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Beta-binary VAE, int8 runtime codes.
    BinaryVae,
    /// Gaussian VAE, f32 latents.
    GaussianVae,
    /// PCA with quantised coefficients.
    Pca,
    /// ZFP in fixed-rate mode.
    Zfp,
    /// zstd, lossless (nMSE 0), at its mean size per event over the validation set.
    Zstd,
}

impl Method {
    /// A classical codec (no training), the baseline a learned code must beat.
    pub const fn is_classical(self) -> bool {
        matches!(self, Self::Pca | Self::Zfp | Self::Zstd)
    }

    /// A short label for a table cell; `latents` are PCA's components.
    pub fn short_label(self, latents: usize) -> String {
        match self {
            Self::Pca => format!("PCA, {latents} components"),
            Self::Zfp => "ZFP".into(),
            Self::Zstd => "zstd, lossless".into(),
            Self::BinaryVae | Self::GaussianVae => self.label().into(),
        }
    }

    /// Label for tables and plots.
    pub const fn label(self) -> &'static str {
        match self {
            Self::BinaryVae => "binary VAE (int8 runtime codes)",
            Self::GaussianVae => "Gaussian VAE (f32 latents)",
            Self::Pca => "PCA (quantised coefficients)",
            Self::Zfp => "ZFP (fixed rate)",
            Self::Zstd => "zstd -19 (lossless)",
        }
    }
}

/// The whole sweep of one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// Dataset name.
    pub dataset: String,
    /// Validation events measured.
    pub events: usize,
    /// Bits of one raw event (f32 samples).
    pub raw_bits: usize,
    /// Bits per event of the validation events compressed by zstd at [`ZSTD_LEVEL`].
    pub zstd_bits: f64,
    /// Every point, by method then bits.
    pub points: Vec<SweepPoint>,
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Code lengths (bits of the binary code).
    pub bits: Vec<usize>,
    /// Hidden widths (as `train --hidden`).
    pub hidden: Vec<usize>,
    /// Training settings; the head is set per model.
    pub train: TrainConfig,
    /// Compute backend.
    pub backend: Backend,
    /// Show progress bars.
    pub progress: bool,
}

/// Runs the sweep on `events`.
///
/// # Errors
/// [`SweepError`] if training, quantisation or zstd fails.
pub fn sweep(events: &Events, dataset: &str, config: &SweepConfig) -> Result<Sweep, SweepError> {
    let Prepared {
        split,
        normalisation,
        train: train_data,
        validation,
    } = Prepared::new(events, &config.train)?;
    let device = config.backend.training_device();
    let inference = config.backend.device();
    let mut points = Vec::new();
    for &bits in &config.bits {
        let model_config = VaeConfig::new(
            events.shape.channels,
            events.shape.length,
            bits,
            config.hidden.clone(),
        );
        model_config.validate()?;
        for head in [HeadKind::Binary, HeadKind::Gaussian] {
            tracing::info!(dataset, bits, ?head, "training");
            let train_config = TrainConfig {
                head,
                ..config.train.clone()
            };
            device.seed(train_config.seed);
            let model = model_config.init(&device);
            let (model, _) = train::train(
                model,
                &train_config,
                &train_data,
                &validation,
                &device,
                None,
                config.progress,
            )?;
            if head == HeadKind::Binary {
                let blob = ptq::quantize(
                    &model,
                    &normalisation,
                    events.shape,
                    &split.train.data,
                    &inference,
                )?;
                let report = evaluate::evaluate(
                    &model,
                    &blob,
                    &normalisation,
                    &split,
                    &train_config,
                    &inference,
                )?
                .report;
                points.push(SweepPoint {
                    method: Method::BinaryVae,
                    latents: bits,
                    bits,
                    nmse: report.nmse_runtime_codes_detector_units,
                });
                points.push(SweepPoint {
                    method: Method::Pca,
                    latents: report.pca_detector_units.components,
                    bits,
                    nmse: report.pca_detector_units.nmse,
                });
            } else {
                let mean = model.encode(to_tensor(&validation, &inference)).mu;
                let reconstruction = to_array(model.decode(mean))?;
                points.push(SweepPoint {
                    method: Method::GaussianVae,
                    latents: bits,
                    bits: 32 * bits,
                    nmse: nmse(
                        &split.validation.data,
                        &normalisation.invert(&reconstruction),
                    ),
                });
            }
        }
    }
    // ZFP at a few rates: its smallest (9 bits a block, whatever is asked) and upwards.
    for rate in ZFP_RATES {
        let result = zfp::round_trip(&split.validation.data, events.shape, rate)?;
        if points
            .iter()
            .any(|p: &SweepPoint| p.method == Method::Zfp && p.bits == result.bits)
        {
            continue;
        }
        points.push(SweepPoint {
            method: Method::Zfp,
            latents: 0,
            bits: result.bits,
            nmse: nmse(&split.validation.data, &result.reconstructions),
        });
    }
    let zstd_bits = zstd_bits(&split.validation.data)?;
    points.push(SweepPoint {
        method: Method::Zstd,
        latents: 0,
        bits: zstd_bits.ceil() as usize,
        nmse: 0.0,
    });
    points.sort_by_key(|p| (p.method as u8, p.bits));
    Ok(Sweep {
        dataset: dataset.to_string(),
        events: split.validation.len(),
        raw_bits: 32 * events.data.ncols(),
        zstd_bits,
        points,
    })
}

/// Bits per event of `events` (f32, little-endian, row after row) under zstd.
///
/// # Errors
/// zstd's I/O error.
pub fn zstd_bits(events: &Array2<f32>) -> Result<f64, std::io::Error> {
    let bytes: Vec<u8> = events.iter().flat_map(|v| v.to_le_bytes()).collect();
    let compressed = zstd::bulk::compress(&bytes, ZSTD_LEVEL)?;
    Ok(compressed.len() as f64 * 8.0 / events.nrows().max(1) as f64)
}

/// The sweep as a Markdown table: one row per bit budget, the binary code against the best
/// classical codec at the same bits and against a Gaussian VAE of the same size.
pub fn markdown(sweep: &Sweep) -> String {
    let mut md = format!(
        "### {} ({} validation events; raw {} bits per event, zstd -{ZSTD_LEVEL} lossless {:.0} bits per event, {:.2}× smaller)\n\n\
         nMSE in detector units. The Gaussian VAE has as many latents as the code has bits, \
         stored as f32; its ratio is the binarisation penalty.\n\n\
         | code bits | binary VAE (int8 codes) | best classical, same bits | binary ÷ classical | Gaussian VAE (bits) | binary ÷ Gaussian |\n\
         |---|---|---|---|---|---|\n",
        sweep.dataset,
        sweep.events,
        sweep.raw_bits,
        sweep.zstd_bits,
        sweep.raw_bits as f64 / sweep.zstd_bits.max(1.0),
    );
    for binary in sweep
        .points
        .iter()
        .filter(|p| p.method == Method::BinaryVae)
    {
        let classical = sweep
            .points
            .iter()
            .filter(|p| p.method.is_classical() && p.bits <= binary.bits)
            .min_by(|a, b| a.nmse.total_cmp(&b.nmse));
        let gaussian = sweep
            .points
            .iter()
            .find(|p| p.method == Method::GaussianVae && p.latents == binary.latents);
        let ratio = |other: Option<&SweepPoint>| match other {
            None => "–".into(),
            // Lossless fits in the code's bits: no lossy code can match it.
            Some(p) if p.nmse == 0.0 => "∞".into(),
            Some(p) => format!("{:.2}", binary.nmse / p.nmse),
        };
        let _ = writeln!(
            md,
            "| {} | {:.4} | {} | {} | {} | {} |",
            binary.bits,
            binary.nmse,
            classical.map_or("–".into(), |p| format!(
                "{:.4} ({})",
                p.nmse,
                p.method.short_label(p.latents)
            )),
            ratio(classical),
            gaussian.map_or("–".into(), |p| format!("{:.4} ({})", p.nmse, p.bits)),
            ratio(gaussian),
        );
    }
    if let Some(smallest) = sweep
        .points
        .iter()
        .filter(|p| p.method == Method::Zfp)
        .min_by_key(|p| p.bits)
    {
        let _ = writeln!(
            md,
            "\nZFP (fixed rate) cannot go below {} bits per event (9 bits a block of samples); there its nMSE is {:.4}.",
            smallest.bits, smallest.nmse
        );
    }
    md
}

/// The curves of every method, nMSE against bits per event (log scale), with the zstd
/// lossless size marked.
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn plot(path: &Path, sweep: &Sweep) -> Result<(), PlotError> {
    let series: Vec<(&'static str, Vec<(f64, f64)>)> = [
        Method::BinaryVae,
        Method::Pca,
        Method::Zfp,
        Method::GaussianVae,
    ]
    .into_iter()
    .map(|method| {
        let points = sweep
            .points
            .iter()
            .filter(|p| p.method == method)
            .map(|p| (p.bits as f64, p.nmse))
            .collect();
        (method.label(), points)
    })
    .collect();
    plot::rate_distortion(
        path,
        &format!(
            "{}: reconstruction error against bits per event",
            sweep.dataset
        ),
        &series,
        sweep.zstd_bits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_shrinks_redundant_events_and_not_noise() {
        let flat = Array2::<f32>::from_elem((32, 256), 1.5);
        assert!(zstd_bits(&flat).unwrap() < 0.05 * 32.0 * 256.0);
        let noise = Array2::from_shape_fn((32, 256), |(i, j)| {
            f32::from_bits(((i * 256 + j) as u32).wrapping_mul(2_654_435_761) >> 2 | 0x3f00_0000)
        });
        assert!(zstd_bits(&noise).unwrap() > 0.5 * 32.0 * 256.0);
    }

    #[test]
    fn the_table_pairs_each_code_length_with_its_baselines() {
        let point = |method, latents, bits, nmse| SweepPoint {
            method,
            latents,
            bits,
            nmse,
        };
        let sweep = Sweep {
            dataset: "opis".into(),
            events: 10,
            raw_bits: 32 * 1024,
            zstd_bits: 29_000.0,
            points: vec![
                point(Method::BinaryVae, 32, 32, 0.4),
                point(Method::GaussianVae, 32, 1024, 0.1),
                point(Method::Pca, 10, 32, 0.45),
            ],
        };
        let md = markdown(&sweep);
        assert!(
            md.contains(
                "| 32 | 0.4000 | 0.4500 (PCA, 10 components) | 0.89 | 0.1000 (1024) | 4.00 |"
            ),
            "{md}"
        );
        assert!(md.contains("1.13× smaller"), "{md}");
        // Where lossless zstd fits in the code's bits, it is the best classical codec.
        let mut sparse = sweep.clone();
        sparse.points.push(point(Method::Zstd, 0, 30, 0.0));
        let md = markdown(&sparse);
        assert!(
            md.contains("| 32 | 0.4000 | 0.0000 (zstd, lossless) | ∞ |"),
            "{md}"
        );
    }
}
