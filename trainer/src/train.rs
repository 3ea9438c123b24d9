//! The training loop: Adam, KL warm-up, validation every epoch, a learning rate halved when
//! the validation metric stalls, early stopping on the metric that matters for deployment,
//! best-model checkpoints, and a stop with a clear message if a loss turns NaN or infinite.
//!
//! Loss per event: `½ Σ (x − x̂)²` over normalised features (a unit-variance Gaussian
//! likelihood) plus `β_t · KL`, with `β_t` rising linearly from 0 to β over the warm-up
//! epochs so the code first learns to carry information and only then is pushed towards the
//! prior. For the binary head the decoder trains on hard bits (straight-through, see
//! [`latent::sample`]) and a bit-usage term ([`latent::bit_usage_penalty`]) keeps every bit
//! balanced and the bits uncorrelated; the validation metric is the normalised MSE of
//! reconstructions from the *binary codes* (what the host will decode). For the Gaussian
//! head it is the loss.

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Axis};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use latentlink_model::Vae;
use latentlink_model::latent::{self, HeadKind};
use latentlink_model::tensor::{TensorError, to_array, to_tensor};
use latentlink_package::{EventShape, Normalisation};

use crate::cloud::WeightScaling;

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Latent head.
    pub head: HeadKind,
    /// KL weight after warm-up. With the calibrated likelihood it is relative: the KL per
    /// latent against the log-error per feature (see [`Likelihood::kl_weight`]).
    pub beta: f64,
    /// Epochs over which the KL weight rises from 0 to `beta`.
    pub warmup_epochs: usize,
    /// Beta(α, α) prior parameter of the binary head.
    pub alpha: f64,
    /// Most epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation metric.
    pub patience: usize,
    /// Events per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
    /// Capacity annealing for the Gaussian head (Burgess et al. 2018): the KL term becomes
    /// `β·|KL − C_t|` with `C_t` rising linearly to `max_nats` over `epochs`. `None`: plain β.
    pub capacity: Option<Capacity>,
    /// Halve the learning rate after this many epochs without a better validation metric
    /// (0: a constant learning rate, as models trained before it existed had).
    #[serde(default)]
    pub plateau_epochs: usize,
    /// Binary head: the decoder trains on hard bits with a straight-through gradient
    /// (`false`: on soft logit-normal samples, as models trained before it existed did).
    #[serde(default)]
    pub straight_through: bool,
    /// Binary head: weight of [`latent::bit_usage_penalty`] (nats per event, like the KL).
    #[serde(default)]
    pub bit_usage_weight: f64,
    /// How events are scaled before the encoder and the loss.
    #[serde(default)]
    pub scaling: Scaling,
    /// The reconstruction term of the loss.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Binary head: most epochs of decoder fine-tuning on the int8 runtime's own codes
    /// after quantisation, the encoder frozen (0: none, as models trained before it existed).
    #[serde(default)]
    pub fine_tune_epochs: usize,
    /// For [`Likelihood::SinkhornWeighted`]: how the points' weight feature was scaled. Not
    /// an option: the pipeline sets it from the scaling it fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_weight: Option<WeightScaling>,
}

/// The reconstruction term of the loss, per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// A Gaussian of unit variance in scaled units, `½ Σ (x − x̂)²` (what models trained
    /// before the likelihood was a choice used). How much the KL weighs against it then
    /// depends on how the data were scaled and how many features an event has: on small
    /// events the KL wins and bits collapse.
    #[default]
    Unit,
    /// A Gaussian with one variance for every feature, set each batch to its mean squared
    /// error (the "calibrated decoder" of Rybkin et al. 2021): `(D/2) · ln MSE` for `D`
    /// features, up to a constant. It does not depend on the data's scale, and as
    /// reconstructions improve the KL weighs relatively less, so a bit is kept whenever it
    /// pays for itself at the error already reached.
    Calibrated,
    /// For binary events (pixels on or off): each feature is a Bernoulli variable whose
    /// probability the decoder gives through a sigmoid, `−Σ [x ln p + (1 − x) ln(1 − p)]`.
    /// It needs a model with [`VaeConfig::sigmoid_output`](latentlink_model::VaeConfig) and
    /// events in [0, 1] left unscaled ([`Scaling::None`]).
    Bernoulli,
    /// For point clouds (events of `points × features`, whose point order means nothing):
    /// the [Chamfer distance](crate::cloud) between the reconstructed and the true cloud,
    /// as the calibrated likelihood treats the squared error, `(D/2) · ln CD` for `D`
    /// features. Needs a model whose encoder ignores the order (`--encoder pointnet`).
    Chamfer,
    /// For point clouds, as [`Likelihood::Chamfer`] but with the entropic optimal-transport
    /// cost ([`crate::cloud::sinkhorn_loss`], an approximation of the squared earth mover's
    /// distance) in place of the Chamfer distance: every point's mass must go somewhere.
    /// Slower (30 iterations per step). Validation still measures the Chamfer distance.
    Sinkhorn,
    /// For point clouds whose last feature is each point's weight (energy, pT): as
    /// [`Likelihood::Sinkhorn`], but each point's mass is its share of the event's total
    /// weight and the squared log ratio of the totals is added
    /// ([`crate::cloud::weighted_sinkhorn_loss`], after the energy mover's distance). Needs
    /// [`TrainConfig::point_weight`], which the pipeline sets from the fitted scaling.
    SinkhornWeighted,
}

