//! Reading and using codes, "data compression for humans": what each bit (or float latent)
//! of a model changes in its reconstructions ([`Explorer::effects`], [`Explorer::traverse`]),
//! paths from one event's code to another's one bit at a time ([`Explorer::interpolate`]),
//! and code arithmetic ([`arithmetic`]).
//!
//! # Codes
//!
//! A binary model's codes are what the front-end sends: the int8 runtime's bits
//! ([`crate::ptq::runtime_codes`]), as 0/1. A Gaussian model's are its float latents, the
//! posterior means.
//!
//! # How much an edit matters
//!
//! An edit of a code is judged by how far it moves the reconstruction, in the report's units:
//! for point clouds the [Chamfer distance](crate::cloud) between the two reconstructions in
//! scaled units; for other events their squared difference in detector units over the mean
//! squared spread of the events (an nMSE with one reconstruction as the truth). A bit that
//! moves nothing carries nothing; the largest movers are what the code spends its bits on.
//!
//! # Edits
//!
//! - Binary: flipping bit `k`. A Gaussian latent is instead set to −[`SWEEP`] and to
//!   +[`SWEEP`] prior standard deviations, and the change between the two is its effect.
//! - Interpolation from code `A` to code `B` flips the bits where they differ one at a time,
//!   largest effect first, so the early steps show the bits that matter; a Gaussian path is
//!   a straight line in latent space.
//! - Arithmetic `A − B + C`: on floats, exactly that; on bits, the bits where `A` and `B`
//!   differ take `A`'s value and the others keep `C`'s: "apply to `C` what turns `B` into
//!   `A`". When `B` equals `C` the result is `A`, and when `A` equals `B` it is `C`.

use latentlink_model::latent::HeadKind;
use latentlink_model::tensor::{TensorError, to_array, to_tensor};
use latentlink_model::{Device, Vae};
use ndarray::{Array1, Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use crate::cloud;
use crate::data::{EventShape, Normalisation};
use crate::train::squared_spread;

/// How far a Gaussian latent is swept either way, in prior standard deviations.
pub const SWEEP: f32 = 2.0;

/// A model opened to read its codes.
#[derive(Debug)]
pub struct Explorer<'a> {
    /// The float model (its decoder turns codes back into events).
    pub model: &'a Vae,
    /// The package's event scaling.
    pub normalisation: &'a Normalisation,
    /// The event layout.
    pub shape: EventShape,
    /// The latent head: bits or float latents.
    pub head: HeadKind,
    /// Whether the events are point clouds (changes are Chamfer distances).
    pub point_clouds: bool,
    /// Mean squared distance of the events from their mean event, in detector units: the
    /// scale of a change for events that are not point clouds.
    pub spread: f64,
    /// Where the decoder runs.
    pub device: &'a Device,
}

/// One latent's effect on the reconstructions (see [the module](self)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The latent (bit) index.
    pub latent: usize,
    /// The mean change of the reconstruction when it is edited, over the events.
    pub mean_change: f64,
    /// Binary head: how often the bit is set in these events (a bit always 0 or always 1
    /// carries nothing, however much flipping it would move).
    pub ones: Option<f64>,
}

/// The edits of one event's code, one per latent, and their reconstructions.
#[derive(Debug, Clone)]
pub struct Traversal {
    /// Per latent, the reconstruction before the edit (binary: the event's own code;
    /// Gaussian: the latent at −[`SWEEP`]), `[latents, features]`, detector units.
    pub before: Array2<f32>,
    /// Per latent, the reconstruction after it (binary: bit flipped; Gaussian: at
    /// +[`SWEEP`]).
    pub after: Array2<f32>,
    /// Per latent, the change between the two.
    pub change: Vec<f64>,
}

impl<'a> Explorer<'a> {
    /// An explorer of `model` for events like `events` (raw, detector units), whose spread
    /// sets the scale of a change.
    pub fn new(
        model: &'a Vae,
        normalisation: &'a Normalisation,
        head: HeadKind,
        point_clouds: bool,
        events: &Array2<f32>,
        device: &'a Device,
    ) -> Self {
        Self {
            model,
            normalisation,
            shape: model.shape(),
            head,
            point_clouds,
            spread: squared_spread(events) / events.nrows().max(1) as f64,
            device,
        }
    }

    /// Codes of raw events for a Gaussian model: the posterior means. (A binary model's
    /// codes come from its int8 blob, [`crate::ptq::runtime_codes`].)
    ///
    /// # Errors
    /// [`TensorError`] if the latents cannot be read back.
    pub fn float_latents(&self, events: &Array2<f32>) -> Result<Array2<f32>, TensorError> {
        let normalised = self.normalisation.apply(events);
        to_array(self.model.encode(to_tensor(&normalised, self.device)).mu)
    }

    /// Reconstructions of `codes`, `[N, latents]`, in detector units.
    ///
    /// # Errors
    /// [`TensorError`] if the reconstructions cannot be read back.
    pub fn decode(&self, codes: &Array2<f32>) -> Result<Array2<f32>, TensorError> {
        let decoded = to_array(self.model.decode(to_tensor(codes, self.device)))?;
        Ok(self.normalisation.invert(&decoded))
    }

