//! Does the code keep the physics? Two small regressions from the code bits to each known
//! factor behind the events (a simulator's photon energy, intensity, pointing...): a linear
//! one (ridge regression on the bits as ±1), which asks whether a factor is spelled out by
//! the bits, and a nearest-neighbour one (the mean factor of the [`NEIGHBOURS`] codes nearest
//! in Hamming distance), which asks whether it is kept at all. Both are fitted on the
//! even-numbered events and scored by R² on the odd-numbered ones, so every figure is on
//! events the regression never saw.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Ridge strength relative to the mean diagonal of the bits' Gram matrix: enough to keep a
/// constant or duplicated bit from making the system singular, too little to bias the fit.
const RIDGE: f64 = 1e-3;

/// Codes averaged by the nearest-neighbour probe.
pub const NEIGHBOURS: usize = 10;

/// How well the code predicts one factor. R² is the coefficient of determination on
/// held-out events: 1 is perfect, 0 is no better than the factor's mean (it can be negative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorProbe {
    /// The factor's name (with its unit).
    pub factor: String,
    /// R² of the linear probe.
    pub r2: f64,
    /// R² of the nearest-neighbour probe.
    pub r2_neighbours: f64,
}

/// Why a probe cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Codes and factors describe different events.
    #[error("{codes} codes but {factors} rows of factors: they must describe the same events")]
    RowMismatch {
        /// Rows of codes.
        codes: usize,
        /// Rows of factors.
        factors: usize,
    },
    /// Too few events to fit on half and score on the other.
    #[error("a probe needs at least 4 events, got {0}")]
    TooFewEvents(usize),
    /// The regression's normal equations had no unique solution (the ridge and the
    /// intercept column should prevent it).
    #[error("the probe's normal equations are singular")]
    Singular,
    /// A name for each factor column is needed.
    #[error("{columns} factor columns but {names} names")]
    NameMismatch {
        /// Factor columns.
        columns: usize,
        /// Names given.
        names: usize,
    },
}

/// Fits the probe on `codes` (`[N, bits]`, 0/1) and `factors` (`[N, F]`), one name per
/// factor column.
///
/// # Errors
/// [`ProbeError`] if the shapes disagree or there are fewer than 4 events.
pub fn probe(
    codes: &Array2<f32>,
    factors: &Array2<f32>,
    names: &[String],
) -> Result<Vec<FactorProbe>, ProbeError> {
    check_shapes(codes, factors, names)?;
    let n = codes.nrows();
    let rows = |parity: usize| (parity..n).step_by(2).collect::<Vec<usize>>();
    let (fit_rows, score_rows) = (rows(0), rows(1));
    let (x_fit, x_score) = (design(codes, &fit_rows), design(codes, &score_rows));
    let cholesky = ridge_normal_equations(&x_fit)?;
    let neighbours = nearest_codes(codes, &fit_rows, &score_rows);
    Ok(names
        .iter()
        .enumerate()
        .map(|(column, name)| {
            let factor = |r: usize| f64::from(factors[[r, column]]);
            let target = |rows: &[usize]| {
                DVector::from_iterator(rows.len(), rows.iter().map(|&r| factor(r)))
            };
            let weights = cholesky.solve(&(x_fit.transpose() * target(&fit_rows)));
            let truth = target(&score_rows);
            let linear = &x_score * weights;
            let nearest = DVector::from_iterator(
                score_rows.len(),
                neighbours.iter().map(|near| {
                    near.iter().map(|&r| factor(r)).sum::<f64>() / near.len().max(1) as f64
                }),
            );
            FactorProbe {
                factor: name.clone(),
                r2: r_squared(&truth, &linear),
                r2_neighbours: r_squared(&truth, &nearest),
            }
        })
        .collect())
}

/// Checks that `codes` and `factors` describe the same events, at least 4 of them, and
/// that there is a name for each factor column.
///
/// # Errors
/// [`ProbeError`] naming the mismatch.
pub(crate) fn check_shapes(
    codes: &Array2<f32>,
    factors: &Array2<f32>,
    names: &[String],
) -> Result<(), ProbeError> {
    let n = codes.nrows();
    if factors.nrows() != n {
        return Err(ProbeError::RowMismatch {
            codes: n,
            factors: factors.nrows(),
        });
    }
    if names.len() != factors.ncols() {
        return Err(ProbeError::NameMismatch {
            columns: factors.ncols(),
            names: names.len(),
        });
    }
    if n < 4 {
        return Err(ProbeError::TooFewEvents(n));
    }
    Ok(())
}

