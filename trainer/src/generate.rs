//! New events from a binary code: sample codes, decode them. Two models of the code
//! distribution, both fitted on the codes of real events:
//!
//! - [`BitModel::independent`]: each bit on its own, with its frequency.
//! - [`BitModel::chow_liu`]: a Chow–Liu tree (Chow and Liu 1968), the best tree-shaped
//!   dependency model: bits are joined along the maximum spanning tree of their pairwise
//!   mutual information, and each bit is drawn given its parent. It keeps the strongest
//!   pairwise links between bits (a mean |r| of 0.18 between the shipped model's bits says
//!   there are some) at the cost of a bit-by-bit pass per code.
//!
//! Probabilities use Laplace's rule (counts + 1 over total + 2), so no bit value seen
//! never is impossible. Whether generation works is judged by comparing summary statistics
//! of generated and real events ([`summaries`]), not by looking.

use ndarray::{Array2, ArrayView1};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::cloud::Observables;
use crate::data::EventShape;

/// A fitted model of code bits that can be sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BitModel {
    /// Bits in the order they are drawn (parents before children).
    order: Vec<usize>,
    /// Each bit's parent (`None`: drawn from its own frequency).
    parent: Vec<Option<usize>>,
    /// `P(bit = 1 | parent = v)` for `v = 0, 1` (both the bit's frequency without a parent).
    p_one: Vec<[f64; 2]>,
}

fn laplace(ones: usize, total: usize) -> f64 {
    (ones as f64 + 1.0) / (total as f64 + 2.0)
}

fn bit(code: ArrayView1<'_, f32>, k: usize) -> usize {
    usize::from(code[k] > 0.5)
}

impl BitModel {
    /// Independent bits with the frequencies in `codes` (`[N, bits]`, 0/1).
    pub fn independent(codes: &Array2<f32>) -> Self {
        let (n, bits) = codes.dim();
        let p_one = (0..bits)
            .map(|k| {
                let ones = codes.column(k).iter().filter(|&&b| b > 0.5).count();
                [laplace(ones, n); 2]
            })
            .collect();
        Self {
            order: (0..bits).collect(),
            parent: vec![None; bits],
            p_one,
        }
    }

    /// The Chow–Liu tree of `codes` (`[N, bits]`, 0/1), rooted at bit 0.
    pub fn chow_liu(codes: &Array2<f32>) -> Self {
        let (n, bits) = codes.dim();
        // Joint counts of every pair: ones[j][k] = #(bit j = 1 and bit k = 1).
        let mut both = vec![0usize; bits * bits];
        for code in codes.rows() {
            let set: Vec<usize> = (0..bits).filter(|&k| bit(code, k) == 1).collect();
            for &j in &set {
                for &k in &set {
                    both[j * bits + k] += 1;
                }
            }
        }
        let information = |j: usize, k: usize| -> f64 {
            let (ones_j, ones_k, ones_jk) =
                (both[j * bits + j], both[k * bits + k], both[j * bits + k]);
            let cells = [
                n + ones_jk - ones_j - ones_k,
                ones_k - ones_jk,
                ones_j - ones_jk,
                ones_jk,
            ];
            let p = |count: usize| count as f64 / n.max(1) as f64;
            let (pj, pk) = (p(ones_j), p(ones_k));
            let marginals = [
                (1.0 - pj) * (1.0 - pk),
                (1.0 - pj) * pk,
                pj * (1.0 - pk),
                pj * pk,
            ];
            cells
                .into_iter()
                .zip(marginals)
                .filter(|&(c, m)| c > 0 && m > 0.0)
                .map(|(c, m)| p(c) * (p(c) / m).ln())
                .sum()
        };
        // Prim's algorithm for the maximum spanning tree, from bit 0.
        let mut parent = vec![None; bits];
        let mut order = Vec::with_capacity(bits);
        let mut in_tree = vec![false; bits];
        let mut best: Vec<(f64, Option<usize>)> = vec![(f64::NEG_INFINITY, None); bits];
        if bits > 0 {
            best[0] = (0.0, None);
        }
        for _ in 0..bits {
            let Some(next) = (0..bits)
                .filter(|&k| !in_tree[k])
                .max_by(|&a, &b| best[a].0.total_cmp(&best[b].0).then(b.cmp(&a)))
            else {
                break;
            };
            in_tree[next] = true;
            parent[next] = best[next].1;
            order.push(next);
            for k in (0..bits).filter(|&k| !in_tree[k]) {
                let gain = information(next, k);
                if gain > best[k].0 {
                    best[k] = (gain, Some(next));
                }
            }
        }
        let p_one = (0..bits)
            .map(|k| match parent[k] {
                None => [laplace(both[k * bits + k], n); 2],
                Some(j) => {
                    let (ones_j, ones_jk) = (both[j * bits + j], both[j * bits + k]);
                    let ones_k = both[k * bits + k];
                    [
                        laplace(ones_k - ones_jk, n - ones_j),
                        laplace(ones_jk, ones_j),
                    ]
                }
            })
            .collect();
        Self {
            order,
            parent,
            p_one,
        }
    }

    /// Code bits.
    pub fn bits(&self) -> usize {
        self.p_one.len()
    }

    /// Mean log-likelihood (nats per code) of `codes` under the model: higher is a better
    /// description of them.
    pub fn log_likelihood(&self, codes: &Array2<f32>) -> f64 {
        let total: f64 = codes
            .rows()
            .into_iter()
            .map(|code| {
                (0..self.bits())
                    .map(|k| {
                        let given = self.parent[k].map_or(0, |j| bit(code, j));
                        let p = self.p_one[k][given];
                        if bit(code, k) == 1 {
                            p.ln()
                        } else {
                            (1.0 - p).ln()
                        }
                    })
                    .sum::<f64>()
            })
            .sum();
        total / codes.nrows().max(1) as f64
    }

