//! The PCA baseline: the best linear code at the same number of bits.
//!
//! A learned code is only worth deploying if it beats PCA spending the same bits. With a
//! budget of `B` bits, PCA keeps `k` principal components and quantises each coefficient
//! uniformly to `b` bits (`k·b ≤ B`) over the coefficient's training range. Which split is best
//! depends on the data, so every split with `b` in 1..=16 is tried and the best on the
//! training data is kept, then reported on the evaluation data.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, Axis};
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

/// Uniform `bits`-bit quantisation of each column over `[lo, hi]`, reconstructed at the
/// centres of the cells.
fn quantise_columns(coefficients: &Array2<f32>, ranges: &[(f32, f32)], bits: u32) -> Array2<f32> {
    let levels = (1u32 << bits) as f32;
    let mut out = coefficients.clone();
    for (mut column, &(lo, hi)) in out.columns_mut().into_iter().zip(ranges) {
        let step = ((hi - lo) / levels).max(f32::MIN_POSITIVE);
        column.mapv_inplace(|c| {
            let cell = ((c - lo) / step).floor().clamp(0.0, levels - 1.0);
            lo + (cell + 0.5) * step
        });
    }
    out
}

/// `(min, max)` of each column: the quantiser's range for each coefficient.
fn column_ranges(coefficients: &Array2<f32>) -> Vec<(f32, f32)> {
    coefficients
        .columns()
        .into_iter()
        .map(|c| {
            c.iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
        })
        .collect()
}

/// PCA at a bit budget, with the chosen split and its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaBaseline {
    /// Bit budget.
    pub bits: usize,
    /// Components kept.
    pub components: usize,
    /// Bits per coefficient.
    pub bits_per_coefficient: u32,
    /// Normalised MSE on the evaluation data.
    pub nmse: f64,
}

/// The best PCA code of at most `bits` bits: split chosen on `train`, error on `eval`.
pub fn baseline(pca: &Pca, train: &Array2<f32>, eval: &Array2<f32>, bits: usize) -> PcaBaseline {
    let mut best: Option<(f64, usize, u32)> = None;
    for b in 1..=16u32 {
        let k = (bits / b as usize).min(pca.components.nrows());
        if k == 0 {
            continue;
        }
        let coefficients = pca.project(train, k);
        let ranges = column_ranges(&coefficients);
        let error = nmse(
            train,
            &pca.reconstruct(&quantise_columns(&coefficients, &ranges, b)),
        );
        if best.is_none_or(|(e, _, _)| error < e) {
            best = Some((error, k, b));
        }
    }
    let (_, components, bits_per_coefficient) = best.unwrap_or((f64::NAN, 0, 1));
    let ranges = column_ranges(&pca.project(train, components));
    let eval_coefficients = pca.project(eval, components);
    let reconstruction = pca.reconstruct(&quantise_columns(
        &eval_coefficients,
        &ranges,
        bits_per_coefficient,
    ));
    PcaBaseline {
        bits,
        components,
        bits_per_coefficient,
        nmse: nmse(eval, &reconstruction),
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
            assert!(b.components * b.bits_per_coefficient as usize <= bits);
            assert!(
                b.nmse <= previous * 1.05,
                "{bits} bits: {b:?} after {previous}"
            );
            previous = b.nmse;
        }
        // 2-D data: with enough bits the best split keeps (about) two components.
        let b = baseline(&pca, &train, &eval, 32);
        assert!(b.components >= 2 && b.nmse < 1e-3, "{b:?}");
    }
}
