//! The evaluation report: what the compression costs, against PCA at the same bits.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use std::path::{Path, PathBuf};

use crate::cloud::{self, CloudReport, CloudScore, LeadingPoints};
use crate::data::{EventShape, Normalisation, Split};
use crate::disentangle::Disentanglement;
use crate::pca::{self, PcaBaseline};
use crate::plot::{self, PlotError};
use crate::probe::FactorProbe;
use crate::ptq::{self, Agreement};
use crate::train::{TrainConfig, TrainingLog, mse, nmse, squared_spread};
use crate::zfp::{self, ZfpError, ZfpSmallest};
use burn::prelude::*;
use latentlink_model::latent::{self, HeadKind};
use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::vae::Vae;
use latentlink_package::files;

/// Usage of each code bit on a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BitUsage {
    /// Fraction of events with each bit set.
    pub balance: Vec<f64>,
    /// Entropy of each bit (bits; 1.0 is a perfectly balanced bit).
    pub entropy: Vec<f64>,
    /// Sum of the per-bit entropies (an upper bound on the information per code).
    pub total_entropy: f64,
    /// Bits that never change (carry nothing).
    pub constant_bits: usize,
    /// Mean absolute correlation between two bits across events (0: independent bits).
    #[serde(default)]
    pub mean_abs_correlation: f64,
    /// The largest absolute correlation of two bits (1: one bit copies another).
    #[serde(default)]
    pub max_abs_correlation: f64,
}

/// Per-bit balance and entropy of 0/1 codes.
pub fn bit_usage(codes: &Array2<f32>) -> BitUsage {
    let n = codes.nrows().max(1) as f64;
    let balance: Vec<f64> = codes
        .columns()
        .into_iter()
        .map(|c| f64::from(c.sum()) / n)
        .collect();
    let entropy: Vec<f64> = balance
        .iter()
        .map(|&p| {
            if p <= 0.0 || p >= 1.0 {
                0.0
            } else {
                -(p * p.log2() + (1.0 - p) * (1.0 - p).log2())
            }
        })
        .collect();
    let (mean_abs_correlation, max_abs_correlation) = bit_correlations(codes, &balance);
    BitUsage {
        total_entropy: entropy.iter().sum(),
        constant_bits: balance.iter().filter(|&&p| p == 0.0 || p == 1.0).count(),
        balance,
        entropy,
        mean_abs_correlation,
        max_abs_correlation,
    }
}

/// Mean and largest absolute correlation over pairs of non-constant bits.
fn bit_correlations(codes: &Array2<f32>, balance: &[f64]) -> (f64, f64) {
    let n = codes.nrows().max(1) as f64;
    let varying: Vec<usize> = (0..balance.len())
        .filter(|&k| balance[k] > 0.0 && balance[k] < 1.0)
        .collect();
    let (mut sum, mut max, mut pairs) = (0.0f64, 0.0f64, 0usize);
    for (i, &a) in varying.iter().enumerate() {
        for &b in &varying[i + 1..] {
            let both = codes
                .column(a)
                .iter()
                .zip(codes.column(b))
                .filter(|&(&x, &y)| x > 0.5 && y > 0.5)
                .count() as f64
                / n;
            let (pa, pb) = (balance[a], balance[b]);
            let r = ((both - pa * pb) / (pa * (1.0 - pa) * pb * (1.0 - pb)).sqrt()).abs();
            sum += r;
            max = max.max(r);
            pairs += 1;
        }
    }
    (sum / pairs.max(1) as f64, max)
}

