//! β as a resolution scale. A Gaussian VAE trained at weight β on its KL keeps only the
//! structure of the events that is worth more than β per nat; raising β coarsens the
//! resolution at which events are told apart. Sweeping β and watching the KL (the
//! information the code keeps) gives
//!
//! ```text
//! D(β) = −dKL / d ln β      (nats per e-fold of β)
//! ```
//!
//! The models use the unit likelihood, a Gaussian decoder of fixed variance in scaled units,
//! with which β plays the part of that variance: a direction of the data whose variance
//! `λ` exceeds β is kept at a KL of about `½ ln(λ/β)`, one below it is dropped. So
//! `D ≈ ½ · #{λ > β}` and `2·D` reads as the number of dimensions the data have at
//! resolution β: large where β resolves fine detail (noise included), small where only the
//! coarse factors survive, falling in steps as factors drop out of the code. (With the
//! calibrated likelihood the decoder's variance follows the error reached, and the reading
//! fails: a first OPIS sweep gave "423 dimensions" from 32 latents.) With `Scaling::Poisson`
//! the scaled unit is each feature's shot noise, so β = 1 is the Poisson noise itself.
//!
//! [`beta_sweep`] trains one Gaussian VAE per β (same architecture, data, split and seed)
//! and measures, on the validation events, the KL, the reconstruction error from the
//! posterior mean in detector units, and the latents in use (mean KL above
//! [`ACTIVE_NATS`]); `D` comes from central differences in `ln β`.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::Events;
use crate::sweep::{Prepared, SweepError};
use crate::train::{self, Likelihood, TrainConfig, nmse};
use latentlink_model::Backend;
use latentlink_model::latent::HeadKind;
use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::vae::VaeConfig;

/// A latent whose mean KL over the validation events is above this (nats) is counted as in
/// use; a collapsed latent sits at its prior with a KL near 0.
pub const ACTIVE_NATS: f64 = 0.05;

/// One β of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BetaPoint {
    /// The KL weight.
    pub beta: f64,
    /// Mean KL per validation event, nats.
    pub kl_nats: f64,
    /// nMSE of the reconstruction from the posterior mean, detector units.
    pub nmse: f64,
    /// Latents with a mean KL above [`ACTIVE_NATS`].
    pub active_latents: usize,
    /// `−dKL/d ln β` at this β (nats per e-fold), from its neighbours; `None` with fewer
    /// than two points.
    pub dimension_rate: Option<f64>,
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct BetaSweepConfig {
    /// The KL weights, in any order (sorted before training).
    pub betas: Vec<f64>,
    /// Latents of the Gaussian head.
    pub latents: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Training settings; the head, the (unit) likelihood and β are set per model.
    pub train: TrainConfig,
    /// Compute backend.
    pub backend: Backend,
    /// Show progress bars.
    pub progress: bool,
}

/// Trains a Gaussian VAE at each β of `config` on `events` and measures it (see [the
/// module](self)).
///
/// # Errors
/// [`SweepError`] if a β is not positive, or splitting, training or reading back fails.
pub fn beta_sweep(events: &Events, config: &BetaSweepConfig) -> Result<Vec<BetaPoint>, SweepError> {
    if let Some(&bad) = config.betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(SweepError::Beta(bad));
    }
    let mut betas = config.betas.clone();
    betas.sort_by(f64::total_cmp);
    betas.dedup();
    let Prepared {
        split,
        normalisation,
        train: train_data,
        validation,
    } = Prepared::new(events, &config.train)?;
    let device = config.backend.training_device();
    let inference = config.backend.device();
    let architecture = VaeConfig::new(
        events.shape.channels,
        events.shape.length,
        config.latents,
        config.hidden.clone(),
    );
    architecture.validate()?;
    let mut points = Vec::with_capacity(betas.len());
    for &beta in &betas {
        tracing::info!(beta, "training a Gaussian VAE");
        let train_config = TrainConfig {
            head: HeadKind::Gaussian,
            beta,
            likelihood: Likelihood::Unit,
            ..config.train.clone()
        };
        device.seed(train_config.seed);
        let (model, _) = train::train(
            architecture.init(&device),
            &train_config,
            &train_data,
            &validation,
            &device,
            None,
            config.progress,
        )?;
        let posterior = model.encode(to_tensor(&validation, &inference));
        let mu = to_array(posterior.mu.clone())?;
        let log_sigma = to_array(posterior.log_sigma)?;
        let per_latent = mean_kl_per_latent(&mu, &log_sigma);
        let reconstruction = to_array(model.decode(posterior.mu))?;
        points.push(BetaPoint {
            beta,
            kl_nats: per_latent.iter().sum(),
            nmse: nmse(
                &split.validation.data,
                &normalisation.invert(&reconstruction),
            ),
            active_latents: per_latent.iter().filter(|&&kl| kl > ACTIVE_NATS).count(),
            dimension_rate: None,
        });
    }
    fill_dimension_rates(&mut points);
    Ok(points)
}

