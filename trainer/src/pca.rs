//! The PCA baseline: the best linear code at the same number of bits.
//!
//! A learned code is only worth deploying if it beats PCA spending the same bits. With a
//! budget of `B` bits, PCA projects each event on its principal components and quantises each
//! coefficient uniformly; the bits go where they buy the most (greedy reverse water-filling):
//! starting from no bits anywhere, each next bit goes to the coefficient whose measured
//! training error falls most from it. Because the components are orthonormal, the error of an
//! event is the sum of its coefficients' errors, so this greedy allocation is optimal for
//! quantisers whose error falls convexly with bits. Each coefficient's quantiser range is the
//! one (full range, or mean ± 2, 3 or 4 standard deviations, clipping the tails) with the
//! least training error at that number of bits. The allocation is chosen on the training data
//! and reported on the evaluation data.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use serde::{Deserialize, Serialize};

use crate::train::nmse;

/// Principal components of a data set.
#[derive(Debug, Clone)]
pub struct Pca {
    mean: Array1<f32>,
    /// `[k, D]`, rows by decreasing variance.
    components: Array2<f32>,
    /// Variance along each component.
    pub variances: Vec<f64>,
}

impl Pca {
    /// Fits up to `max_components` components of `data` (`[N, D]`).
    pub fn fit(data: &Array2<f32>, max_components: usize) -> Self {
        let (n, d) = data.dim();
        let mean = data.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
        let centred = data - &mean;
        let centred64 = centred.mapv(f64::from);
        let covariance = centred64.t().dot(&centred64) / (n.max(2) - 1) as f64;
        let matrix = DMatrix::from_row_iterator(d, d, covariance.iter().copied());
        let eigen = SymmetricEigen::new(matrix);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let k = max_components.min(d);
        let mut components = Array2::zeros((k, d));
        let mut variances = Vec::with_capacity(k);
        for (row, &index) in order.iter().take(k).enumerate() {
            variances.push(eigen.eigenvalues[index].max(0.0));
            for col in 0..d {
                components[[row, col]] = eigen.eigenvectors[(col, index)] as f32;
            }
        }
        Self {
            mean,
            components,
            variances,
        }
    }

    /// Coefficients of `data` on the first `k` components, `[N, k]`.
    pub fn project(&self, data: &Array2<f32>, k: usize) -> Array2<f32> {
        let basis = self
            .components
            .slice(ndarray::s![..k.min(self.components.nrows()), ..]);
        (data - &self.mean).dot(&basis.t())
    }

    /// Events from coefficients on the first `coefficients.ncols()` components.
    pub fn reconstruct(&self, coefficients: &Array2<f32>) -> Array2<f32> {
        let basis = self
            .components
            .slice(ndarray::s![..coefficients.ncols(), ..]);
        coefficients.dot(&basis) + &self.mean
    }
}

/// A uniform quantiser of one coefficient: `2^bits` cells over `[lo, hi]`, values outside
/// clipped to the end cells, reconstructed at cell centres; with 0 bits every value becomes
/// `centre` (the training mean).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Quantiser {
    bits: u32,
    lo: f32,
    hi: f32,
    centre: f32,
}

impl Quantiser {
    fn apply(&self, value: f32) -> f32 {
        if self.bits == 0 {
            return self.centre;
        }
        let levels = (1u64 << self.bits) as f32;
        let step = ((self.hi - self.lo) / levels).max(f32::MIN_POSITIVE);
        let cell = ((value - self.lo) / step).floor().clamp(0.0, levels - 1.0);
        self.lo + (cell + 0.5) * step
    }

    /// Sum of squared errors over `values`.
    fn error(&self, values: ArrayView1<'_, f32>) -> f64 {
        values
            .iter()
            .map(|&v| f64::from(v - self.apply(v)).powi(2))
            .sum()
    }

    /// The `bits`-bit quantiser with the least error on `values`, among ranges from the full
    /// range to mean ± 2 standard deviations.
    fn fit(values: ArrayView1<'_, f32>, bits: u32) -> (Self, f64) {
        let n = values.len().max(1) as f32;
        let centre = values.sum() / n;
        let std = (values.iter().map(|v| (v - centre).powi(2)).sum::<f32>() / n).sqrt();
        let (lo, hi) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let quantiser = |(lo, hi): (f32, f32)| {
            let quantiser = Self {
                bits,
                lo,
                hi,
                centre,
            };
            (quantiser, quantiser.error(values))
        };
        let mut best = quantiser((lo, hi));
        if bits > 0 {
            for k in [2.0, 3.0, 4.0] {
                let clipped = quantiser(((centre - k * std).max(lo), (centre + k * std).min(hi)));
                if clipped.1 < best.1 {
                    best = clipped;
                }
            }
        }
        best
    }
}

/// Most bits one coefficient gets.
const MAX_BITS_PER_COEFFICIENT: u32 = 16;

/// PCA at a bit budget, with the chosen allocation and its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaBaseline {
    /// Bit budget.
    pub bits: usize,
    /// Components that got at least one bit.
    pub components: usize,
    /// Bits of each component, leading component first (trailing zeros left out).
    pub allocation: Vec<u32>,
    /// Normalised MSE on the evaluation data.
    pub nmse: f64,
}

impl PcaBaseline {
    /// The allocation in a few words, e.g. `12 components, 16…4 bits`.
    pub fn describe(&self) -> String {
        let most = self.allocation.iter().max().copied().unwrap_or(0);
        let least = self
            .allocation
            .iter()
            .filter(|&&b| b > 0)
            .min()
            .copied()
            .unwrap_or(0);
        if most == least {
            format!("{} components × {most} bits", self.components)
        } else {
            format!("{} components, {most}…{least} bits", self.components)
        }
    }
}