    /// `count` codes drawn from the model, `[count, bits]` as 0/1.
    pub fn sample(&self, count: usize, rng: &mut impl RngExt) -> Array2<f32> {
        let mut codes = Array2::zeros((count, self.bits()));
        for mut code in codes.rows_mut() {
            for &k in &self.order {
                let given = self.parent[k].map_or(0, |j| usize::from(code[j] > 0.5));
                code[k] = f32::from(u8::from(rng.random::<f64>() < self.p_one[k][given]));
            }
        }
        codes
    }
}

/// Summary statistics of events (detector units) for comparing generated with real ones,
/// with their names: for point clouds the total weight and the weighted centroid of each
/// other feature ([`Observables`]); for other events the total and, per channel, the
/// centre of the samples (`Σ i·x / Σ x`, in samples).
pub fn summaries(
    events: &Array2<f32>,
    shape: EventShape,
    point_clouds: bool,
) -> (Vec<String>, Array2<f64>) {
    if point_clouds {
        let features = shape.length;
        let mut names = vec!["total weight".to_owned()];
        names.extend((0..features.saturating_sub(1)).map(|f| format!("centroid of feature {f}")));
        let values = Array2::from_shape_fn((events.nrows(), names.len()), |(e, s)| {
            let cloud = events
                .row(e)
                .into_shape_with_order((shape.channels, features))
                .map(Observables::of);
            match cloud {
                Ok(o) if s == 0 => o.total,
                Ok(o) => o.centroid.get(s - 1).copied().unwrap_or(f64::NAN),
                Err(_) => f64::NAN,
            }
        });
        return (names, values);
    }
    let mut names = vec!["total".to_owned()];
    names.extend((0..shape.channels).map(|c| format!("centre of channel {c}")));
    let values = Array2::from_shape_fn((events.nrows(), names.len()), |(e, s)| {
        let row = events.row(e);
        if s == 0 {
            return row.iter().map(|&v| f64::from(v)).sum();
        }
        let channel = s - 1;
        let samples = &row
            .as_slice()
            .map(|r| &r[channel * shape.length..(channel + 1) * shape.length]);
        match samples {
            Some(samples) => {
                let total: f64 = samples.iter().map(|&v| f64::from(v)).sum();
                let moment: f64 = samples
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| i as f64 * f64::from(v))
                    .sum();
                if total.abs() > 0.0 {
                    moment / total
                } else {
                    f64::NAN
                }
            }
            None => f64::NAN,
        }
    });
    (names, values)
}

/// The earth mover's (Wasserstein-1) distance between two samples of a statistic, over
/// the real sample's standard deviation: 0 for the same distribution, about 1 for one
/// shifted by a standard deviation. NaN values are left out.
pub fn distribution_distance(real: ArrayView1<'_, f64>, generated: ArrayView1<'_, f64>) -> f64 {
    let sorted = |values: ArrayView1<'_, f64>| {
        let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(real), sorted(generated));
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let quantile = |v: &[f64], q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)];
    const STEPS: usize = 1000;
    let distance = (0..STEPS)
        .map(|i| {
            let q = (i as f64 + 0.5) / STEPS as f64;
            (quantile(&a, q) - quantile(&b, q)).abs()
        })
        .sum::<f64>()
        / STEPS as f64;
    let mean = a.iter().sum::<f64>() / a.len() as f64;
    let spread = (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
    if spread > 0.0 {
        distance / spread
    } else {
        distance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Bit 1 copies bit 0, bit 2 is its opposite, bit 3 is independent.
    fn linked_codes(n: usize) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(1);
        let mut values = Vec::with_capacity(n * 4);
        for _ in 0..n {
            let b0 = u8::from(rng.random::<f64>() < 0.3);
            let b3 = u8::from(rng.random::<f64>() < 0.5);
            values.extend([b0, b0, 1 - b0, b3].map(f32::from));
        }
        Array2::from_shape_vec((n, 4), values).unwrap()
    }

    #[test]
    fn the_tree_learns_linked_bits_and_independent_bits_do_not() {
        let codes = linked_codes(2000);
        let tree = BitModel::chow_liu(&codes);
        let independent = BitModel::independent(&codes);
        assert_eq!(tree.parent[1], Some(0));
        assert!(tree.parent[2] == Some(0) || tree.parent[2] == Some(1));
        assert!(tree.log_likelihood(&codes) > independent.log_likelihood(&codes) + 1.0);
        let mut rng = StdRng::seed_from_u64(2);
        let sampled = tree.sample(2000, &mut rng);
        let agree = sampled
            .rows()
            .into_iter()
            .filter(|c| c[0] == c[1] && c[0] != c[2])
            .count();
        assert!(agree > 1950, "{agree}");
        let ones = sampled.column(0).sum() / 2000.0;
        assert!((ones - 0.3).abs() < 0.05, "{ones}");
        let loose = independent.sample(2000, &mut rng);
        let agree = loose.rows().into_iter().filter(|c| c[0] == c[1]).count();
        assert!(agree < 1400, "{agree}");
    }

    #[test]
    fn the_distance_between_samples_is_in_standard_deviations() {
        let a = ndarray::Array1::from_iter((0..1000).map(|i| f64::from(i) / 100.0));
        let shifted = a.mapv(|v| v + 2.887);
        assert!(distribution_distance(a.view(), a.view()) < 1e-9);
        let d = distribution_distance(a.view(), shifted.view());
        // The std of a uniform over 10 is 2.887: a shift of one std reads as 1.
        assert!((d - 1.0).abs() < 0.01, "{d}");
    }
}
