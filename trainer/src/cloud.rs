//! Point clouds: the Chamfer distance as a training loss (burn tensors) and as a metric
//! (ndarray), for events stored as `points × features`, point-major.
//!
//! # Clouds with fewer points than the event holds
//!
//! An event has a fixed number of point slots. A cloud with fewer points fills the rest with
//! copies of one of its points ("duplicate padding"): the max over points that PointNet pools
//! with is then the max over the real points, so the front-end needs no mask. The metrics
//! here read a cloud as the *set* of its distinct points: a point repeated `m` times weighs
//! `1/m`, so padding does not count.
//!
//! # Chamfer distance
//!
//! For a reconstruction `X̂` and a cloud `Y`, with `d(a, b) = ‖a − b‖²`:
//!
//! ```text
//! CD(X̂, Y) = mean over x̂ ∈ X̂ of min_y d(x̂, y)  +  mean over y ∈ Y of min_x̂ d(x̂, y)
//! ```
//!
//! The first term keeps every reconstructed point near the cloud, the second leaves no point
//! of the cloud without a reconstructed one near it.
//!
//! # Beyond the Chamfer distance
//!
//! - [`sinkhorn_loss`] and [`weighted_sinkhorn_loss`]: entropic optimal transport as a
//!   training loss, with every point of equal mass or, for the second, with each point's
//!   weight as its mass (the energy mover's distance).
//! - [`emd`]: the exact earth mover's distance between clouds of equal size (every point of
//!   mass `1/n`), by optimal assignment (Kuhn–Munkres).
//! - [`Observables`]: what a physicist computes from a cloud, taking the **last feature as
//!   each point's weight** (energy, pT): the total weight and the weighted centroid of the
//!   other features, in detector units.
//! - [`LeadingPoints`]: the classical baseline at equal bits, the highest-weight points
//!   with every feature quantised uniformly.
//! - [`CloudReport`]: all of them for a model's reconstructions against the baseline's.

use burn::prelude::*;
use latentlink_model::tensor::{TensorError, to_tensor};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;
use serde::{Deserialize, Serialize};

/// Squared distances between every point of `a` and every point of `b`.
///
/// # Shapes
/// `a`: `[batch, p, features]`, `b`: `[batch, q, features]` → `[batch, p, q]`.
fn squared_distances(a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    let [batch, p, features] = a.dims();
    let q = b.dims()[1];
    let a = a.unsqueeze_dim::<4>(2).expand([batch, p, q, features]);
    let b = b.unsqueeze_dim::<4>(1).expand([batch, p, q, features]);
    (a - b).powi_scalar(2).sum_dim(3).reshape([batch, p, q])
}

/// Each point's weight in its cloud: `1/m` for a point that occurs `m` times.
///
/// # Shapes
/// `[batch, q, features]` → `[batch, q]`.
fn set_weights(cloud: Tensor<3>) -> Tensor<2> {
    let [batch, q, _] = cloud.dims();
    let copies = squared_distances(cloud.clone(), cloud)
        .lower_equal_elem(0.0)
        .float()
        .sum_dim(2)
        .reshape([batch, q]);
    copies.recip()
}

/// The Chamfer distance of each event's reconstruction to its cloud, differentiable in the
/// reconstruction.
///
/// # Shapes
/// `estimate`, `truth`: `[batch, points, features]` → `[batch]`.
pub fn chamfer_loss(estimate: Tensor<3>, truth: Tensor<3>) -> Tensor<1> {
    let [batch, _, _] = estimate.dims();
    let weights = set_weights(truth.clone());
    let distances = squared_distances(estimate, truth);
    let to_cloud = distances.clone().min_dim(2).mean_dim(1).reshape([batch]);
    let q = distances.dims()[2];
    let nearest_reconstruction = distances.min_dim(1).reshape([batch, q]);
    let from_cloud = (nearest_reconstruction * weights.clone())
        .sum_dim(1)
        .div(weights.sum_dim(1))
        .reshape([batch]);
    to_cloud + from_cloud
}

/// Entropic regularisation of the transport losses, in squared scaled units: small against
/// the squared distances between neighbouring points of a cloud, so the transport plan is
/// nearly a matching.
pub const SINKHORN_EPSILON: f64 = 0.05;

/// The regularisation the iterations start from ("ε-scaling"), in squared scaled units: as
/// large as the squared distances across a cloud. At [`SINKHORN_EPSILON`] from the start,
/// mass that must travel a squared distance `d` waits for potentials of `d/ε` nats, which
/// 30 iterations do not build up (energy shifted by 2 scaled units cost nothing); starting
/// wide and narrowing carries the potentials there.
pub const SINKHORN_START_EPSILON: f64 = 10.0;