impl Likelihood {
    /// Whether the events are point clouds compared as sets (Chamfer or either Sinkhorn).
    pub const fn is_point_cloud(self) -> bool {
        matches!(
            self,
            Self::Chamfer | Self::Sinkhorn | Self::SinkhornWeighted
        )
    }

    /// The weight of the KL term for `beta` on events of `features` features coded by
    /// `latents` latents. Unit: `beta` itself. Calibrated: `beta · features / latents`,
    /// i.e. the loss `½ ln MSE + beta · KL / latents` per feature, scaled by the feature
    /// count. The calibrated term grows with the number of features and the KL with the
    /// number of latents, so a fixed weight collapses the bits of short events (64-pixel
    /// images at 64 bits) and barely regularises long ones; relative to both, one `beta`
    /// suited every data set and code length it was tried on. Bernoulli: `beta` itself, as
    /// for unit; its term is a log-likelihood in nats with no variance to fit, and weighed
    /// as calibrated (0.02 per latent on 32 × 32 sprites at 128 bits) the KL left 88 of 128
    /// bits constant.
    pub fn kl_weight(self, beta: f64, features: usize, latents: usize) -> f64 {
        match self {
            Self::Unit | Self::Bernoulli => beta,
            Self::Calibrated | Self::Chamfer | Self::Sinkhorn | Self::SinkhornWeighted => {
                beta * features as f64 / latents.max(1) as f64
            }
        }
    }

    /// The validation error of `estimate` against `truth`, both `[N, features]` in scaled
    /// units: the mean Chamfer distance for the point-cloud likelihoods (whose reconstructions
    /// may list the points in any order), except the energy-weighted transport for
    /// [`Likelihood::SinkhornWeighted`], whose points of little weight may sit anywhere; the
    /// nMSE for every other. `weight` is as for [`Likelihood::loss`].
    pub fn error(
        self,
        truth: &Array2<f32>,
        estimate: &Array2<f32>,
        shape: EventShape,
        weight: Option<WeightScaling>,
    ) -> Result<f64, TensorError> {
        Ok(match (self, weight) {
            (Self::SinkhornWeighted, Some(weight)) => {
                crate::cloud::mean_weighted_transport(truth, estimate, shape, weight)?
            }
            // The weighted loss without its scaling never trains (`TrainConfig::check`).
            (Self::Chamfer | Self::Sinkhorn | Self::SinkhornWeighted, _) => {
                crate::cloud::mean_chamfer(truth, estimate, shape.length)
            }
            (Self::Unit | Self::Calibrated | Self::Bernoulli, _) => nmse(truth, estimate),
        })
    }

    /// The mean loss of a batch from the decoder's output and the events it should give,
    /// both `[batch, features]` of the given layout. `output` is the logits
    /// ([`Vae::decode_logits`]) for [`Likelihood::Bernoulli`], which stays exact where a
    /// probability rounds to 0 or 1, and the reconstruction ([`Vae::decode`]) for the
    /// others; [`TrainConfig::loss`] picks. `weight` is how the points' weight feature was
    /// scaled (only [`Likelihood::SinkhornWeighted`] reads it, and [`TrainConfig::check`]
    /// makes sure it has it).
    fn loss(
        self,
        output: Tensor<2>,
        target: Tensor<2>,
        shape: EventShape,
        weight: Option<WeightScaling>,
    ) -> Tensor<1> {
        match self {
            Self::Chamfer | Self::Sinkhorn | Self::SinkhornWeighted => {
                let batch = output.dims()[0];
                let cloud = [batch, shape.channels, shape.length];
                let (estimate, truth) = (output.reshape(cloud), target.reshape(cloud));
                let distances = match (self, weight) {
                    (Self::Chamfer, _) => crate::cloud::chamfer_loss(estimate, truth),
                    (Self::SinkhornWeighted, Some(weight)) => {
                        crate::cloud::weighted_sinkhorn_loss(estimate, truth, weight)
                    }
                    // Sinkhorn. `TrainConfig::check` refuses the weighted loss without its
                    // scaling before any step, so it never gets here.
                    _ => crate::cloud::sinkhorn_loss(estimate, truth),
                };
                distances
                    .mean()
                    .add_scalar(1e-8)
                    .log()
                    .mul_scalar(shape.features() as f64 / 2.0)
            }
            Self::Unit => (output - target)
                .powi_scalar(2)
                .sum_dim(1)
                .mul_scalar(0.5)
                .mean(),
            Self::Bernoulli => {
                // −[x ln σ(l) + (1 − x) ln σ(−l)], with ln σ computed stably.
                let log_p = burn::tensor::activation::log_sigmoid(output.clone());
                let log_not_p = burn::tensor::activation::log_sigmoid(output.neg());
                let one_minus_target = target.clone().neg().add_scalar(1.0);
                (target * log_p + one_minus_target * log_not_p)
                    .sum_dim(1)
                    .neg()
                    .mean()
            }
            Self::Calibrated => {
                let squared_errors = (output - target).powi_scalar(2);
                let features = squared_errors.dims()[1] as f64;
                // The floor keeps ln finite for a batch reconstructed exactly.
                squared_errors
                    .mean()
                    .add_scalar(1e-8)
                    .log()
                    .mul_scalar(features / 2.0)
            }
        }
    }
}