/// Everything measured about a trained binary-code model on one split. Errors come in
/// detector units first (what a physicist compares), then in the normalised units the model
/// is trained in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The latent head the model was trained with. A Gaussian head's own code is its float
    /// posterior mean; its int8 codes are the signs of those means, which it was not
    /// trained to send.
    #[serde(default)]
    pub head: HeadKind,
    /// Events evaluated.
    pub events: usize,
    /// Code bits.
    pub bits: usize,
    /// Raw bytes per event (as f32) over code bytes.
    pub compression_ratio: f64,
    /// nMSE in detector units from int8 runtime codes (what a deployed front-end sends):
    /// the headline.
    pub nmse_runtime_codes_detector_units: f64,
    /// nMSE in detector units from float latents: a Gaussian head's posterior means, or a
    /// binary head's soft samples when its decoder was trained on them (`None` for a binary
    /// decoder trained on hard bits: soft latents are not its input, and the float reference
    /// is a Gaussian VAE of the same size, in `sweep`).
    pub nmse_float_latents_detector_units: Option<f64>,
    /// What binarising costs: int8-code nMSE over float-latent nMSE, detector units (`None`
    /// with the float latents).
    pub binarisation_penalty: Option<f64>,
    /// PCA at the same bit budget, fitted and measured in detector units.
    pub pca_detector_units: PcaBaseline,
    /// ZFP at the smallest size it can write these events in (usually far above the code's
    /// bits: it cannot compete at equal bits), detector units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zfp_smallest: Option<ZfpSmallest>,
    /// nMSE of reconstructions from float latents (normalised units; `None` as above).
    pub nmse_float_latents: Option<f64>,
    /// nMSE from binary codes of the float encoder (normalised units).
    pub nmse_float_codes: f64,
    /// nMSE from int8 runtime codes (normalised units).
    pub nmse_runtime_codes: f64,
    /// Mean squared error per sample in detector units (e.g. ADC counts²) from int8
    /// runtime codes.
    pub mse_runtime_codes_detector_units: f64,
    /// Median over events of each event's nMSE from int8 runtime codes (normalised units;
    /// the nMSE above is the mean).
    pub median_event_nmse_runtime_codes: f64,
    /// PCA at the same bit budget, fitted and measured in normalised units.
    pub pca: PcaBaseline,
    /// int8 vs float code agreement.
    pub agreement: Agreement,
    /// Bit usage of the runtime codes.
    pub bit_usage: BitUsage,
    /// Fraction of latents whose posterior mean is within 0.05 of ½ (codes that sit on the
    /// knife edge and flip easily).
    pub fraction_near_half: f64,
    /// How well the int8 codes predict known factors behind the events (empty when none
    /// were given; see [`crate::probe`]).
    #[serde(default)]
    pub factor_probe: Vec<FactorProbe>,
    /// How disentangled the int8 codes are against those factors (see
    /// [`crate::disentangle`]); `None` when no factors were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disentanglement: Option<Disentanglement>,
    /// For point clouds (a model trained with a point-cloud likelihood): Chamfer and earth
    /// mover's distances, observables, and the leading-points baseline at the same bits.
    /// The nMSE figures above compare the point slots in order, which means little for a
    /// cloud; these are the ones to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_cloud: Option<CloudReport>,
}

/// A [`Report`] plus what its plots are drawn from.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The figures.
    pub report: Report,
    /// Validation events in detector units.
    pub raw: Array2<f32>,
    /// Their reconstructions from int8 runtime codes, in detector units.
    pub reconstructions: Array2<f32>,
    /// Each event's nMSE from int8 runtime codes (normalised units).
    pub event_nmse: Vec<f64>,
    /// For point clouds, each event's Chamfer distance from int8 runtime codes (scaled
    /// units), the error `errors.png` then shows.
    pub event_chamfer: Option<Vec<f64>>,
}

/// The per-event error an error histogram shows, and its axis label: the Chamfer distance
/// where there is one (point clouds), the nMSE otherwise.
pub fn per_event_errors<'a>(
    event_nmse: &'a [f64],
    event_chamfer: Option<&'a [f64]>,
) -> (&'a [f64], &'static str) {
    match event_chamfer {
        Some(chamfer) => (chamfer, "Chamfer distance per event (scaled units)"),
        None => (event_nmse, "nMSE per event"),
    }
}