/// Sinkhorn iterations of the transport losses: ε falls geometrically from
/// [`SINKHORN_START_EPSILON`] to [`SINKHORN_EPSILON`] over the first two thirds, the rest
/// run at [`SINKHORN_EPSILON`].
pub const SINKHORN_ITERATIONS: usize = 30;

/// `ε · log Σ_dim exp(x / ε)`, stably.
fn soft_min_sum(x: Tensor<3>, dim: usize, epsilon: f64) -> Tensor<3> {
    let scaled = x.div_scalar(epsilon);
    let max = scaled.clone().max_dim(dim).detach();
    (scaled - max.clone())
        .exp()
        .sum_dim(dim)
        .log()
        .add(max)
        .mul_scalar(epsilon)
}

/// The entropic optimal-transport cost (Sinkhorn, Cuturi 2013) between each event's
/// reconstruction and its cloud, differentiable in the reconstruction: an approximation of
/// the squared earth mover's distance that, unlike the Chamfer distance, must move every
/// point's mass somewhere, so it cannot pile the reconstruction onto the densest part of
/// the cloud. Each reconstructed point has mass `1/points`; the cloud's points share their
/// mass by [set weights](self#clouds-with-fewer-points-than-the-event-holds). The plan
/// comes from [`SINKHORN_ITERATIONS`] log-domain iterations narrowing to
/// [`SINKHORN_EPSILON`]; the cost is `Σ π_ij d_ij`.
///
/// # Shapes
/// `estimate`, `truth`: `[batch, points, features]` → `[batch]`.
pub fn sinkhorn_loss(estimate: Tensor<3>, truth: Tensor<3>) -> Tensor<1> {
    let [batch, p, _] = estimate.dims();
    let q = truth.dims()[1];
    let weights = set_weights(truth.clone());
    let log_b = weights
        .clone()
        .div(weights.sum_dim(1))
        .log()
        .reshape([batch, 1, q]);
    let log_a = Tensor::full([batch, p, 1], -(p as f64).ln(), &estimate.device());
    transport_cost(squared_distances(estimate, truth), log_a, log_b)
}

/// How the points' last feature, their weight (energy, pT), was scaled: `raw = scaled ·
/// std + mean`. [`weighted_sinkhorn_loss`] needs the weights in detector units, where they
/// are at least zero and add up to the event's total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightScaling {
    /// Mean of the weight feature.
    pub mean: f64,
    /// Standard deviation of the weight feature.
    pub std: f64,
}

impl WeightScaling {
    /// The scaling of the last of `features` point features in `normalisation`
    /// ([`Normalisation::fit_points`](latentlink_package::Normalisation::fit_points) gives
    /// every point the same); `None` if it has no such column.
    pub fn of(normalisation: &latentlink_package::Normalisation, features: usize) -> Option<Self> {
        let column = features.checked_sub(1)?;
        Some(Self {
            mean: f64::from(*normalisation.mean.get(column)?),
            std: f64::from(*normalisation.std.get(column)?),
        })
    }

    /// A weight of zero in scaled units, `−mean/std`: the floor of the decoder's weight
    /// output ([`VaeConfig::point_weight_floor`](latentlink_model::VaeConfig)).
    pub fn floor(self) -> f64 {
        -self.mean / self.std
    }
}

