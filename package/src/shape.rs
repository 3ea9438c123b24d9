//! What the encoder reads: the layout of one event and the normalisation fitted on the
//! training data, both stored in the manifest so the front-end applies exactly what training
//! saw.

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

/// The layout of one event: `channels × length`, channel-major (the layout the runtime's
/// input layer reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventShape {
    /// Channels (1 for flat events).
    pub channels: usize,
    /// Samples per channel.
    pub length: usize,
}

impl EventShape {
    /// Samples per event.
    pub const fn features(self) -> usize {
        self.channels * self.length
    }
}

/// Per-feature standardisation `(x − mean) / std`, fitted on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Standard deviation of each feature, floored (see [`Normalisation::fit`]).
    pub std: Vec<f32>,
}

impl Normalisation {
    /// Fits on events `[N, D]`. A feature that never varies would divide by zero; its std is
    /// floored at 1 % of the mean std over features (or 1 if every feature is constant).
    pub fn fit(events: &Array2<f32>) -> Self {
        let mean = events
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(events.ncols()));
        let std = events.std_axis(Axis(0), 0.0);
        let typical = std.mean().unwrap_or(0.0);
        let floor = if typical > 0.0 { 0.01 * typical } else { 1.0 };
        Self {
            mean: mean.to_vec(),
            std: std.mapv(|s| s.max(floor)).to_vec(),
        }
    }

    /// Fits on events `[N, D]` with one scale for every feature: per-feature means, and the
    /// root-mean-square deviation over all features as the one std. A loss in these units is
    /// the squared error in detector units, so training spends its effort where the signal
    /// is, not on noise-only samples or pixels that are almost never lit (which per-feature
    /// z-scores blow up).
    pub fn fit_global(events: &Array2<f32>) -> Self {
        let per_feature = Self::fit(events);
        let variance = events.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
        let scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
        Self {
            mean: per_feature.mean,
            std: vec![scale; events.ncols()],
        }
    }

    /// Fits on events `[N, D]` of counts (photons, electrons: quanta) with each feature's
    /// shot noise as its scale: per-feature means, and `√max(mean, 1)` as the std, a
    /// Poisson count's standard deviation (at least one count's, so a feature almost never
    /// hit is not weighted without bound). A squared error in these units is a χ² against
    /// the shot noise: every feature's error counts relative to the noise it has anyway.
    pub fn fit_poisson(events: &Array2<f32>) -> Self {
        let mean = events
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(events.ncols()));
        Self {
            std: mean.iter().map(|m| m.max(1.0).sqrt()).collect(),
            mean: mean.to_vec(),
        }
    }

    /// Fits on point clouds, events `[N, points · features]` point-major, with one mean and
    /// std per point feature (x, y, energy...) over every point of every event, repeated
    /// for each point: a scaling that does not depend on a point's place in the event, so an
    /// encoder that ignores the order of the points (PointNet) still does after it. Column
    /// `c` is feature `c % features`; stds are floored as in [`Normalisation::fit`].
    pub fn fit_points(events: &Array2<f32>, features: usize) -> Self {
        let features = features.max(1);
        let (mut sum, mut squares, mut count) = (
            vec![0f64; features],
            vec![0f64; features],
            vec![0f64; features],
        );
        for row in events.rows() {
            for (c, &x) in row.iter().enumerate() {
                let f = c % features;
                sum[f] += f64::from(x);
                squares[f] += f64::from(x) * f64::from(x);
                count[f] += 1.0;
            }
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&count)
            .map(|(s, n)| s / n.max(1.0))
            .collect();
        let std: Vec<f64> = squares
            .iter()
            .zip(&count)
            .zip(&mean)
            .map(|((q, n), m)| (q / n.max(1.0) - m * m).max(0.0).sqrt())
            .collect();
        let typical = std.iter().sum::<f64>() / features as f64;
        let floor = if typical > 0.0 { 0.01 * typical } else { 1.0 };
        let repeat = |values: &[f64]| -> Vec<f32> {
            values
                .iter()
                .map(|&v| v as f32)
                .cycle()
                .take(events.ncols())
                .collect()
        };
        Self {
            mean: repeat(&mean),
            std: repeat(&std.iter().map(|s| s.max(floor)).collect::<Vec<_>>()),
        }
    }

    /// Normalised copy of `data`.
    pub fn apply(&self, data: &Array2<f32>) -> Array2<f32> {
        let mut out = data.clone();
        for mut row in out.rows_mut() {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
        out
    }

    /// Back to detector units.
    pub fn invert(&self, data: &Array2<f32>) -> Array2<f32> {
        let mut out = data.clone();
        for mut row in out.rows_mut() {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = *x * s + m;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_scaling_is_the_same_for_every_point() {
        // Two events of two points (x, E).
        let events = ndarray::array![[1.0, 10.0, 3.0, 30.0], [5.0, 50.0, 7.0, 70.0]];
        let scaling = Normalisation::fit_points(&events, 2);
        assert_eq!(scaling.mean, vec![4.0, 40.0, 4.0, 40.0]);
        let std = 5f32.sqrt();
        for (found, expected) in scaling.std.iter().zip([std, 10.0 * std, std, 10.0 * std]) {
            assert!(
                (found - expected).abs() < 1e-5 * expected,
                "{found} vs {expected}"
            );
        }
    }

    #[test]
    fn poisson_scaling_is_each_features_shot_noise_at_least_one_count() {
        // Means 100, 4, 0.5 and 0 counts.
        let events = ndarray::array![[90.0, 2.0, 0.0, 0.0], [110.0, 6.0, 1.0, 0.0]];
        let events = ndarray::concatenate![Axis(0), events, events];
        let scaling = Normalisation::fit_poisson(&events);
        assert_eq!(scaling.mean, vec![100.0, 4.0, 0.5, 0.0]);
        assert_eq!(scaling.std, vec![10.0, 2.0, 1.0, 1.0]);
        // A 20-count miss in the peak weighs as much as a 4-count miss where 4 are expected.
        let errors = scaling.apply(&ndarray::array![[120.0, 8.0, 0.5, 0.0]]);
        assert_eq!(errors.row(0).to_vec(), vec![2.0, 2.0, 0.0, 0.0]);
    }
}