impl std::str::FromStr for Likelihood {
    type Err = latentlink_model::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [
            ("unit", Self::Unit),
            ("calibrated", Self::Calibrated),
            ("bernoulli", Self::Bernoulli),
            ("chamfer", Self::Chamfer),
            ("sinkhorn", Self::Sinkhorn),
            ("sinkhorn-weighted", Self::SinkhornWeighted),
        ];
        latentlink_model::vae::UnknownName::pick("likelihood", name, &choices)
    }
}

/// How events are scaled before the encoder and the loss (the loss is the squared error in
/// these units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// Each feature to zero mean and unit variance: every feature weighs the same in the
    /// loss, however little signal it has (what models trained before scaling was a choice
    /// used).
    #[default]
    PerFeature,
    /// Per-feature means, one scale for all: the loss is the squared error in detector
    /// units (see [`Normalisation::fit_global`]).
    Global,
    /// For counts: each feature scaled by its shot noise, `√max(mean, 1)`, so the loss is
    /// a χ² against Poisson noise (see [`Normalisation::fit_poisson`]); with the calibrated
    /// likelihood, a Gaussian whose per-feature noise variance is the mean count times one
    /// gain fitted along the way.
    Poisson,
    /// Events as they are (mean 0, scale 1 for every feature): what the Bernoulli
    /// likelihood needs, whose targets are the raw 0/1 values.
    None,
    /// For point clouds: each point feature (x, y, energy...) to zero mean and unit variance
    /// over all points, the same for every point, so the scaled events keep no trace of a
    /// point's place (see [`Normalisation::fit_points`]).
    Points,
}

impl Scaling {
    /// The scaling a decoder of `kind` trains well with: global for dense decoders; per
    /// feature for convolutional ones, which share their weights along the event and so
    /// cannot give each sample its own scale (under global scaling one learned nothing on
    /// OPIS: nMSE 1.00 at 64 bits).
    /// A PointNet encoder needs [`Scaling::Points`], which every point shares.
    pub const fn suited_to(
        encoder: latentlink_model::vae::EncoderKind,
        decoder: latentlink_model::vae::DecoderKind,
    ) -> Self {
        use latentlink_model::vae::{DecoderKind, EncoderKind};
        match (encoder, decoder) {
            (EncoderKind::PointNet, _) => Self::Points,
            (_, DecoderKind::Mlp) => Self::Global,
            (_, DecoderKind::Conv) => Self::PerFeature,
        }
    }

    /// The normalisation of this kind fitted on `events` of layout `shape`.
    pub fn fit(self, events: &Array2<f32>, shape: EventShape) -> Normalisation {
        match self {
            Self::Points => Normalisation::fit_points(events, shape.length),
            Self::PerFeature => Normalisation::fit(events),
            Self::Global => Normalisation::fit_global(events),
            Self::Poisson => Normalisation::fit_poisson(events),
            Self::None => Normalisation {
                mean: vec![0.0; events.ncols()],
                std: vec![1.0; events.ncols()],
            },
        }
    }
}

impl std::str::FromStr for Scaling {
    type Err = latentlink_model::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [
            ("feature", Self::PerFeature),
            ("global", Self::Global),
            ("poisson", Self::Poisson),
            ("none", Self::None),
            ("points", Self::Points),
        ];
        latentlink_model::vae::UnknownName::pick("scaling", name, &choices)
    }
}

/// A capacity schedule: target KL (nats per event) rising linearly over some epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Final target KL per event (nats).
    pub max_nats: f64,
    /// Epochs to reach it.
    pub epochs: usize,
}

impl Capacity {
    /// Target KL at `epoch` (from 1).
    pub fn at(&self, epoch: usize) -> f64 {
        self.max_nats * (epoch as f64 / self.epochs.max(1) as f64).min(1.0)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            head: HeadKind::Binary,
            // Each deterministic bit costs a few nats of KL against the Beta(0.01, 0.01)
            // prior; at β = 1 that outweighs what a bit buys in reconstruction of a
            // ~1000-sample event and the code collapses. β = 0.02 on OPIS (4 × 256) beats PCA
            // at 128 bits with 99.6 % int8/float bit agreement (see the trainer README).
            beta: 0.0025,
            warmup_epochs: 5,
            alpha: 0.01,
            epochs: 400,
            patience: 16,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 1,
            capacity: None,
            plateau_epochs: 5,
            straight_through: true,
            bit_usage_weight: 0.0,
            scaling: Scaling::Global,
            likelihood: Likelihood::Calibrated,
            fine_tune_epochs: 40,
            point_weight: None,
        }
    }
}