/// The energy-weighted entropic transport cost between each event's reconstruction and its
/// cloud, in the manner of the energy mover's distance (Komiske, Metodiev and Thaler 2019):
/// each point's mass is its share of the event's total weight (the last feature, in
/// detector units through `scaling`), the cost of moving it is the squared distance in the
/// other features, and the squared log ratio of the reconstructed and the true total
/// weight is added, so where the energy sits and how much there is are both learned. The reconstruction should come
/// from a decoder that floors its weights at zero
/// ([`VaeConfig::point_weight_floor`](latentlink_model::VaeConfig)): the mass of a point
/// is its weight clamped at zero, and a clamped point gets no gradient. For one feature
/// only, that feature is both mass and position.
///
/// # Shapes
/// `estimate`, `truth`: `[batch, points, features]` in scaled units → `[batch]`.
pub fn weighted_sinkhorn_loss(
    estimate: Tensor<3>,
    truth: Tensor<3>,
    scaling: WeightScaling,
) -> Tensor<1> {
    let [batch, p, features] = estimate.dims();
    let q = truth.dims()[1];
    let coordinates = if features > 1 { features - 1 } else { 1 };
    let weight = |cloud: Tensor<3>, points: usize| {
        cloud
            .slice([0..batch, 0..points, features - 1..features])
            .reshape([batch, points])
            .mul_scalar(scaling.std)
            .add_scalar(scaling.mean)
    };
    let estimate_weight = weight(estimate.clone(), p).clamp_min(0.0);
    let truth_weight = weight(truth.clone(), q).clamp_min(0.0) * set_weights(truth.clone());
    let (estimate_total, truth_total) = (
        estimate_weight.clone().sum_dim(1),
        truth_weight.clone().sum_dim(1),
    );
    // Each point's share of the total; the floor keeps an event of zero weight finite.
    let log_share = |weights: Tensor<2>, total: Tensor<2>, points: usize| {
        weights
            .add_scalar(1e-9)
            .div(total.add_scalar(1e-9 * points as f64))
            .log()
    };
    let log_a = log_share(estimate_weight, estimate_total.clone(), p).reshape([batch, p, 1]);
    let log_b = log_share(truth_weight, truth_total.clone(), q).reshape([batch, 1, q]);
    let cost = squared_distances(
        estimate.slice([0..batch, 0..p, 0..coordinates]),
        truth.slice([0..batch, 0..q, 0..coordinates]),
    );
    // The total's error as a squared log ratio, so a reconstruction that drops the energy
    // costs more the more there was: as a squared relative error it cost at most 1, less
    // than the transport saved by giving every point the same tiny mass, and training
    // learned to drop it. One weight spread keeps the logarithm finite at zero.
    let total_error = (estimate_total.add_scalar(scaling.std).log()
        - truth_total.add_scalar(scaling.std).log())
    .powi_scalar(2)
    .reshape([batch]);
    transport_cost(cost, log_a, log_b) + total_error
}

/// The mean of [`weighted_sinkhorn_loss`] over events `[N, points · features]` in scaled
/// units (point-major rows), computed in batches on the CPU: the validation error of
/// models trained on it.
///
/// # Errors
/// [`TensorError`] if a batch's losses cannot be read back.
pub fn mean_weighted_transport(
    truth: &Array2<f32>,
    estimate: &Array2<f32>,
    shape: latentlink_package::EventShape,
    scaling: WeightScaling,
) -> Result<f64, TensorError> {
    let device = latentlink_model::Backend::Flex.device();
    let cloud = |rows: ArrayView2<'_, f32>| -> Tensor<3> {
        to_tensor(&rows.to_owned(), &device).reshape([rows.nrows(), shape.channels, shape.length])
    };
    let mut sum = 0.0;
    for (truth, estimate) in truth
        .axis_chunks_iter(Axis(0), 512)
        .zip(estimate.axis_chunks_iter(Axis(0), 512))
    {
        let losses = weighted_sinkhorn_loss(cloud(estimate), cloud(truth), scaling)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TensorError::Data { source })?;
        sum += losses.iter().map(|&l| f64::from(l)).sum::<f64>();
    }
    Ok(sum / truth.nrows().max(1) as f64)
}

/// `Σ π_ij C_ij` for the entropic transport plan `π` between masses `exp(log_a)` and
/// `exp(log_b)` under `cost`, from [`SINKHORN_ITERATIONS`] log-domain iterations with
/// ε-scaling down to [`SINKHORN_EPSILON`].
///
/// # Shapes
/// `cost`: `[batch, p, q]`, `log_a`: `[batch, p, 1]`, `log_b`: `[batch, 1, q]` → `[batch]`.
fn transport_cost(cost: Tensor<3>, log_a: Tensor<3>, log_b: Tensor<3>) -> Tensor<1> {
    let [batch, p, q] = cost.dims();
    let narrowing = 2 * SINKHORN_ITERATIONS / 3;
    let ratio = (SINKHORN_EPSILON / SINKHORN_START_EPSILON).powf(1.0 / narrowing as f64);
    // Dual potentials f (reconstruction) and g (cloud), updated alternately.
    let mut g: Tensor<3> = Tensor::zeros([batch, 1, q], &cost.device());
    let mut f: Tensor<3> = Tensor::zeros([batch, p, 1], &cost.device());
    for iteration in 0..SINKHORN_ITERATIONS {
        let epsilon = (SINKHORN_START_EPSILON * ratio.powi(iteration as i32)).max(SINKHORN_EPSILON);
        // f_i = ε log a_i − ε log Σ_j exp((g_j − C_ij)/ε)
        f = soft_min_sum(g.clone() - cost.clone(), 2, epsilon).neg()
            + log_a.clone().mul_scalar(epsilon);
        // g_j = ε log b_j − ε log Σ_i exp((f_i − C_ij)/ε)
        g = soft_min_sum(f.clone() - cost.clone(), 1, epsilon).neg()
            + log_b.clone().mul_scalar(epsilon);
    }
    let plan = (f + g - cost.clone()).div_scalar(SINKHORN_EPSILON).exp();
    (plan * cost).sum_dim(2).sum_dim(1).reshape([batch])
}

