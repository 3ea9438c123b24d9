//! Disentanglement: does each known factor behind the events (a simulator's photon energy,
//! pointing, particle type...) live in few bits, and does each bit serve few factors? Two
//! standard scores, measured on code bits against ground-truth factors:
//!
//! - **MIG**, the mutual information gap (Chen et al. 2018): for each factor, the mutual
//!   information of the bit that knows most about it minus that of the runner-up, over the
//!   factor's entropy; 1 when one bit alone carries the factor, 0 when two bits share it
//!   equally. Factors are cut into [`BINS`] bins of equal counts (fewer if the factor takes
//!   fewer values, e.g. a particle type); bits are already discrete.
//! - **DCI** disentanglement and completeness (Eastwood and Williams 2018) from the
//!   importance of each bit to each factor, here the magnitude of its weight in a ridge
//!   regression of the standardised factor on the bits as ±1 (the linear probe's model):
//!   disentanglement is 1 when every bit matters to one factor only, completeness is 1 when
//!   every factor rests on one bit only. (Their third score, informativeness, is the probe's
//!   R², [`crate::probe`].)
//!
//! Codes meant to be read by people should score high on both; a code tuned only for
//! reconstruction need not (a factor spread over many bits is still kept, see the probe).

use nalgebra::{DMatrix, DVector};
use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use crate::probe::{ProbeError, check_shapes, design, ridge_normal_equations};

/// Bins a continuous factor is cut into for the mutual information.
pub const BINS: usize = 20;

/// How one factor sits in the bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorBits {
    /// The factor's name.
    pub factor: String,
    /// The bit with the most mutual information with it.
    pub best_bit: usize,
    /// That mutual information over the factor's entropy (0 to 1).
    pub best_information: f64,
    /// The factor's mutual information gap (see [the module](self)).
    pub gap: f64,
    /// DCI completeness for this factor.
    pub completeness: f64,
}

/// The disentanglement scores of a code against known factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disentanglement {
    /// Mean mutual information gap over the factors.
    pub mig: f64,
    /// DCI disentanglement, weighted by how much each bit matters overall.
    pub dci_disentanglement: f64,
    /// DCI completeness, the mean over the factors.
    pub dci_completeness: f64,
    /// Per factor.
    pub factors: Vec<FactorBits>,
}

/// Scores `codes` (`[N, bits]`, 0/1) against `factors` (`[N, F]`), one name per factor.
///
/// # Errors
/// [`ProbeError`] if the shapes disagree, there are fewer than 4 events, or the regression
/// is singular.
pub fn measure(
    codes: &Array2<f32>,
    factors: &Array2<f32>,
    names: &[String],
) -> Result<Disentanglement, ProbeError> {
    check_shapes(codes, factors, names)?;
    let bits = codes.ncols();
    let importance = importance(codes, factors)?;
    let factor_count = factors.ncols();
    let mut per_factor = Vec::with_capacity(factor_count);
    for (column, name) in names.iter().enumerate() {
        let labels = bin(factors.column(column));
        let entropy = entropy_of_labels(&labels);
        let mut information: Vec<(f64, usize)> = (0..bits)
            .map(|bit| (mutual_information(codes.column(bit), &labels), bit))
            .collect();
        information.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let first = information.first().copied().unwrap_or((0.0, 0));
        let second = information.get(1).map_or(0.0, |i| i.0);
        let share = |value: f64| if entropy > 0.0 { value / entropy } else { 0.0 };
        let column_importance: Vec<f64> = (0..bits).map(|bit| importance[(bit, column)]).collect();
        per_factor.push(FactorBits {
            factor: name.clone(),
            best_bit: first.1,
            best_information: share(first.0),
            gap: share(first.0 - second),
            completeness: 1.0 - normalised_entropy(&column_importance),
        });
    }
    let total: f64 = importance.iter().sum();
    let dci_disentanglement = if total > 0.0 {
        (0..bits)
            .map(|bit| {
                let row: Vec<f64> = (0..factor_count).map(|f| importance[(bit, f)]).collect();
                let weight = row.iter().sum::<f64>() / total;
                weight * (1.0 - normalised_entropy(&row))
            })
            .sum()
    } else {
        0.0
    };
    let mean =
        |values: &mut dyn Iterator<Item = f64>| values.sum::<f64>() / factor_count.max(1) as f64;
    Ok(Disentanglement {
        mig: mean(&mut per_factor.iter().map(|f| f.gap)),
        dci_disentanglement,
        dci_completeness: mean(&mut per_factor.iter().map(|f| f.completeness)),
        factors: per_factor,
    })
}

/// `[bits, factors]`: |weight| of each bit (as ±1) in a ridge regression of each
/// standardised factor on all bits.
fn importance(codes: &Array2<f32>, factors: &Array2<f32>) -> Result<DMatrix<f64>, ProbeError> {
    let (n, bits) = codes.dim();
    let x = design(codes, &(0..n).collect::<Vec<_>>());
    let cholesky = ridge_normal_equations(&x)?;
    let mut importance = DMatrix::zeros(bits, factors.ncols());
    for (column, factor) in factors.columns().into_iter().enumerate() {
        let values: Vec<f64> = factor.iter().map(|&v| f64::from(v)).collect();
        let mean = values.iter().sum::<f64>() / n as f64;
        let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let scale = if spread > 0.0 { spread } else { 1.0 };
        let target = DVector::from_iterator(n, values.iter().map(|v| (v - mean) / scale));
        let weights = cholesky.solve(&(x.transpose() * target));
        for bit in 0..bits {
            importance[(bit, column)] = weights[bit].abs();
        }
    }
    Ok(importance)
}