/// Losses of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// KL weight used.
    pub beta: f64,
    /// Mean training reconstruction term per event.
    pub train_reconstruction: f64,
    /// Mean training KL per event.
    pub train_kl: f64,
    /// Validation normalised MSE from sampled latents.
    pub validation_nmse: f64,
    /// Validation normalised MSE from the deployed codes (binary bits, or Gaussian means).
    pub validation_code_nmse: f64,
    /// Validation KL per event.
    pub validation_kl: f64,
    /// Learning rate used.
    #[serde(default)]
    pub learning_rate: f64,
    /// Wall time of the epoch (s).
    pub seconds: f64,
}

/// What happened during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingLog {
    /// One entry per epoch run.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// Why training stopped without a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; lower the learning rate (--learning-rate) or check the data for outliers"
    )]
    NonFinite {
        /// Epoch, from 1.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The value.
        value: f64,
    },
    /// The training or validation set is empty or has the wrong width.
    #[error("{what} has {found} features per event, the model takes {expected}")]
    Width {
        /// Which set.
        what: &'static str,
        /// Model width.
        expected: usize,
        /// Data width.
        found: usize,
    },
    /// A checkpoint could not be written.
    #[error("cannot write checkpoint {path}: {source}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: burn::store::RecordError,
    },
    /// A training option is out of its range (e.g. a batch size of 0).
    #[error("training option {option} = {value} is not {wanted}")]
    Option {
        /// The option, as the `TrainConfig` field.
        option: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        wanted: &'static str,
    },
    /// The energy-weighted Sinkhorn loss was asked for without the scaling of the points'
    /// weight feature or a model that floors it (the pipeline sets both; a caller of
    /// [`train`] must too).
    #[error(
        "--likelihood sinkhorn-weighted needs the scaling of the points' weight feature (TrainConfig::point_weight, e.g. WeightScaling::of(&normalisation, features)) with a finite, positive spread, and a decoder that keeps the weights at or above zero (VaeConfig::point_weight_floor, WeightScaling::floor)"
    )]
    MissingPointWeight,
    /// The likelihood does not fit the model's output: the Bernoulli likelihood needs a
    /// sigmoid output, the Gaussian ones a linear output.
    #[error(
        "the {likelihood:?} likelihood needs a decoder with {wanted} output; train with --likelihood bernoulli for a sigmoid output, another likelihood for a linear one"
    )]
    OutputMismatch {
        /// The likelihood asked for.
        likelihood: Likelihood,
        /// The output it needs.
        wanted: &'static str,
    },
    /// The Bernoulli likelihood was asked for events that are not probabilities.
    #[error(
        "the bernoulli likelihood needs events in [0, 1] (pixels on or off), but the {what} range from {min} to {max}; use another --likelihood"
    )]
    NotProbabilities {
        /// Which set.
        what: &'static str,
        /// Its smallest value.
        min: f32,
        /// Its largest value.
        max: f32,
    },
    /// A tensor could not be read back from the backend.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

impl TrainConfig {
    /// Checks the options the loop divides by or steps with, so that a nonsense value is an
    /// error naming it rather than a panic or a loss of NaN epochs later.
    ///
    /// # Errors
    /// [`TrainError::Option`] naming the first option out of range.
    pub fn check(&self) -> Result<(), TrainError> {
        let counts = [
            ("batch_size", self.batch_size),
            ("epochs", self.epochs),
            ("patience", self.patience),
        ];
        for (option, value) in counts {
            if value == 0 {
                return Err(TrainError::Option {
                    option,
                    value: 0.0,
                    wanted: "at least 1",
                });
            }
        }
        let weights = [
            ("beta", self.beta, false),
            ("bit_usage_weight", self.bit_usage_weight, false),
            ("learning_rate", self.learning_rate, true),
        ];
        for (option, value, positive) in weights {
            let in_range = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
            if !in_range {
                let wanted = if positive {
                    "a finite number above 0"
                } else {
                    "a finite number of at least 0"
                };
                return Err(TrainError::Option {
                    option,
                    value,
                    wanted,
                });
            }
        }
        let weight_scaled = self.point_weight.is_some_and(|weight| {
            weight.mean.is_finite() && weight.std.is_finite() && weight.std > 0.0
        });
        if self.likelihood == Likelihood::SinkhornWeighted && !weight_scaled {
            return Err(TrainError::MissingPointWeight);
        }
        Ok(())
    }

    /// The mean loss of a batch from `model`'s decoder output before its final activation
    /// ([`Vae::decode_logits`]): [`Likelihood::loss`] of the logits or the reconstruction,
    /// whichever the likelihood reads.
    fn loss(&self, model: &Vae, logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let output = match self.likelihood {
            Likelihood::Bernoulli => logits,
            _ => model.activate(logits),
        };
        self.likelihood
            .loss(output, target, model.shape(), self.point_weight)
    }