/// Each row's squared error over the data set's mean squared spread per event, so that the
/// mean over events is [`nmse`].
pub fn event_nmse(truth: &Array2<f32>, estimate: &Array2<f32>) -> Vec<f64> {
    let per_event_spread = squared_spread(truth) / truth.nrows().max(1) as f64;
    truth
        .rows()
        .into_iter()
        .zip(estimate.rows())
        .map(|(t, e)| {
            let error: f64 = t.iter().zip(e).map(|(a, b)| f64::from(a - b).powi(2)).sum();
            if per_event_spread > 0.0 {
                error / per_event_spread
            } else {
                error
            }
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The blob could not run, or a tensor could not be read back.
    #[error(transparent)]
    Ptq(#[from] ptq::PtqError),
    /// The ZFP baseline failed.
    #[error(transparent)]
    Zfp(#[from] ZfpError),
}

impl From<latentlink_model::tensor::TensorError> for EvaluateError {
    fn from(error: latentlink_model::tensor::TensorError) -> Self {
        Self::Ptq(error.into())
    }
}

/// Evaluates `model`, trained with `config`, and its `blob` on the validation split.
///
/// # Errors
/// [`EvaluateError`] if the blob cannot run or the ZFP baseline fails.
pub fn evaluate(
    model: &Vae,
    blob: &[u8],
    normalisation: &Normalisation,
    split: &Split,
    config: &TrainConfig,
    device: &Device,
) -> Result<Evaluation, EvaluateError> {
    let raw = &split.validation.data;
    let normalised = normalisation.apply(raw);
    let posterior = model.encode(to_tensor(&normalised, device));
    let from_latents = match config.head {
        HeadKind::Gaussian => Some(to_array(model.decode(posterior.mu.clone()))?),
        HeadKind::Binary if config.straight_through => None,
        HeadKind::Binary => {
            let sample = latent::sample(
                HeadKind::Binary,
                posterior.mu.clone(),
                posterior.log_sigma.clone(),
                config.alpha,
                true,
                false,
            );
            Some(to_array(model.decode(sample.z))?)
        }
    };
    let float_codes = to_array(latent::binarise(posterior.mu.clone()))?;
    let from_float_codes = to_array(model.decode(to_tensor(&float_codes, device)))?;
    let runtime_codes = ptq::runtime_codes(blob, raw)?;
    let from_runtime = to_array(model.decode(to_tensor(&runtime_codes, device)))?;
    let means = to_array(latent::binary_mean(posterior.mu, posterior.log_sigma))?;
    let near_half = means.iter().filter(|&&m| (m - 0.5).abs() < 0.05).count() as f64
        / means.len().max(1) as f64;
    let bits = runtime_codes.ncols();
    let train_normalised = normalisation.apply(&split.train.data);
    let pca_normalised = pca::Pca::fit(&train_normalised, bits);
    let pca_detector_units = pca::Pca::fit(&split.train.data, bits);
    let reconstructions = normalisation.invert(&from_runtime);
    let nmse_runtime_codes_detector_units = nmse(raw, &reconstructions);
    let nmse_float_latents_detector_units = from_latents
        .as_ref()
        .map(|latents| nmse(raw, &normalisation.invert(latents)));
    let event_nmse = event_nmse(&normalised, &from_runtime);
    let point_cloud = config.likelihood.is_point_cloud().then(|| {
        let features = split.validation.shape.length;
        let score = |estimate: &Array2<f32>| CloudScore::of(raw, estimate, features, normalisation);
        let baseline =
            LeadingPoints::fit(&split.train.data, features, bits, normalisation).map(|baseline| {
                let restored = baseline.round_trip(raw);
                (baseline, score(&restored))
            });
        CloudReport {
            runtime_codes: score(&reconstructions),
            chamfer_float_codes: cloud::mean_chamfer(&normalised, &from_float_codes, features),
            float_latents: from_latents
                .as_ref()
                .map(|latents| score(&normalisation.invert(latents))),
            baseline,
        }
    });
    let report = Report {
        head: config.head,
        events: raw.nrows(),
        bits,
        compression_ratio: (raw.ncols() * 4) as f64 / bits.div_ceil(8) as f64,
        nmse_runtime_codes_detector_units,
        nmse_float_latents_detector_units,
        binarisation_penalty: nmse_float_latents_detector_units
            .map(|float| nmse_runtime_codes_detector_units / float),
        pca_detector_units: pca::baseline(&pca_detector_units, &split.train.data, raw, bits),
        zfp_smallest: Some(zfp::smallest(raw, split.validation.shape)?),
        nmse_float_latents: from_latents
            .as_ref()
            .map(|latents| nmse(&normalised, latents)),
        nmse_float_codes: nmse(&normalised, &from_float_codes),
        nmse_runtime_codes: nmse(&normalised, &from_runtime),
        mse_runtime_codes_detector_units: mse(raw, &reconstructions),
        median_event_nmse_runtime_codes: median(&event_nmse),
        pca: pca::baseline(&pca_normalised, &train_normalised, &normalised, bits),
        agreement: ptq::agreement(&float_codes, &runtime_codes),
        bit_usage: bit_usage(&runtime_codes),
        fraction_near_half: near_half,
        factor_probe: Vec::new(),
        disentanglement: None,
        point_cloud,
    };
    Ok(Evaluation {
        report,
        raw: raw.clone(),
        event_chamfer: config.likelihood.is_point_cloud().then(|| {
            cloud::event_chamfers(&normalised, &from_runtime, split.validation.shape.length)
        }),
        reconstructions,
        event_nmse,
    })
}

/// The point-cloud table of the report.
fn cloud_markdown(cloud: &CloudReport, bits: usize) -> String {
    let mut md = String::from(
        "Point clouds (the table above compares point slots in order, which means little for a cloud):\n\n\
         | reconstruction from | Chamfer | EMD | total weight (energy): bias, rms | centroid rms, detector units |\n|---|---|---|---|---|\n",
    );
    let row = |name: &str, score: &CloudScore| {
        let centroid: Vec<String> = score
            .observables
            .centroid_rms
            .iter()
            .map(|c| format!("{c:.3}"))
            .collect();
        format!(
            "| {name} | {:.4} | {:.4} | {:+.1} %, {:.1} % | {} |\n",
            score.chamfer,
            score.emd,
            100.0 * score.observables.total_bias,
            100.0 * score.observables.total_rms,
            centroid.join(", ")
        )
    };
    md += &row(
        &format!("**int8 runtime codes ({bits} bits)**"),
        &cloud.runtime_codes,
    );
    if let Some(score) = &cloud.float_latents {
        md += &row("float latents (the model's own float code)", score);
    }
    if let Some((baseline, score)) = &cloud.baseline {
        md += &row(
            &format!(
                "the {} heaviest points, {} bits per feature ({} bits)",
                baseline.points,
                baseline.bits_per_feature,
                baseline.bits()
            ),
            score,
        );
    }
    md += &format!(
        "\nChamfer and EMD in scaled units (each point feature over its spread); from the float encoder's binary codes the Chamfer distance is {:.4}. The last feature is taken as each point's weight.\n\n",
        cloud.chamfer_float_codes
    );
    md
}

/// Writes the report's plots into `dir`: example reconstructions, the per-event error
/// distribution and (when `log` has epochs) the training curve. Returns the files written.
///
/// # Errors
/// [`PlotError`] naming the file that could not be drawn.
pub fn write_plots(
    dir: &Path,
    name: &str,
    evaluation: &Evaluation,
    shape: EventShape,
    log: &TrainingLog,
) -> Result<Vec<PathBuf>, PlotError> {
    let bits = evaluation.report.bits;
    let mut written = vec![
        dir.join(files::RECONSTRUCTIONS_PNG),
        dir.join(files::ERRORS_PNG),
    ];
    let title = format!(
        "{name}: validation events (black) and reconstructions from {bits}-bit int8 codes (red)"
    );
    plot::examples(
        &written[0],
        &evaluation.raw,
        &evaluation.reconstructions,
        shape,
        evaluation.report.point_cloud.is_some(),
        &title,
    )?;
    let (errors, label) =
        per_event_errors(&evaluation.event_nmse, evaluation.event_chamfer.as_deref());
    plot::error_histogram(
        &written[1],
        errors,
        label,
        &format!("{name}: reconstruction error from {bits}-bit codes"),
    )?;
    if !log.epochs.is_empty() {
        let path = dir.join(files::TRAINING_PNG);
        plot::training_curve(&path, log, &format!("{name}: training"))?;
        written.push(path);
    }
    Ok(written)
}

/// A Markdown summary of a report, for the package and the README.
pub fn markdown(name: &str, report: &Report, log: &TrainingLog) -> String {
    let mut md = format!(
        "# {name}: evaluation on {} validation events\n\n",
        report.events
    );
    md +=
        "| reconstruction from | nMSE, detector units | nMSE, normalised units |\n|---|---|---|\n";
    md += &format!(
        "| **int8 runtime codes ({} bits)** | **{:.4}** | {:.4} |\n",
        report.bits, report.nmse_runtime_codes_detector_units, report.nmse_runtime_codes
    );
    if let (Some(detector), Some(normalised)) = (
        report.nmse_float_latents_detector_units,
        report.nmse_float_latents,
    ) {
        let latents = match report.head {
            HeadKind::Gaussian => "float latents (the Gaussian head's own code)",
            HeadKind::Binary => "soft float latents (the decoder's training input)",
        };
        md += &format!("| {latents} | {detector:.4} | {normalised:.4} |\n");
    }
    md += &format!(
        "| binary codes of the float encoder | | {:.4} |\n",
        report.nmse_float_codes
    );
    md += &format!(
        "| PCA at {} bits, bits allocated greedily | {:.4} ({}) | {:.4} ({}) |\n\n",
        report.bits,
        report.pca_detector_units.nmse,
        report.pca_detector_units.describe(),
        report.pca.nmse,
        report.pca.describe()
    );
    if let Some(cloud) = &report.point_cloud {
        md += &cloud_markdown(cloud, report.bits);
    }
    if report.head == HeadKind::Gaussian {
        md += "- **Gaussian head**: this model was trained to send float latents; its int8 codes are their signs, which it was not trained to decode (train `--head binary` to deploy codes)\n";
    }
    md += &format!(
        "- int8 codes against PCA at the same bits, detector units: {:.2}× PCA's error\n",
        report.nmse_runtime_codes_detector_units / report.pca_detector_units.nmse
    );
    if let Some(zfp) = &report.zfp_smallest {
        md += &format!(
            "- ZFP (fixed rate) cannot go below {} bits per event ({:.0}× the code); there its nMSE is {:.4} (detector units)\n",
            zfp.bits,
            zfp.bits as f64 / report.bits as f64,
            zfp.nmse
        );
    }
    md += &match report.binarisation_penalty {
        Some(penalty) => format!(
            "- binarisation penalty (int8 codes / soft float latents, detector units): {penalty:.2}\n"
        ),
        None => "- binarisation penalty: the decoder was trained on hard bits, so its float reference is a Gaussian VAE of the same size (`latentlink sweep`)\n".into(),
    };
    md += &format!(
        "- from int8 codes: median event nMSE {:.4} (normalised; the table gives the mean), MSE {:.4e} per sample in detector units\n- compression: {:.0}× (f32 event vs {}-byte code)\n",
        report.median_event_nmse_runtime_codes,
        report.mse_runtime_codes_detector_units,
        report.compression_ratio,
        report.bits.div_ceil(8)
    );
    md += &format!(
        "- int8 vs float code bits: {:.2} % of bits agree, {:.1} % of codes identical\n",
        100.0 * report.agreement.bit_agreement,
        100.0 * report.agreement.code_agreement
    );
    md += &format!(
        "- bit usage: {:.1} bits of entropy over {} bits, {} constant bits, {:.1} % of latents within 0.05 of ½\n",
        report.bit_usage.total_entropy,
        report.bits,
        report.bit_usage.constant_bits,
        100.0 * report.fraction_near_half
    );
    md += &format!(
        "- bit correlation across events: mean |r| {:.3}, largest {:.3}\n",
        report.bit_usage.mean_abs_correlation, report.bit_usage.max_abs_correlation
    );
    if report.bit_usage.constant_bits > 0 {
        md += &format!(
            "- **warning: {} of {} bits never change and carry nothing**; a smaller `--beta` keeps them in use\n",
            report.bit_usage.constant_bits, report.bits
        );
    }
    if !report.factor_probe.is_empty() {
        md += "- factors from the int8 codes (R² on held-out events, linear / nearest codes):";
        for probe in &report.factor_probe {
            md += &format!(
                " {} {:.3} / {:.3};",
                probe.factor, probe.r2, probe.r2_neighbours
            );
        }
        md.pop();
        md += "\n";
    }
    if let Some(d) = &report.disentanglement {
        md += &format!(
            "- disentanglement of the int8 codes: MIG {:.3}, DCI disentanglement {:.3}, completeness {:.3}; the bit that knows most about each factor (its share of the factor's entropy):",
            d.mig, d.dci_disentanglement, d.dci_completeness
        );
        for factor in &d.factors {
            md += &format!(
                " {} bit {} ({:.2});",
                factor.factor, factor.best_bit, factor.best_information
            );
        }
        md.pop();
        md += "\n";
    }
    md += &if log.epochs.is_empty() {
        // `eval` of a package: the epoch log stays in the package's report.json.
        format!(
            "- training: best epoch {} (epoch log in the package's report.json)\n",
            log.best_epoch
        )
    } else {
        format!(
            "- training: {} epochs, best epoch {}{}\n",
            log.epochs.len(),
            log.best_epoch,
            if log.stopped_early {
                " (stopped early)"
            } else {
                " (epoch limit reached)"
            }
        )
    };
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn event_errors_average_to_the_nmse() {
        let truth = array![[1.0f32, 2.0], [3.0, 0.0], [-1.0, 1.0]];
        let estimate = array![[1.0f32, 1.0], [2.0, 0.0], [0.0, 0.0]];
        let events = event_nmse(&truth, &estimate);
        // Spread: mean (1, 1); squared deviations 1, 5, 4 → 10/3 per event.
        let expected = [1.0 / (10.0 / 3.0), 1.0 / (10.0 / 3.0), 2.0 / (10.0 / 3.0)];
        for (e, x) in events.iter().zip(expected) {
            assert!((e - x).abs() < 1e-12, "{events:?}");
        }
        let mean = events.iter().sum::<f64>() / 3.0;
        assert!((mean - nmse(&truth, &estimate)).abs() < 1e-12);
        assert!((mse(&truth, &estimate) - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(median(&events), expected[1]);
    }

    #[test]
    fn bit_usage_of_known_codes() {
        let codes = array![
            [1.0f32, 0.0, 1.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 1.0],
            [0.0, 0.0, 1.0]
        ];
        let usage = bit_usage(&codes);
        assert_eq!(usage.balance, vec![0.5, 0.0, 1.0]);
        assert!((usage.entropy[0] - 1.0).abs() < 1e-12);
        assert_eq!(usage.constant_bits, 2);
        assert!((usage.total_entropy - 1.0).abs() < 1e-12);
        // One varying bit: no pair to correlate.
        assert_eq!(usage.max_abs_correlation, 0.0);

        // Bit 1 copies bit 0; bit 2 is independent of both.
        let codes = array![
            [1.0f32, 1.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0]
        ];
        let usage = bit_usage(&codes);
        assert!((usage.max_abs_correlation - 1.0).abs() < 1e-12);
        assert!((usage.mean_abs_correlation - 1.0 / 3.0).abs() < 1e-12);
    }
}