/// The distinct points of a cloud with their weights (`1/m` for a point that occurs `m`
/// times), as rows of `cloud`.
fn distinct_weights(cloud: ArrayView2<'_, f32>) -> Vec<f64> {
    cloud
        .rows()
        .into_iter()
        .map(|a| {
            let copies = cloud.rows().into_iter().filter(|b| a == *b).count();
            1.0 / copies.max(1) as f64
        })
        .collect()
}

fn squared_distance(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
}

/// The Chamfer distance of one reconstruction to its cloud, both `[points, features]`.
pub fn chamfer(truth: ArrayView2<'_, f32>, estimate: ArrayView2<'_, f32>) -> f64 {
    let nearest = |point, cloud: ArrayView2<'_, f32>| {
        cloud
            .rows()
            .into_iter()
            .map(|other| squared_distance(point, other))
            .fold(f64::INFINITY, f64::min)
    };
    let to_cloud = estimate
        .rows()
        .into_iter()
        .map(|x| nearest(x, truth))
        .sum::<f64>()
        / estimate.nrows().max(1) as f64;
    let weights = distinct_weights(truth);
    let from_cloud = truth
        .rows()
        .into_iter()
        .zip(&weights)
        .map(|(y, w)| w * nearest(y, estimate))
        .sum::<f64>()
        / weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    to_cloud + from_cloud
}

/// The Chamfer distance of each event `[N, points · features]` (point-major rows).
pub fn event_chamfers(truth: &Array2<f32>, estimate: &Array2<f32>, features: usize) -> Vec<f64> {
    clouds(truth, features)
        .zip(clouds(estimate, features))
        .map(|(t, e)| chamfer(t, e))
        .collect()
}

/// The mean Chamfer distance over events `[N, points · features]` (point-major rows).
pub fn mean_chamfer(truth: &Array2<f32>, estimate: &Array2<f32>, features: usize) -> f64 {
    event_chamfers(truth, estimate, features)
        .iter()
        .sum::<f64>()
        / truth.nrows().max(1) as f64
}

/// For a package that codes point clouds, the mean Chamfer distance of `reconstructions` to
/// `truth` (both `[N, points · features]`, detector units) in the scaled units its report
/// uses, so a link's figure compares with the report's; `None` for any other package, whose
/// error is the nMSE.
///
/// # Errors
/// [`PackageError`](latentlink_package::PackageError) if the manifest's training config
/// cannot be read.
pub fn package_chamfer(
    manifest: &latentlink_package::Manifest,
    truth: &Array2<f32>,
    reconstructions: &Array2<f32>,
) -> Result<Option<f64>, latentlink_package::PackageError> {
    if !codes_point_clouds(manifest)? {
        return Ok(None);
    }
    let normalisation = manifest.input.normalisation();
    Ok(Some(mean_chamfer(
        &normalisation.apply(truth),
        &normalisation.apply(reconstructions),
        manifest.input.shape().length,
    )))
}

/// Whether the package codes point clouds (it was trained on a set loss), so that its
/// reconstructions are judged by the Chamfer distance rather than the nMSE.
///
/// # Errors
/// [`PackageError`](latentlink_package::PackageError) if the manifest's training config
/// cannot be read.
pub fn codes_point_clouds(
    manifest: &latentlink_package::Manifest,
) -> Result<bool, latentlink_package::PackageError> {
    let config: crate::train::TrainConfig = manifest.training_config()?;
    Ok(config.likelihood.is_point_cloud())
}

/// Rows of `events` `[N, points · features]` as `[points, features]` clouds.
fn clouds(events: &Array2<f32>, features: usize) -> impl Iterator<Item = ArrayView2<'_, f32>> {
    let features = features.max(1);
    let points = events.ncols() / features;
    events
        .rows()
        .into_iter()
        .filter_map(move |row| row.into_shape_with_order((points, features)).ok())
}