    /// [`Likelihood::error`] with this configuration's point weight scaling.
    ///
    /// # Errors
    /// [`TensorError`] if the weighted transport's tensors cannot be read back.
    fn validation_error(
        &self,
        truth: &Array2<f32>,
        estimate: &Array2<f32>,
        shape: EventShape,
    ) -> Result<f64, TensorError> {
        self.likelihood
            .error(truth, estimate, shape, self.point_weight)
    }
}

/// Checks that the likelihood fits the model's output (a sigmoid for the Bernoulli
/// likelihood, a floor on the points' weight for the energy-weighted transport) and, for
/// the Bernoulli likelihood, that every named event set holds probabilities.
fn check_output(
    model: &Vae,
    likelihood: Likelihood,
    sets: [(&'static str, &Array2<f32>); 2],
) -> Result<(), TrainError> {
    if likelihood == Likelihood::SinkhornWeighted && model.point_weight_floor.is_none() {
        return Err(TrainError::MissingPointWeight);
    }
    let bernoulli = likelihood == Likelihood::Bernoulli;
    if model.sigmoid_output != bernoulli {
        let wanted = if bernoulli { "a sigmoid" } else { "a linear" };
        return Err(TrainError::OutputMismatch { likelihood, wanted });
    }
    if bernoulli {
        for (what, data) in sets {
            // NaN is in no range, so it is refused too.
            if !data.iter().all(|v| (0.0..=1.0).contains(v)) {
                let (min, max) = data
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                return Err(TrainError::NotProbabilities { what, min, max });
            }
        }
    }
    Ok(())
}

/// Normalised MSE: mean squared error over the mean squared deviation of `truth` from its
/// per-feature mean (1.0 = as good as predicting the mean event).
pub fn nmse(truth: &Array2<f32>, estimate: &Array2<f32>) -> f64 {
    let spread = squared_spread(truth);
    let error = squared_error(truth, estimate);
    if spread > 0.0 { error / spread } else { error }
}

/// Mean squared error per sample, in the units of `truth`.
pub fn mse(truth: &Array2<f32>, estimate: &Array2<f32>) -> f64 {
    squared_error(truth, estimate) / truth.len().max(1) as f64
}

fn squared_error(truth: &Array2<f32>, estimate: &Array2<f32>) -> f64 {
    truth
        .iter()
        .zip(estimate.iter())
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum()
}

/// Sum over events of the squared distance from the mean event: the error of reconstructing
/// every event as the mean, which normalises [`nmse`].
pub fn squared_spread(truth: &Array2<f32>) -> f64 {
    let mean = truth
        .mean_axis(Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(truth.ncols()));
    truth
        .rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(a, m)| f64::from(a - m).powi(2))
                .sum::<f64>()
        })
        .sum()
}

/// Validation metrics of `model` on normalised `data`, in batches: the likelihood's error
/// ([`Likelihood::error`]) of sampled reconstructions and of reconstructions from the codes,
/// and the mean KL.
fn validate(
    model: &Vae,
    data: &Array2<f32>,
    config: &TrainConfig,
    device: &Device,
) -> Result<(f64, f64, f64), TensorError> {
    let mut sampled = Array2::zeros(data.dim());
    let mut from_codes = Array2::zeros(data.dim());
    let mut kl_sum = 0.0;
    let mut start = 0;
    for chunk in data.axis_chunks_iter(Axis(0), 512) {
        let x = to_tensor(&chunk.to_owned(), device);
        let (posterior, sample, logits) =
            model.forward(x, config.head, config.alpha, config.straight_through);
        kl_sum += f64::from(sample.kl.sum().into_scalar::<f32>());
        let codes = match config.head {
            HeadKind::Binary => latent::binarise(posterior.mu),
            HeadKind::Gaussian => posterior.mu,
        };
        let end = start + chunk.nrows();
        sampled
            .slice_mut(ndarray::s![start..end, ..])
            .assign(&to_array(model.activate(logits))?);
        from_codes
            .slice_mut(ndarray::s![start..end, ..])
            .assign(&to_array(model.decode(codes))?);
        start = end;
    }
    let shape = model.shape();
    Ok((
        config.validation_error(data, &sampled, shape)?,
        config.validation_error(data, &from_codes, shape)?,
        kl_sum / data.nrows().max(1) as f64,
    ))
}