/// The regression's design matrix for `rows` of `codes`: the bits as ±1, then a constant
/// column for the intercept.
pub(crate) fn design(codes: &Array2<f32>, rows: &[usize]) -> DMatrix<f64> {
    let bits = codes.ncols();
    DMatrix::from_fn(rows.len(), bits + 1, |r, c| {
        if c == bits {
            1.0
        } else {
            2.0 * f64::from(codes[[rows[r], c]]) - 1.0
        }
    })
}

/// The ridge regression's normal equations `(XᵀX + λI) w = Xᵀy` for a [`design`] matrix,
/// factored (the intercept, the last column, is not penalised).
///
/// # Errors
/// [`ProbeError::Singular`] if they have no unique solution.
pub(crate) fn ridge_normal_equations(x: &DMatrix<f64>) -> Result<Cholesky<f64, Dyn>, ProbeError> {
    let bits = x.ncols() - 1;
    let mut gram = x.transpose() * x;
    let ridge = RIDGE * gram.trace() / x.ncols() as f64;
    for i in 0..bits {
        gram[(i, i)] += ridge;
    }
    gram.cholesky().ok_or(ProbeError::Singular)
}

/// `1 − Σ(t − p)² / Σ(t − mean t)²`, or 0 for a constant truth.
fn r_squared(truth: &DVector<f64>, prediction: &DVector<f64>) -> f64 {
    let mean = truth.mean();
    let spread: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    if spread > 0.0 {
        1.0 - (prediction - truth).norm_squared() / spread
    } else {
        0.0
    }
}

/// For each of `score_rows`, the [`NEIGHBOURS`] of `fit_rows` whose codes are nearest in
/// Hamming distance (ties to the earlier row).
fn nearest_codes(codes: &Array2<f32>, fit_rows: &[usize], score_rows: &[usize]) -> Vec<Vec<usize>> {
    let pack = |row: usize| -> Vec<u64> {
        let bits = codes.row(row);
        bits.as_slice()
            .map(<[f32]>::to_vec)
            .unwrap_or_else(|| bits.to_vec())
            .chunks(64)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |word, (i, &b)| word | u64::from(b > 0.5) << i)
            })
            .collect()
    };
    let fit: Vec<Vec<u64>> = fit_rows.iter().map(|&r| pack(r)).collect();
    score_rows
        .iter()
        .map(|&row| {
            let code = pack(row);
            let mut distances: Vec<(u32, usize)> = fit
                .iter()
                .zip(fit_rows)
                .map(|(other, &r)| {
                    let distance = code
                        .iter()
                        .zip(other)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum();
                    (distance, r)
                })
                .collect();
            let k = NEIGHBOURS.min(distances.len());
            if k > 0 && k < distances.len() {
                distances.select_nth_unstable(k - 1);
            }
            distances.truncate(k);
            distances.into_iter().map(|(_, r)| r).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factor_written_in_the_bits_is_recovered_and_noise_is_not() {
        // Bits 0..4 spell a 4-bit number; bit 4 is unrelated to it.
        let n = 400;
        let number = |i: usize| (i * 5 + i / 16) % 16;
        let codes = Array2::from_shape_fn((n, 5), |(i, b)| {
            if b < 4 {
                (number(i) >> b & 1) as f32
            } else {
                ((i * 7 / 3) % 2) as f32
            }
        });
        let factors = Array2::from_shape_fn((n, 2), |(i, f)| {
            if f == 0 {
                number(i) as f32 * 0.5 + 3.0
            } else {
                // A factor the code knows nothing of.
                ((i * 2_654_435_761usize) % 1000) as f32
            }
        });
        let names = vec!["energy".to_string(), "unrelated".to_string()];
        let probes = probe(&codes, &factors, &names).unwrap();
        assert_eq!(probes[0].factor, "energy");
        assert!(probes[0].r2 > 0.999, "{probes:?}");
        // Ten neighbours reach past the 12 or so fitted events with the same number.
        assert!(probes[0].r2_neighbours > 0.9, "{probes:?}");
        assert!(probes[1].r2 < 0.1, "{probes:?}");
        assert!(probes[1].r2_neighbours < 0.1, "{probes:?}");
    }

    #[test]
    fn shapes_must_agree() {
        let codes = Array2::<f32>::zeros((10, 3));
        let one = vec!["a".to_string()];
        assert_eq!(
            probe(&codes, &Array2::zeros((9, 1)), &one),
            Err(ProbeError::RowMismatch {
                codes: 10,
                factors: 9
            })
        );
        assert!(matches!(
            probe(&codes, &Array2::zeros((10, 2)), &one),
            Err(ProbeError::NameMismatch { .. })
        ));
        assert_eq!(
            probe(&Array2::zeros((3, 3)), &Array2::zeros((3, 1)), &one),
            Err(ProbeError::TooFewEvents(3))
        );
    }
}