    /// How far each reconstruction in `b` is from the one in `a` (both `[N, features]`,
    /// detector units), in the units of [the module](self#how-much-an-edit-matters).
    pub fn change(&self, a: &Array2<f32>, b: &Array2<f32>) -> Vec<f64> {
        if self.point_clouds {
            let (a, b) = (self.normalisation.apply(a), self.normalisation.apply(b));
            return cloud::event_chamfers(&a, &b, self.shape.length);
        }
        let scale = self.spread.max(f64::MIN_POSITIVE);
        a.rows()
            .into_iter()
            .zip(b.rows())
            .map(|(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| f64::from(p - q).powi(2))
                    .sum::<f64>()
                    / scale
            })
            .collect()
    }

    /// The value of a latent before and after its edit, from its `value` in a code
    /// (binary: as it is, then flipped; Gaussian: −[`SWEEP`], then +[`SWEEP`]).
    fn edit(&self, value: f32) -> (f32, f32) {
        match self.head {
            HeadKind::Binary => (value, 1.0 - value),
            HeadKind::Gaussian => (-SWEEP, SWEEP),
        }
    }

    /// The two edited versions of every code in `codes` for `latent` ([`Self::edit`]).
    fn edits(&self, codes: &Array2<f32>, latent: usize) -> (Array2<f32>, Array2<f32>) {
        let (mut before, mut after) = (codes.clone(), codes.clone());
        for ((b, a), &value) in before
            .column_mut(latent)
            .iter_mut()
            .zip(after.column_mut(latent))
            .zip(codes.column(latent))
        {
            (*b, *a) = self.edit(value);
        }
        (before, after)
    }

    /// Every latent's effect over the events whose codes are `codes`, largest first.
    ///
    /// # Errors
    /// [`TensorError`] if a reconstruction cannot be read back.
    pub fn effects(&self, codes: &Array2<f32>) -> Result<Vec<Effect>, TensorError> {
        let events = codes.nrows().max(1) as f64;
        let mut effects = Vec::with_capacity(codes.ncols());
        for latent in 0..codes.ncols() {
            let (before, after) = self.edits(codes, latent);
            let change = self.change(&self.decode(&before)?, &self.decode(&after)?);
            effects.push(Effect {
                latent,
                mean_change: change.iter().sum::<f64>() / events,
                ones: (self.head == HeadKind::Binary)
                    .then(|| f64::from(codes.column(latent).sum()) / events),
            });
        }
        effects.sort_by(|a, b| b.mean_change.total_cmp(&a.mean_change));
        Ok(effects)
    }

    /// Every edit of one event's `code` (see [`Traversal`]).
    ///
    /// # Errors
    /// [`TensorError`] if a reconstruction cannot be read back.
    pub fn traverse(&self, code: ArrayView1<'_, f32>) -> Result<Traversal, TensorError> {
        let latents = code.len();
        let codes = Array2::from_shape_fn((latents, latents), |(_, k)| code[k]);
        let (mut before, mut after) = (codes.clone(), codes);
        for (latent, &value) in code.iter().enumerate() {
            (before[[latent, latent]], after[[latent, latent]]) = self.edit(value);
        }
        let (before, after) = (self.decode(&before)?, self.decode(&after)?);
        let change = self.change(&before, &after);
        Ok(Traversal {
            before,
            after,
            change,
        })
    }

    /// The codes on the way from `from` to `to` (see [the module](self#edits)), both ends
    /// included: one step per differing bit, flipped in the order of `ranking` (latent
    /// indices, most important first; latents missing from it go last, by index), or
    /// `steps` evenly spaced points for a Gaussian model.
    pub fn interpolate(
        &self,
        from: ArrayView1<'_, f32>,
        to: ArrayView1<'_, f32>,
        ranking: &[usize],
        steps: usize,
    ) -> Array2<f32> {
        match self.head {
            HeadKind::Binary => bit_path(from, to, ranking),
            HeadKind::Gaussian => {
                let steps = steps.max(2);
                Array2::from_shape_fn((steps, from.len()), |(step, latent)| {
                    let t = step as f32 / (steps - 1) as f32;
                    from[latent] + t * (to[latent] - from[latent])
                })
            }
        }
    }
}

/// The binary path from `from` to `to`: each row flips one more of the bits where they
/// differ, in the order of `ranking` (then by index).
fn bit_path(from: ArrayView1<'_, f32>, to: ArrayView1<'_, f32>, ranking: &[usize]) -> Array2<f32> {
    let latents = from.len();
    let mut order: Vec<usize> = ranking.iter().copied().filter(|&k| k < latents).collect();
    order.extend((0..latents).filter(|k| !ranking.contains(k)));
    let differing: Vec<usize> = order.into_iter().filter(|&k| from[k] != to[k]).collect();
    let mut path = Array2::zeros((differing.len() + 1, latents));
    let mut code = from.to_owned();
    path.row_mut(0).assign(&code);
    for (step, &k) in differing.iter().enumerate() {
        code[k] = to[k];
        path.row_mut(step + 1).assign(&code);
    }
    path
}