/// Each value's bin: [`BINS`] bins of (nearly) equal counts, ties kept in one bin, so a
/// factor of few distinct values gets one bin per value.
pub fn bin(values: ArrayView1<'_, f32>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut labels = vec![0; values.len()];
    let per_bin = values.len().div_ceil(BINS).max(1);
    let (mut label, mut in_bin) = (0, 0);
    for (rank, &i) in order.iter().enumerate() {
        let tied = rank > 0 && values[i] == values[order[rank - 1]];
        if in_bin >= per_bin && !tied {
            label += 1;
            in_bin = 0;
        }
        labels[i] = label;
        in_bin += 1;
    }
    labels
}

fn entropy_of_counts(counts: impl Iterator<Item = usize>, total: usize) -> f64 {
    let total = total.max(1) as f64;
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum()
}

/// Entropy (nats) of a labelling.
pub fn entropy_of_labels(labels: &[usize]) -> f64 {
    let mut counts = vec![0usize; labels.iter().max().map_or(0, |m| m + 1)];
    for &l in labels {
        counts[l] += 1;
    }
    entropy_of_counts(counts.into_iter(), labels.len())
}

/// Mutual information (nats) of a 0/1 bit and binned labels.
fn mutual_information(bit: ArrayView1<'_, f32>, labels: &[usize]) -> f64 {
    let bit: Vec<usize> = bit.iter().map(|&b| usize::from(b > 0.5)).collect();
    label_information(&bit, labels)
}

/// Mutual information (nats) of two labellings of the same events, from their joint counts.
pub fn label_information(a: &[usize], b: &[usize]) -> f64 {
    let classes = b.iter().max().map_or(0, |m| m + 1);
    let joint: Vec<usize> = a.iter().zip(b).map(|(&x, &y)| x * classes + y).collect();
    (entropy_of_labels(a) + entropy_of_labels(b) - entropy_of_labels(&joint)).max(0.0)
}

/// Entropy of the distribution proportional to `weights`, over the log of their count
/// (0: all weight on one, 1: spread evenly). 1 for all-zero weights.
fn normalised_entropy(weights: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    if weights.len() < 2 || total <= 0.0 {
        return if total <= 0.0 { 1.0 } else { 0.0 };
    }
    let entropy: f64 = weights
        .iter()
        .filter(|&&w| w > 0.0)
        .map(|&w| {
            let p = w / total;
            -p * p.ln()
        })
        .sum();
    entropy / (weights.len() as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 400 events, two factors; bit 0 is factor 0's sign, bit 1 factor 1's, bits 2–5 noise.
    fn one_bit_per_factor() -> (Array2<f32>, Array2<f32>) {
        let n = 400;
        // Independent uniform values in [0, 1) per (event, column): a SplitMix64 finaliser.
        let noise = |i: usize, k: usize| {
            let mut z = (i as u64 * 64 + k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z >> 40) as f32 / (1u64 << 24) as f32
        };
        let factors = Array2::from_shape_fn((n, 2), |(i, f)| noise(i, f + 10) - 0.5);
        let codes = Array2::from_shape_fn((n, 6), |(i, k)| match k {
            0 | 1 => f32::from(u8::from(factors[[i, k]] > 0.0)),
            _ => f32::from(u8::from(noise(i, k) > 0.5)),
        });
        (codes, factors)
    }

    #[test]
    fn one_bit_per_factor_is_disentangled_and_a_shared_factor_is_not() {
        let (codes, factors) = one_bit_per_factor();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let d = measure(&codes, &factors, &names).unwrap();
        assert_eq!((d.factors[0].best_bit, d.factors[1].best_bit), (0, 1));
        // A sign bit holds ln 2 of a factor's ln 20 nats: its share is 0.23.
        let share = d.factors[0].best_information;
        assert!(
            share > 0.15 && share <= 2f64.ln() / 20f64.ln() + 1e-9,
            "{d:?}"
        );
        assert!(
            d.mig > 0.18 && d.dci_disentanglement > 0.7 && d.dci_completeness > 0.6,
            "{d:?}"
        );

        // Both bits copy factor 0: no gap, and each bit is still about one factor only.
        let mut copied = codes.clone();
        let first = codes.column(0).to_owned();
        copied.column_mut(1).assign(&first);
        let d = measure(&copied, &factors, &names).unwrap();
        assert!(d.factors[0].gap < 0.01, "{d:?}");
    }

    #[test]
    fn bins_have_equal_counts_and_ties_stay_together() {
        let values = ndarray::Array1::from_iter((0..40).map(|i| i as f32));
        let labels = bin(values.view());
        assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 2);
        assert_eq!(*labels.iter().max().unwrap(), BINS - 1);
        let types = ndarray::Array1::from_iter((0..40).map(|i| (i % 3) as f32));
        let labels = bin(types.view());
        assert_eq!(*labels.iter().max().unwrap(), 2);
        assert!((entropy_of_labels(&labels) - 3f64.ln()).abs() < 0.01);
    }
}