/// Fixed-point scale of the distances [`emd`] hands to the integer assignment solver.
const EMD_RESOLUTION: f64 = 1e6;

/// The exact earth mover's distance between two clouds with the same number of points, each
/// of mass `1/n`: the mean Euclidean distance between matched points under the best
/// one-to-one matching. `None` when the sizes differ. Every row counts, padding copies
/// included.
pub fn emd(truth: ArrayView2<'_, f32>, estimate: ArrayView2<'_, f32>) -> Option<f64> {
    let n = truth.nrows();
    if n == 0 || estimate.nrows() != n {
        return None;
    }
    let cost = |(i, j): (usize, usize)| {
        let distance = squared_distance(truth.row(i), estimate.row(j)).sqrt();
        // Distances in scaled units are a few units; 10⁶ keeps six digits, far from overflow.
        (distance.min(1e9) * EMD_RESOLUTION).round() as i64
    };
    let weights = Matrix::from_fn(n, n, cost);
    let (total, _) = kuhn_munkres_min(&weights);
    Some(total as f64 / EMD_RESOLUTION / n as f64)
}

/// What a physicist computes from a cloud whose last feature is each point's weight
/// (energy, pT), over its distinct points. Negative weights (a decoder may give them) count
/// as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observables {
    /// Total weight (energy).
    pub total: f64,
    /// Weighted centroid of the other features (the plain mean when nothing weighs).
    pub centroid: Vec<f64>,
}

impl Observables {
    /// The observables of one cloud `[points, features]`.
    pub fn of(cloud: ArrayView2<'_, f32>) -> Self {
        let features = cloud.ncols();
        let coordinates = features.saturating_sub(1);
        let copies = distinct_weights(cloud);
        let (mut total, mut count) = (0.0, 0.0);
        let (mut weighted, mut plain) = (vec![0.0; coordinates], vec![0.0; coordinates]);
        for (point, share) in cloud.rows().into_iter().zip(&copies) {
            let weight = f64::from(point[coordinates]).max(0.0) * share;
            total += weight;
            count += share;
            for c in 0..coordinates {
                weighted[c] += weight * f64::from(point[c]);
                plain[c] += share * f64::from(point[c]);
            }
        }
        let centroid = if total > 0.0 {
            weighted.iter().map(|w| w / total).collect()
        } else {
            plain
                .iter()
                .map(|p| p / count.max(f64::MIN_POSITIVE))
                .collect()
        };
        Self { total, centroid }
    }
}

/// How far reconstructed observables are from the true ones, over events, in detector units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservableErrors {
    /// Mean of `reconstructed total / true total − 1` (the bias of the total weight).
    pub total_bias: f64,
    /// Root mean square of `reconstructed total / true total − 1` (its resolution).
    pub total_rms: f64,
    /// Root mean square error of each centroid coordinate (detector units).
    pub centroid_rms: Vec<f64>,
}

impl ObservableErrors {
    /// Compares the observables of `estimate` with those of `truth`, event by event.
    pub fn of(truth: &[Observables], estimate: &[Observables]) -> Self {
        let n = truth.len().max(1) as f64;
        let ratios: Vec<f64> = truth
            .iter()
            .zip(estimate)
            .map(|(t, e)| e.total / t.total.max(f64::MIN_POSITIVE) - 1.0)
            .collect();
        let coordinates = truth.first().map_or(0, |t| t.centroid.len());
        let centroid_rms = (0..coordinates)
            .map(|c| {
                let sum: f64 = truth
                    .iter()
                    .zip(estimate)
                    .map(|(t, e)| (t.centroid[c] - e.centroid[c]).powi(2))
                    .sum();
                (sum / n).sqrt()
            })
            .collect();
        Self {
            total_bias: ratios.iter().sum::<f64>() / n,
            total_rms: (ratios.iter().map(|r| r * r).sum::<f64>() / n).sqrt(),
            centroid_rms,
        }
    }
}

/// The classical baseline at a bit budget: each cloud's `points` highest-weight distinct
/// points (by the last feature), every feature quantised uniformly to `bits_per_feature`
/// bits over its range in the training clouds. Decoded, the kept points are repeated in
/// turn to fill the event's point slots, so the reconstruction has the event's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadingPoints {
    /// Points kept per cloud.
    pub points: usize,
    /// Bits per feature of a kept point.
    pub bits_per_feature: u32,
    /// Per-feature range `(low, high)` of the quantiser, detector units.
    pub ranges: Vec<(f32, f32)>,
}