/// Trains `model` (built on an autodiff device) on normalised events and returns the best
/// model by validation metric, on the inference device, with the log.
///
/// # Errors
/// [`TrainError`] if a loss turns non-finite, the data has the wrong width, or the
/// checkpoint cannot be written.
pub fn train(
    mut model: Vae,
    config: &TrainConfig,
    train: &Array2<f32>,
    validation: &Array2<f32>,
    device: &Device,
    checkpoint: Option<PathBuf>,
    progress: bool,
) -> Result<(Vae, TrainingLog), TrainError> {
    config.check()?;
    let features = model.decoder.last().map_or(0, |l| l.weight.dims()[1]);
    for (what, data) in [("training data", train), ("validation data", validation)] {
        if data.ncols() != features || data.nrows() == 0 {
            return Err(TrainError::Width {
                what,
                expected: features,
                found: data.ncols(),
            });
        }
    }
    check_output(
        &model,
        config.likelihood,
        [
            ("training events", train),
            ("validation events", validation),
        ],
    )?;
    let inference_device = device.clone().without_autodiff();
    let mut optimizer = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let steps = train.nrows().div_ceil(config.batch_size);
    let bar = if progress {
        ProgressBar::new(config.epochs as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} (at most {eta} left) [{bar:20}] epoch {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut log = TrainingLog {
        epochs: Vec::new(),
        best_epoch: 0,
        stopped_early: false,
    };
    let mut best: Option<(f64, Vae)> = None;
    let mut order: Vec<usize> = (0..train.nrows()).collect();
    let mut schedule = PlateauSchedule::new(config);
    let latents = model.mu.weight.dims()[1];
    let shape = model.shape();
    let full_weight_epoch = config
        .warmup_epochs
        .max(config.capacity.map_or(0, |capacity| capacity.epochs));
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let beta = if config.warmup_epochs == 0 {
            config.beta
        } else {
            config.beta * (epoch as f64 / config.warmup_epochs as f64).min(1.0)
        };
        let kl_weight = config.likelihood.kl_weight(beta, features, latents);
        order.shuffle(&mut rng);
        let (mut reconstruction_sum, mut kl_sum) = (0.0, 0.0);
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let x = to_tensor(&train.select(Axis(0), batch), device);
            let (posterior, sample, logits) = model.forward(
                x.clone(),
                config.head,
                config.alpha,
                config.straight_through,
            );
            // Logged in one unit whatever the likelihood: half the squared error per event.
            let reconstruction_loss =
                Likelihood::Unit.loss(model.activate(logits.clone()), x.clone(), shape, None);
            let kl = sample.kl.mean();
            let kl_term = match config.capacity {
                Some(capacity) => kl.clone().sub_scalar(capacity.at(epoch)).abs(),
                None => kl.clone(),
            };
            let mut loss = config.loss(&model, logits, x) + kl_term.mul_scalar(kl_weight);
            if config.head == HeadKind::Binary && config.bit_usage_weight > 0.0 {
                loss = loss
                    + latent::bit_usage_penalty(posterior.mu, posterior.log_sigma)
                        .mul_scalar(config.bit_usage_weight);
            }
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(TrainError::NonFinite { epoch, step, value });
            }
            reconstruction_sum +=
                f64::from(reconstruction_loss.into_scalar::<f32>()) * batch.len() as f64;
            kl_sum += f64::from(kl.into_scalar::<f32>()) * batch.len() as f64;
            let gradients = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(schedule.learning_rate, model, gradients);
        }
        bar.inc(1);
        let valid_model = model.valid();
        let (validation_nmse, validation_code_nmse, validation_kl) =
            validate(&valid_model, validation, config, &inference_device)?;
        let n = train.nrows() as f64;
        let stats = EpochStats {
            epoch,
            beta,
            train_reconstruction: reconstruction_sum / n,
            train_kl: kl_sum / n,
            validation_nmse,
            validation_code_nmse,
            validation_kl,
            learning_rate: schedule.learning_rate,
            seconds: started.elapsed().as_secs_f64(),
        };
        bar.set_message(format!(
            "loss {:.2} KL {:.1} (β {beta:.2}, lr {:.1e}) | val nMSE {:.4}, from codes {:.4}",
            stats.train_reconstruction,
            stats.train_kl,
            stats.learning_rate,
            validation_nmse,
            validation_code_nmse
        ));
        tracing::info!(?stats, "epoch done");
        let metric = match config.head {
            HeadKind::Binary => validation_code_nmse,
            // The objective trained on: with a capacity, the KL's distance from its target.
            HeadKind::Gaussian => {
                let kl = match config.capacity {
                    Some(capacity) => (validation_kl - capacity.at(epoch)).abs(),
                    None => validation_kl,
                };
                validation_nmse + kl_weight * kl / features as f64
            }
        };
        if !metric.is_finite() {
            return Err(TrainError::NonFinite {
                epoch,
                step: steps,
                value: metric,
            });
        }
        log.epochs.push(stats);
        // Only models trained at the full KL weight (and the full capacity) count as
        // candidates: one from before would be chosen for the information it may no longer
        // spend.
        let eligible = epoch >= full_weight_epoch;
        if eligible && best.as_ref().is_none_or(|(m, _)| metric < *m) {
            if let Some(path) = &checkpoint {
                valid_model
                    .clone()
                    .save_file(path)
                    .map_err(|source| TrainError::Checkpoint {
                        path: path.clone(),
                        source,
                    })?;
            }
            // Improvements under 0.1 % do not reset the plateau count, so a slow crawl
            // still lowers the learning rate.
            if best.as_ref().is_none_or(|(m, _)| metric < 0.999 * m) {
                schedule.improved(epoch);
            }
            best = Some((metric, valid_model));
            log.best_epoch = epoch;
        } else if eligible && epoch - log.best_epoch.max(full_weight_epoch) >= config.patience {
            log.stopped_early = true;
            break;
        }
        if eligible {
            schedule.end_of_epoch(epoch);
        }
    }
    bar.finish();
    let model = match best {
        Some((_, model)) => model,
        None => model.valid(),
    };
    Ok((model, log))
}