/// `a − b + c` (see [the module](self#edits) for the rule on bits).
pub fn arithmetic(
    head: HeadKind,
    a: ArrayView1<'_, f32>,
    b: ArrayView1<'_, f32>,
    c: ArrayView1<'_, f32>,
) -> Array1<f32> {
    match head {
        HeadKind::Gaussian => &a - &b + c,
        HeadKind::Binary => {
            Array1::from_shape_fn(a.len(), |k| if a[k] == b[k] { c[k] } else { a[k] })
        }
    }
}

/// Number of positions where two codes differ.
pub fn hamming(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_bit_path_flips_the_differing_bits_in_ranking_order() {
        let from = array![0.0f32, 1.0, 0.0, 1.0];
        let to = array![1.0f32, 1.0, 1.0, 0.0];
        let path = bit_path(from.view(), to.view(), &[3, 1]);
        // Bit 3 first (ranked), then the unranked differing bits by index: 0, 2.
        assert_eq!(
            path,
            array![
                [0.0, 1.0, 0.0, 1.0],
                [0.0, 1.0, 0.0, 0.0],
                [1.0, 1.0, 0.0, 0.0],
                [1.0, 1.0, 1.0, 0.0]
            ]
        );
        assert_eq!(bit_path(from.view(), from.view(), &[]).nrows(), 1);
    }

    #[test]
    fn bit_arithmetic_applies_the_change_from_b_to_a_onto_c() {
        let a = array![1.0f32, 0.0, 1.0, 0.0];
        let b = array![0.0f32, 0.0, 1.0, 1.0];
        let c = array![0.0f32, 1.0, 0.0, 1.0];
        let sum = arithmetic(HeadKind::Binary, a.view(), b.view(), c.view());
        assert_eq!(sum, array![1.0, 1.0, 0.0, 0.0]);
        // B = C gives A; A = B gives C.
        assert_eq!(
            arithmetic(HeadKind::Binary, a.view(), c.view(), c.view()),
            a
        );
        assert_eq!(
            arithmetic(HeadKind::Binary, a.view(), a.view(), c.view()),
            c
        );
        assert_eq!(hamming(a.view(), c.view()), 4);
        assert_eq!(hamming(sum.view(), c.view()), 2);
        let floats = arithmetic(HeadKind::Gaussian, a.view(), b.view(), c.view());
        assert_eq!(floats, array![1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_traversal_edits_one_latent_per_row_and_effects_rank_them() {
        let device = latentlink_model::Backend::Flex.device();
        let model = latentlink_model::VaeConfig::new(1, 6, 4, vec![8]).init(&device);
        let normalisation = Normalisation {
            mean: vec![1.0; 6],
            std: vec![2.0; 6],
        };
        let events = Array2::from_shape_fn((5, 6), |(n, i)| (n * 6 + i) as f32 % 4.0);
        let binary = Explorer::new(
            &model,
            &normalisation,
            HeadKind::Binary,
            false,
            &events,
            &device,
        );
        let code = array![1.0f32, 0.0, 0.0, 1.0];
        let traversal = binary.traverse(code.view()).unwrap();
        let own = binary
            .decode(&code.clone().insert_axis(ndarray::Axis(0)))
            .unwrap();
        for latent in 0..4 {
            // Before: the event's own reconstruction; after: one bit flipped.
            assert_eq!(traversal.before.row(latent), own.row(0));
            let mut flipped = code.clone();
            flipped[latent] = 1.0 - flipped[latent];
            let expected = binary
                .decode(&flipped.insert_axis(ndarray::Axis(0)))
                .unwrap();
            assert_eq!(traversal.after.row(latent), expected.row(0));
        }
        assert!(traversal.change.iter().all(|&c| c > 0.0), "{traversal:?}");
        let codes = array![[1.0f32, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]];
        let effects = binary.effects(&codes).unwrap();
        assert_eq!(effects.len(), 4);
        assert!(
            effects
                .windows(2)
                .all(|w| w[0].mean_change >= w[1].mean_change)
        );
        let bit0 = effects.iter().find(|e| e.latent == 0).unwrap();
        assert_eq!(bit0.ones, Some(1.0));
        let gaussian = Explorer {
            head: HeadKind::Gaussian,
            ..binary
        };
        let traversal = gaussian.traverse(code.view()).unwrap();
        let mut low = code.clone();
        low[2] = -SWEEP;
        let expected = gaussian.decode(&low.insert_axis(ndarray::Axis(0))).unwrap();
        assert_eq!(traversal.before.row(2), expected.row(0));
        let path = gaussian.interpolate(code.view(), array![0.0f32, 0.0, 0.0, 0.0].view(), &[], 3);
        assert_eq!(path.row(1), array![0.5, 0.0, 0.0, 0.5]);
    }
}