/// The best PCA code of at most `bits` bits: allocation chosen on `train`, error on `eval`.
pub fn baseline(pca: &Pca, train: &Array2<f32>, eval: &Array2<f32>, bits: usize) -> PcaBaseline {
    let k = bits.min(pca.components.nrows());
    let coefficients = pca.project(train, k);
    let columns: Vec<ArrayView1<'_, f32>> = coefficients.columns().into_iter().collect();
    let mut quantisers: Vec<(Quantiser, f64)> =
        columns.iter().map(|c| Quantiser::fit(*c, 0)).collect();
    // The error each component would have with one more bit, computed when first needed.
    let mut next: Vec<Option<(Quantiser, f64)>> = vec![None; k];
    for _ in 0..bits {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..k {
            let (current, error) = quantisers[i];
            if current.bits >= MAX_BITS_PER_COEFFICIENT {
                continue;
            }
            let candidate =
                *next[i].get_or_insert_with(|| Quantiser::fit(columns[i], current.bits + 1));
            let gain = error - candidate.1;
            if best.is_none_or(|(_, g)| gain > g) {
                best = Some((i, gain));
            }
        }
        let Some((i, _)) = best else { break };
        if let Some(candidate) = next[i].take() {
            quantisers[i] = candidate;
        }
    }
    let eval_coefficients = pca.project(eval, k);
    let mut quantised = eval_coefficients;
    for (mut column, (quantiser, _)) in quantised.columns_mut().into_iter().zip(&quantisers) {
        column.mapv_inplace(|c| quantiser.apply(c));
    }
    let mut allocation: Vec<u32> = quantisers.iter().map(|(q, _)| q.bits).collect();
    while allocation.last() == Some(&0) {
        allocation.pop();
    }
    PcaBaseline {
        bits,
        components: allocation.iter().filter(|&&b| b > 0).count(),
        allocation,
        nmse: nmse(eval, &pca.reconstruct(&quantised)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// Data on a 2-D plane inside 6-D space, plus tiny noise.
    fn planar(n: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (u, v) = (
            [1.0f32, 2.0, 0.0, -1.0, 0.5, 0.0],
            [0.0f32, 1.0, 3.0, 0.0, -1.0, 2.0],
        );
        let mut data = Array2::zeros((n, 6));
        for mut row in data.rows_mut() {
            let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
            for j in 0..6 {
                row[j] = 5.0 + a * u[j] + b * v[j] + rng.random_range(-1e-3..1e-3);
            }
        }
        data
    }

    #[test]
    fn two_components_reconstruct_planar_data() {
        let data = planar(500, 1);
        let pca = Pca::fit(&data, 4);
        assert!(
            pca.variances[2] < 1e-4 * pca.variances[0],
            "{:?}",
            pca.variances
        );
        let restored = pca.reconstruct(&pca.project(&data, 2));
        assert!(nmse(&data, &restored) < 1e-5);
        assert!(nmse(&data, &pca.reconstruct(&pca.project(&data, 1))) > 0.05);
    }

    #[test]
    fn more_bits_never_hurt_and_the_split_fits_the_budget() {
        let (train, eval) = (planar(400, 2), planar(200, 3));
        let pca = Pca::fit(&train, 6);
        let mut previous = f64::INFINITY;
        for bits in [2, 4, 8, 16, 32] {
            let b = baseline(&pca, &train, &eval, bits);
            assert!(b.allocation.iter().sum::<u32>() as usize <= bits);
            assert!(
                b.nmse <= previous * 1.05,
                "{bits} bits: {b:?} after {previous}"
            );
            previous = b.nmse;
        }
        // 2-D data: with enough bits the bits go to the two real components.
        let b = baseline(&pca, &train, &eval, 32);
        assert!(b.components >= 2 && b.nmse < 1e-3, "{b:?}");
        assert!(b.allocation[0] + b.allocation[1] >= 24, "{b:?}");
    }

    #[test]
    fn bits_go_to_the_components_with_the_most_variance() {
        // Independent coefficients with standard deviations 8, 4, 2, 1: each halving of the
        // spread is worth one bit, so the allocation falls by about one bit per component.
        let mut rng = StdRng::seed_from_u64(4);
        let scales = [8.0f32, 4.0, 2.0, 1.0];
        let data = Array2::from_shape_fn((4000, 4), |(_, j)| {
            scales[j] * rng.random_range(-1.0f32..1.0)
        });
        let pca = Pca::fit(&data, 4);
        let b = baseline(&pca, &data, &data, 16);
        assert_eq!(b.allocation.iter().sum::<u32>(), 16, "{b:?}");
        for pair in b.allocation.windows(2) {
            assert!(pair[0] >= pair[1] && pair[0] - pair[1] <= 2, "{b:?}");
        }
        // Against a uniform split of the same 16 bits (4 × 4 bits).
        let uniform = {
            let c = pca.project(&data, 4);
            let mut q = c.clone();
            for mut column in q.columns_mut() {
                let (quantiser, _) = Quantiser::fit(column.view(), 4);
                column.mapv_inplace(|v| quantiser.apply(v));
            }
            nmse(&data, &pca.reconstruct(&q))
        };
        assert!(
            b.nmse < 0.8 * uniform,
            "greedy {} uniform {uniform}",
            b.nmse
        );
    }
}