/// What decoder fine-tuning on the deployed codes did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneLog {
    /// Validation nMSE (scaled units) from the int8 codes after each epoch; entry 0 is the
    /// decoder as training left it.
    pub validation_code_nmse: Vec<f64>,
    /// The epoch whose decoder was kept (0: fine-tuning did not improve it).
    pub best_epoch: usize,
}

/// Codes and the normalised events they stand for.
#[derive(Debug, Clone, Copy)]
pub struct CodedEvents<'a> {
    /// One row of 0/1 bits per event, as the runtime computed them.
    pub codes: &'a Array2<f32>,
    /// The normalised events.
    pub events: &'a Array2<f32>,
}

/// Fine-tunes the decoder of `model` on the codes the int8 runtime computes (which differ
/// from the float encoder's in a fraction of a percent of bits, and those are the bits the
/// host will decode). The encoder is frozen: it is not in the graph, so the blob and its
/// golden codes stay valid. The learning rate is a tenth of training's; the best decoder by
/// validation nMSE from the int8 codes is kept, the untouched one included, so it never gets
/// worse on validation.
///
/// `architecture` rebuilds the model on the autodiff `device` before the record is loaded.
///
/// # Errors
/// [`TrainError`] if a loss turns non-finite or a tensor cannot be read back.
pub fn fine_tune_decoder(
    model: Vae,
    architecture: &latentlink_model::VaeConfig,
    config: &TrainConfig,
    train: CodedEvents<'_>,
    validation: CodedEvents<'_>,
    device: &Device,
) -> Result<(Vae, FineTuneLog), TrainError> {
    config.check()?;
    let inference_device = device.clone().without_autodiff();
    let shape = model.shape();
    let validation_nmse = |model: &Vae| -> Result<f64, TensorError> {
        let decoded = model.decode(to_tensor(validation.codes, &inference_device));
        config.validation_error(validation.events, &to_array(decoded)?, shape)
    };
    let mut log = FineTuneLog {
        validation_code_nmse: vec![validation_nmse(&model)?],
        best_epoch: 0,
    };
    if config.head != HeadKind::Binary || config.fine_tune_epochs == 0 {
        return Ok((model, log));
    }
    let mut best = (log.validation_code_nmse[0], model.clone());
    let mut trainable = architecture.init(device).load_record(model.into_record());
    let mut optimizer = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..train.events.nrows()).collect();
    let learning_rate = config.learning_rate / 10.0;
    for epoch in 1..=config.fine_tune_epochs {
        order.shuffle(&mut rng);
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let codes = to_tensor(&train.codes.select(Axis(0), batch), device);
            let x = to_tensor(&train.events.select(Axis(0), batch), device);
            let loss = config.loss(&trainable, trainable.decode_logits(codes), x);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(TrainError::NonFinite { epoch, step, value });
            }
            let gradients = GradientsParams::from_grads(loss.backward(), &trainable);
            trainable = optimizer.step(learning_rate, trainable, gradients);
        }
        let candidate = trainable.valid();
        let metric = validation_nmse(&candidate)?;
        log.validation_code_nmse.push(metric);
        tracing::info!(epoch, validation_code_nmse = metric, "decoder fine-tuning");
        if metric < best.0 {
            best = (metric, candidate);
            log.best_epoch = epoch;
        } else if epoch - log.best_epoch >= config.patience.clamp(1, 5) {
            break;
        }
    }
    Ok((best.1, log))
}

/// Reduce-on-plateau: the learning rate halves after `plateau_epochs` epochs (counted from
/// the end of the KL warm-up) without a significant improvement of the validation metric.
#[derive(Debug, Clone, Copy)]
struct PlateauSchedule {
    learning_rate: f64,
    plateau_epochs: usize,
    warmup_epochs: usize,
    last_improvement: usize,
}

impl PlateauSchedule {
    const fn new(config: &TrainConfig) -> Self {
        Self {
            learning_rate: config.learning_rate,
            plateau_epochs: config.plateau_epochs,
            warmup_epochs: config.warmup_epochs,
            last_improvement: 0,
        }
    }

    /// `epoch` improved the best validation metric significantly.
    const fn improved(&mut self, epoch: usize) {
        self.last_improvement = epoch;
    }