impl LeadingPoints {
    /// Picks the split of `bits` between points and bits per feature (2 to 12 bits) with
    /// the least Chamfer distance on (up to 500 of) the training clouds `train`, measured
    /// in `normalisation`'s units. `None` when `bits` cannot hold one point at 2 bits per
    /// feature.
    pub fn fit(
        train: &Array2<f32>,
        features: usize,
        bits: usize,
        normalisation: &latentlink_package::Normalisation,
    ) -> Option<Self> {
        let features = features.max(1);
        let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); features];
        for (c, &value) in train.iter().enumerate() {
            let (low, high) = &mut ranges[c % features];
            (*low, *high) = (low.min(value), high.max(value));
        }
        let sample = train
            .slice(ndarray::s![..train.nrows().min(500), ..])
            .to_owned();
        let slots = train.ncols() / features;
        (2..=12u32)
            .filter_map(|b| {
                let points = (bits / (features * b as usize)).min(slots);
                (points > 0).then(|| Self {
                    points,
                    bits_per_feature: b,
                    ranges: ranges.clone(),
                })
            })
            .map(|candidate| {
                let error = mean_chamfer(
                    &normalisation.apply(&sample),
                    &normalisation.apply(&candidate.round_trip(&sample)),
                    features,
                );
                (error, candidate)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, best)| best)
    }

    /// Bits one cloud takes.
    pub fn bits(&self) -> usize {
        self.points * self.ranges.len() * self.bits_per_feature as usize
    }

    fn quantise(&self, value: f32, feature: usize) -> f32 {
        let (low, high) = self.ranges[feature];
        let levels = ((1u64 << self.bits_per_feature) - 1) as f32;
        if high <= low {
            return low;
        }
        let level = ((value - low) / (high - low) * levels)
            .round()
            .clamp(0.0, levels);
        low + level * (high - low) / levels
    }

    fn encode_one(&self, cloud: ArrayView2<'_, f32>) -> Vec<f32> {
        let features = self.ranges.len();
        let weight = features - 1;
        let mut distinct: Vec<ArrayView1<'_, f32>> = Vec::new();
        for point in cloud.rows() {
            if !distinct.contains(&point) {
                distinct.push(point);
            }
        }
        distinct.sort_by(|a, b| b[weight].total_cmp(&a[weight]));
        let kept = &distinct[..self.points.min(distinct.len())];
        let mut out = Vec::with_capacity(cloud.len());
        for slot in 0..cloud.nrows() {
            let point = kept[slot % kept.len().max(1)];
            out.extend((0..features).map(|f| self.quantise(point[f], f)));
        }
        out
    }

    /// Each cloud of `events` `[N, points · features]` as the baseline stores and restores
    /// it.
    pub fn round_trip(&self, events: &Array2<f32>) -> Array2<f32> {
        let features = self.ranges.len();
        let mut out = Array2::zeros(events.dim());
        for (row, cloud) in out.rows_mut().into_iter().zip(clouds(events, features)) {
            for (o, v) in row.into_iter().zip(self.encode_one(cloud)) {
                *o = v;
            }
        }
        out
    }
}

/// How well one method reconstructs the clouds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudScore {
    /// Mean Chamfer distance, in the scaled units of the model (each point feature over its
    /// spread).
    pub chamfer: f64,
    /// Mean exact earth mover's distance, same units.
    pub emd: f64,
    /// Errors of the observables, detector units.
    pub observables: ObservableErrors,
}

impl CloudScore {
    /// Scores `estimate` against `truth`, both `[N, points · features]` in detector units.
    pub fn of(
        truth: &Array2<f32>,
        estimate: &Array2<f32>,
        features: usize,
        normalisation: &latentlink_package::Normalisation,
    ) -> Self {
        let (scaled_truth, scaled_estimate) =
            (normalisation.apply(truth), normalisation.apply(estimate));
        let emds: Vec<f64> = clouds(&scaled_truth, features)
            .zip(clouds(&scaled_estimate, features))
            .filter_map(|(t, e)| emd(t, e))
            .collect();
        let observe = |events| {
            clouds(events, features)
                .map(Observables::of)
                .collect::<Vec<_>>()
        };
        Self {
            chamfer: mean_chamfer(&scaled_truth, &scaled_estimate, features),
            emd: emds.iter().sum::<f64>() / emds.len().max(1) as f64,
            observables: ObservableErrors::of(&observe(truth), &observe(estimate)),
        }
    }
}