/// Mean over events of each latent's KL to N(0, 1), `½ (μ² + σ² − 1 − ln σ²)`.
fn mean_kl_per_latent(mu: &Array2<f32>, log_sigma: &Array2<f32>) -> Vec<f64> {
    let events = mu.nrows().max(1) as f64;
    (0..mu.ncols())
        .map(|k| {
            mu.column(k)
                .iter()
                .zip(log_sigma.column(k))
                .map(|(&m, &s)| {
                    let (m, s) = (f64::from(m), f64::from(s));
                    0.5 * (m * m + (2.0 * s).exp() - 1.0 - 2.0 * s)
                })
                .sum::<f64>()
                / events
        })
        .collect()
}

/// `−dKL/d ln β` at each point (sorted by β) from its neighbours: central differences
/// inside, one-sided at the ends.
fn fill_dimension_rates(points: &mut [BetaPoint]) {
    let count = points.len();
    if count < 2 {
        return;
    }
    let slopes: Vec<Option<f64>> = (0..count)
        .map(|i| {
            let (a, b) = (i.saturating_sub(1), (i + 1).min(count - 1));
            let run = points[b].beta.ln() - points[a].beta.ln();
            (run > 0.0).then(|| -(points[b].kl_nats - points[a].kl_nats) / run)
        })
        .collect();
    for (point, slope) in points.iter_mut().zip(slopes) {
        point.dimension_rate = slope;
    }
}

/// The sweep as a Markdown table.
pub fn markdown(dataset: &str, latents: usize, points: &[BetaPoint]) -> String {
    let mut md = format!(
        "# β as resolution: {dataset}, Gaussian VAE with {latents} latents\n\n\
         | β | KL (nats) | D = −dKL/d ln β | ≈ dimensions (2D) | latents in use | nMSE, detector units |\n\
         |---|---|---|---|---|---|\n"
    );
    for p in points {
        let (rate, dimensions) = p.dimension_rate.map_or_else(
            || ("–".to_owned(), "–".to_owned()),
            |d| (format!("{d:.2}"), format!("{:.1}", 2.0 * d)),
        );
        md += &format!(
            "| {:.3e} | {:.2} | {rate} | {dimensions} | {} | {:.4} |\n",
            p.beta, p.kl_nats, p.active_latents, p.nmse
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(beta: f64, kl_nats: f64) -> BetaPoint {
        BetaPoint {
            beta,
            kl_nats,
            nmse: 0.0,
            active_latents: 0,
            dimension_rate: None,
        }
    }

    #[test]
    fn the_rate_is_the_kl_lost_per_e_fold_of_beta() {
        // KL = 3 ln(1/β): D = 3 everywhere, "6 dimensions".
        let mut points: Vec<BetaPoint> = [1e-3, 1e-2, 1e-1]
            .iter()
            .map(|&b: &f64| point(b, -3.0 * b.ln()))
            .collect();
        fill_dimension_rates(&mut points);
        for p in &points {
            assert!((p.dimension_rate.unwrap() - 3.0).abs() < 1e-9, "{p:?}");
        }
        assert!(markdown("toy", 4, &points).contains("| 6.0 |"));
        let mut single = vec![point(1.0, 2.0)];
        fill_dimension_rates(&mut single);
        assert_eq!(single[0].dimension_rate, None);
    }

    #[test]
    fn kl_of_the_prior_is_zero_and_of_a_sharp_latent_is_positive() {
        let mu = ndarray::array![[0.0f32, 2.0], [0.0, -2.0]];
        let log_sigma = ndarray::array![[0.0f32, -2.0], [0.0, -2.0]];
        let kl = mean_kl_per_latent(&mu, &log_sigma);
        assert!(kl[0].abs() < 1e-12);
        // ½(4 + e^-4 − 1 + 4) = 3.509.
        assert!((kl[1] - 0.5 * (7.0 + (-4f64).exp())).abs() < 1e-6, "{kl:?}");
    }
}