    /// Halves the learning rate if the metric has stalled for `plateau_epochs` by the end
    /// of `epoch` (then the count starts again).
    fn end_of_epoch(&mut self, epoch: usize) {
        let since = epoch.saturating_sub(self.last_improvement.max(self.warmup_epochs));
        if self.plateau_epochs > 0 && since >= self.plateau_epochs {
            self.learning_rate *= 0.5;
            self.last_improvement = epoch;
            tracing::info!(
                epoch,
                learning_rate = self.learning_rate,
                "validation stalled: learning rate halved"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_learning_rate_halves_on_each_plateau_and_only_then() {
        let config = TrainConfig {
            learning_rate: 1e-3,
            plateau_epochs: 3,
            warmup_epochs: 2,
            ..TrainConfig::default()
        };
        let mut schedule = PlateauSchedule::new(&config);
        let mut rates = Vec::new();
        for epoch in 1..=12 {
            if epoch <= 4 {
                schedule.improved(epoch);
            }
            schedule.end_of_epoch(epoch);
            rates.push(schedule.learning_rate);
        }
        // Improving until epoch 4; stalled epochs 5, 6, 7 → halved after 7, then after 10.
        let expected = [
            1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4,
        ];
        assert_eq!(rates, expected);
        let constant = TrainConfig {
            plateau_epochs: 0,
            ..config
        };
        let mut schedule = PlateauSchedule::new(&constant);
        (1..=12).for_each(|epoch| schedule.end_of_epoch(epoch));
        assert_eq!(schedule.learning_rate, 1e-3);
    }

    #[test]
    fn the_calibrated_kl_weight_follows_features_per_latent() {
        assert_eq!(Likelihood::Unit.kl_weight(0.02, 1024, 128), 0.02);
        assert_eq!(Likelihood::Bernoulli.kl_weight(0.0025, 1024, 128), 0.0025);
        assert_eq!(Likelihood::Calibrated.kl_weight(0.0025, 1024, 128), 0.02);
        assert_eq!(Likelihood::Calibrated.kl_weight(0.0025, 64, 64), 0.0025);
    }

    #[test]
    fn the_bernoulli_likelihood_is_the_binary_cross_entropy_of_the_logits() {
        let device = Default::default();
        // p = ½ for a lit pixel (ln 2), p = ¾ for a dark one (ln 4): ln 8 for the event. A
        // logit of ±100 must cost 100 or nothing, not overflow.
        let logits = Tensor::<2>::from_floats([[0.0f32, 3f32.ln()], [100.0, -100.0]], &device);
        let targets = Tensor::<2>::from_floats([[1.0f32, 0.0], [0.0, 0.0]], &device);
        let loss = f64::from(
            Likelihood::Bernoulli
                .loss(
                    logits,
                    targets,
                    EventShape {
                        channels: 1,
                        length: 2,
                    },
                    None,
                )
                .into_scalar::<f32>(),
        );
        let expected = (8f64.ln() + 100.0) / 2.0;
        assert!((loss - expected).abs() < 1e-4, "{loss} vs {expected}");
    }

    #[test]
    fn the_calibrated_likelihood_ignores_the_data_scale() {
        let device = Default::default();
        // Squared errors 0.5, 2, 1 and 0.25, 1, 3: reconstructions at their roots from zeros.
        let errors = Tensor::<2>::from_floats([[0.5f32, 2.0, 1.0], [0.25, 1.0, 3.0]], &device);
        let loss = |likelihood: Likelihood, scale: f32| {
            let reconstructions = errors.clone().sqrt().mul_scalar(scale);
            let zeros = reconstructions.zeros_like();
            let shape = EventShape {
                channels: 1,
                length: 3,
            };
            f64::from(
                likelihood
                    .loss(reconstructions, zeros, shape, None)
                    .into_scalar::<f32>(),
            )
        };
        // Unit: ½ Σ per event, averaged; it grows with the scale squared.
        assert!((loss(Likelihood::Unit, 1.0) - 1.9375).abs() < 1e-5);
        assert!((loss(Likelihood::Unit, 10.0) - 193.75).abs() < 1e-2);
        // Calibrated: (D/2) ln mean; scaling by c only adds D ln c, a constant.
        let mean: f64 = (0.5 + 2.0 + 1.0 + 0.25 + 1.0 + 3.0) / 6.0;
        assert!((loss(Likelihood::Calibrated, 1.0) - 1.5 * mean.ln()).abs() < 1e-5);
        let shift = loss(Likelihood::Calibrated, 10.0) - loss(Likelihood::Calibrated, 1.0);
        assert!((shift - 3.0 * 10f64.ln()).abs() < 1e-4, "{shift}");
    }

    #[test]
    fn nmse_is_relative_to_the_mean_event() {
        let truth = array![[1.0f32, 2.0], [3.0, 6.0]];
        assert_eq!(nmse(&truth, &truth), 0.0);
        let mean = array![[2.0f32, 4.0], [2.0, 4.0]];
        assert!((nmse(&truth, &mean) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn capacity_rises_linearly_then_holds() {
        let c = Capacity {
            max_nats: 20.0,
            epochs: 4,
        };
        assert_eq!(
            [c.at(1), c.at(2), c.at(4), c.at(9)],
            [5.0, 10.0, 20.0, 20.0]
        );
    }
}