/// A point-cloud model's reconstructions from its int8 codes against the classical baseline
/// at the same bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudReport {
    /// From the int8 runtime codes.
    pub runtime_codes: CloudScore,
    /// Chamfer distance from the float encoder's binary codes.
    pub chamfer_float_codes: f64,
    /// Score from the float latents, where the model has them as its own code (a Gaussian
    /// head's posterior means); `None` for a binary decoder trained on hard bits.
    #[serde(default)]
    pub float_latents: Option<CloudScore>,
    /// The leading-points baseline and its score (`None` when the bits cannot hold a point).
    pub baseline: Option<(LeadingPoints, CloudScore)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn device() -> Device {
        latentlink_model::Backend::Flex.device()
    }

    #[test]
    fn chamfer_of_a_cloud_to_itself_is_zero_whatever_the_order() {
        let cloud = array![[0.0f32, 0.0], [1.0, 2.0], [3.0, -1.0]];
        let shuffled = array![[3.0f32, -1.0], [0.0, 0.0], [1.0, 2.0]];
        assert_eq!(chamfer(cloud.view(), shuffled.view()), 0.0);
        assert!(chamfer(cloud.view(), (&shuffled + 0.5).view()) > 0.0);
    }

    #[test]
    fn chamfer_by_hand() {
        // Truth {(0,0), (2,0)}; estimate {(0,1), (0,-1)}: every estimate is 1 from (0,0);
        // (0,0) is 1 from an estimate, (2,0) is 5.
        let truth = array![[0.0f32, 0.0], [2.0, 0.0]];
        let estimate = array![[0.0f32, 1.0], [0.0, -1.0]];
        assert_eq!(chamfer(truth.view(), estimate.view()), 1.0 + 3.0);
    }

    #[test]
    fn padding_copies_do_not_count() {
        let truth = array![[0.0f32, 0.0], [2.0, 0.0]];
        let padded = array![[0.0f32, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 0.0]];
        let estimate = array![[0.0f32, 1.0], [0.0, -1.0]];
        assert_eq!(
            chamfer(truth.view(), estimate.view()),
            chamfer(padded.view(), estimate.view())
        );
    }

    #[test]
    fn emd_is_the_best_matching() {
        // Matched in order the points are 1 and 1 apart; crossed, √5 and √5.
        let truth = array![[0.0f32, 0.0], [2.0, 0.0]];
        let estimate = array![[2.0f32, 1.0], [0.0, 1.0]];
        assert!((emd(truth.view(), estimate.view()).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(
            emd(truth.view(), estimate.slice(ndarray::s![..1, ..])),
            None
        );
    }

    #[test]
    fn observables_weigh_by_the_last_feature_and_ignore_padding() {
        // (x, E): 3 GeV at x = 1, 1 GeV at x = 5, padded with a copy of the first point.
        let cloud = array![[1.0f32, 3.0], [5.0, 1.0], [1.0, 3.0]];
        let observed = Observables::of(cloud.view());
        assert_eq!(observed.total, 4.0);
        assert_eq!(observed.centroid, vec![2.0]);
        let errors = ObservableErrors::of(
            std::slice::from_ref(&observed),
            &[Observables {
                total: 5.0,
                centroid: vec![3.0],
            }],
        );
        assert_eq!((errors.total_bias, errors.centroid_rms[0]), (0.25, 1.0));
    }

    #[test]
    fn the_baseline_keeps_the_heaviest_points_within_a_quantisation_step() {
        // Two clouds of three points (x, E); 8 bits: one point at 4 bits per feature.
        let events = array![
            [0.0f32, 1.0, 10.0, 9.0, 5.0, 2.0],
            [3.0, 4.0, 7.0, 1.0, 1.0, 0.5]
        ];
        let normalisation = latentlink_package::Normalisation::fit_points(&events, 2);
        let fitted = LeadingPoints::fit(&events, 2, 8, &normalisation).unwrap();
        assert!(fitted.bits() <= 8 && fitted.ranges == vec![(0.0, 10.0), (0.5, 9.0)]);
        let baseline = LeadingPoints {
            points: 1,
            bits_per_feature: 4,
            ranges: fitted.ranges,
        };
        let restored = baseline.round_trip(&events);
        // Every slot holds the heaviest point: (10, 9), then (3, 4).
        let step = [10.0 / 15.0, 8.5 / 15.0];
        for (slot, value) in restored.row(0).iter().enumerate() {
            let expected = [10.0, 9.0][slot % 2];
            assert!((value - expected).abs() <= step[slot % 2] / 2.0 + 1e-5);
        }
        assert!((restored[[1, 0]] - 3.0).abs() <= step[0] / 2.0 + 1e-5);
        assert!(LeadingPoints::fit(&events, 2, 3, &normalisation).is_none());
    }

    #[test]
    fn sinkhorn_approaches_the_squared_matching_cost() {
        // Two points to two points: matched in order each moves by 1 (squared 1); crossed,
        // by √5. Entropic OT at small ε is close to the best matching's mean squared cost.
        let tensor =
            |rows: [[f32; 2]; 2]| Tensor::<2>::from_floats(rows, &device()).reshape([1, 2, 2]);
        let truth = tensor([[0.0, 0.0], [2.0, 0.0]]);
        let estimate = tensor([[2.0, 1.0], [0.0, 1.0]]);
        let cost = f64::from(sinkhorn_loss(estimate, truth.clone()).into_scalar::<f32>());
        assert!((cost - 1.0).abs() < 0.02, "{cost}");
        let same = f64::from(sinkhorn_loss(truth.clone(), truth).into_scalar::<f32>());
        assert!(same.abs() < 1e-3, "{same}");
    }

    #[test]
    fn the_weighted_transport_moves_energy_not_points() {
        // Points (x, E) with E in detector units (scaling: identity). The truth holds 3 GeV at
        // x = 0 and 1 GeV at x = 2.
        let identity = WeightScaling {
            mean: 0.0,
            std: 1.0,
        };
        let cloud =
            |rows: [[f32; 2]; 2]| Tensor::<2>::from_floats(rows, &device()).reshape([1, 2, 2]);
        let cost = |estimate, truth| {
            f64::from(weighted_sinkhorn_loss(estimate, truth, identity).into_scalar::<f32>())
        };
        let truth = cloud([[0.0, 3.0], [2.0, 1.0]]);
        assert!(cost(truth.clone(), truth.clone()) < 1e-3);
        // The same points with the energies swapped: a quarter of the total must move by 2
        // (squared 4), so the cost is about 2/4 · 4 = 2, where uniform masses see no change
        // in where the points are.
        let swapped = cloud([[0.0, 1.0], [2.0, 3.0]]);
        let moved = cost(swapped.clone(), truth.clone());
        assert!((moved - 2.0).abs() < 0.05, "{moved}");
        let unweighted = f64::from(sinkhorn_loss(swapped, truth.clone()).into_scalar::<f32>());
        assert!(
            unweighted > 0.5,
            "the unweighted cost sees the energy as a coordinate"
        );
        // Twice the energy in the same places: no transport, the totals' squared log ratio,
        // each total plus one weight spread (1 here): ln(9/5)².
        let doubled = cloud([[0.0, 6.0], [2.0, 2.0]]);
        let total = cost(doubled, truth.clone());
        assert!((total - (9f64 / 5.0).ln().powi(2)).abs() < 0.01, "{total}");
        // No energy at all costs the more the more there was: ln(5)², above the at most 1
        // that a squared relative error charged.
        let dropped = cost(cloud([[0.0, 0.0], [2.0, 0.0]]), truth);
        assert!(dropped > 5f64.ln().powi(2) - 0.05, "{dropped}");
    }

    #[test]
    fn the_tensor_loss_equals_the_metric() {
        let truth = array![
            [0.0f32, 0.0, 2.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0, 3.0, 2.0]
        ];
        let estimate = array![
            [0.0f32, 1.0, 0.0, -1.0, 1.0, 1.0],
            [0.5, 1.0, 2.0, 2.0, 3.0, 3.0]
        ];
        let tensor = |a: &Array2<f32>| to_tensor(a, &device()).reshape([2, 3, 2]);
        let loss = chamfer_loss(tensor(&estimate), tensor(&truth))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (row, value) in loss.iter().enumerate() {
            let expected = chamfer(
                truth.row(row).to_shape((3, 2)).unwrap().view(),
                estimate.row(row).to_shape((3, 2)).unwrap().view(),
            );
            assert!(
                (f64::from(*value) - expected).abs() < 1e-5,
                "{value} vs {expected}"
            );
        }
        let mean = mean_chamfer(&truth, &estimate, 2);
        assert!((mean - f64::from(loss.iter().sum::<f32>()) / 2.0).abs() < 1e-5);
    }
}
