//! The training loop: Adam, KL warm-up, validation every epoch, early stopping on the metric
//! that matters for deployment, best-model checkpoints, and a stop with a clear message if a
//! loss turns NaN or infinite.
//!
//! Loss per event: `½ Σ (x − x̂)²` over normalised features (a unit-variance Gaussian
//! likelihood) plus `β_t · KL`, with `β_t` rising linearly from 0 to β over the warm-up
//! epochs so the code first learns to carry information and only then is pushed towards the
//! prior. For the binary head the validation metric is the normalised MSE of reconstructions
//! from the *binary codes* (what the host will decode); for the Gaussian head it is the loss.

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

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Latent head.
    pub head: HeadKind,
    /// KL weight after warm-up.
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
            beta: 0.02,
            warmup_epochs: 5,
            alpha: 0.01,
            epochs: 60,
            patience: 6,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 1,
            capacity: None,
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
    /// A tensor could not be read back from the backend.
    #[error(transparent)]
    Tensor(#[from] TensorError),
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

/// Validation metrics of `model` on normalised `data`, in batches.
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
        let (posterior, sample, reconstruction) = model.forward(x, config.head, config.alpha);
        kl_sum += f64::from(sample.kl.sum().into_scalar::<f32>());
        let codes = match config.head {
            HeadKind::Binary => latent::binarise(posterior.mu),
            HeadKind::Gaussian => posterior.mu,
        };
        let end = start + chunk.nrows();
        sampled
            .slice_mut(ndarray::s![start..end, ..])
            .assign(&to_array(reconstruction)?);
        from_codes
            .slice_mut(ndarray::s![start..end, ..])
            .assign(&to_array(model.decode(codes))?);
        start = end;
    }
    Ok((
        nmse(data, &sampled),
        nmse(data, &from_codes),
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
    let inference_device = device.clone().without_autodiff();
    let mut optimizer = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let steps = train.nrows().div_ceil(config.batch_size);
    let bar = if progress {
        ProgressBar::new((steps * config.epochs) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] epoch {msg}")
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
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let beta = if config.warmup_epochs == 0 {
            config.beta
        } else {
            config.beta * (epoch as f64 / config.warmup_epochs as f64).min(1.0)
        };
        order.shuffle(&mut rng);
        let (mut reconstruction_sum, mut kl_sum) = (0.0, 0.0);
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let x = to_tensor(&train.select(Axis(0), batch), device);
            let (_, sample, reconstruction) = model.forward(x.clone(), config.head, config.alpha);
            let reconstruction_loss = (reconstruction - x)
                .powi_scalar(2)
                .sum_dim(1)
                .mul_scalar(0.5)
                .mean();
            let kl = sample.kl.mean();
            let kl_term = match config.capacity {
                Some(capacity) => kl.clone().sub_scalar(capacity.at(epoch)).abs(),
                None => kl.clone(),
            };
            let loss = reconstruction_loss.clone() + kl_term.mul_scalar(beta);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(TrainError::NonFinite { epoch, step, value });
            }
            reconstruction_sum +=
                f64::from(reconstruction_loss.into_scalar::<f32>()) * batch.len() as f64;
            kl_sum += f64::from(kl.into_scalar::<f32>()) * batch.len() as f64;
            let gradients = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, gradients);
            bar.inc(1);
        }
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
            seconds: started.elapsed().as_secs_f64(),
        };
        bar.set_message(format!(
            "{epoch}/{}: recon {:.2} KL {:.1} (β {beta:.2}) | val nMSE {:.4}, from codes {:.4}",
            config.epochs,
            stats.train_reconstruction,
            stats.train_kl,
            validation_nmse,
            validation_code_nmse
        ));
        tracing::info!(?stats, "epoch done");
        let metric = match config.head {
            HeadKind::Binary => validation_code_nmse,
            HeadKind::Gaussian => validation_nmse + beta * validation_kl / features as f64,
        };
        if !metric.is_finite() {
            return Err(TrainError::NonFinite {
                epoch,
                step: steps,
                value: metric,
            });
        }
        log.epochs.push(stats);
        // Only models trained at the full KL weight count as candidates.
        let eligible = epoch >= config.warmup_epochs;
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
            best = Some((metric, valid_model));
            log.best_epoch = epoch;
        } else if eligible && epoch - log.best_epoch.max(config.warmup_epochs) >= config.patience {
            log.stopped_early = true;
            break;
        }
    }
    bar.finish();
    let model = match best {
        Some((_, model)) => model,
        None => model.valid(),
    };
    Ok((model, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
