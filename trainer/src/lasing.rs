//! "Just create it": a lasing-off reference for a Polarix image made from the image itself.
//!
//! The X-ray power profile of an FEL pulse comes from comparing a longitudinal phase-space
//! image of a lasing bunch with one of the same bunch without lasing
//! ([`polarix::power_profile`]). That reference cannot be measured: suppressing lasing costs
//! shots, and the next bunch is never the same bunch. A model trained on lasing and
//! non-lasing shots keeps lasing in some latent; setting that latent to its lasing-off
//! value and decoding gives a reference with this bunch's current, chirp and energy, and no
//! lasing.
//!
//! - [`find_lasing_latent`]: the latent (a bit, or a Gaussian latent cut into the
//!   [disentanglement bins](crate::disentangle::BINS)) whose mutual information with the
//!   lasing label is largest, and the value non-lasing shots give it (the bit most of them
//!   have, or their median).
//! - [`switch_off`]: every code with that latent at its lasing-off value.
//! - [`matched_references`]: what a facility does without a model, for comparison: the
//!   non-lasing shot closest to each image.
//! - [`score`]: how well a set of references gives the true power profiles.

use latentlink_model::latent::HeadKind;
use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::Serialize;

use crate::disentangle::{bin, entropy_of_labels, label_information};
use crate::sim::polarix::{self, COLUMNS, ROWS};

/// The latent that says whether a shot lases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LasingLatent {
    /// Its index in the code.
    pub latent: usize,
    /// Its mutual information with the lasing label over the label's entropy (0 to 1).
    pub information: f64,
    /// The runner-up latent and its share of information, to see how alone the best is.
    pub runner_up: Option<(usize, f64)>,
    /// Its value in shots that do not lase: the bit most of them have (binary) or their
    /// median (Gaussian).
    pub off_value: f32,
    /// The same for shots that lase.
    pub on_value: f32,
}

/// A lasing analysis that cannot run on the data given.
#[derive(Debug, thiserror::Error)]
pub enum LasingError {
    /// The codes, images, labels or truths are not one per event.
    #[error("{what} has {found} events where the codes have {expected}")]
    Length {
        /// The array that disagrees.
        what: &'static str,
        /// Its events.
        found: usize,
        /// The codes' events.
        expected: usize,
    },
    /// Every shot lases, or none does.
    #[error(
        "the data hold no shot that {missing}: finding the lasing latent needs shots that lase \
         and shots that do not"
    )]
    OneClass {
        /// "lases" or "does not lase".
        missing: &'static str,
    },
    /// The events are not Polarix images.
    #[error(
        "events of {found} features: the energy-loss method reads images of {ROWS} energy rows \
         × {COLUMNS} time columns"
    )]
    NotPolarix {
        /// Features per event.
        found: usize,
    },
}

/// Whether each shot lases: a lasing label above ½.
fn lasing_labels(lasing: ArrayView1<'_, f32>) -> Vec<usize> {
    lasing.iter().map(|&l| usize::from(l > 0.5)).collect()
}

fn check_length(what: &'static str, found: usize, expected: usize) -> Result<(), LasingError> {
    if found == expected {
        Ok(())
    } else {
        Err(LasingError::Length {
            what,
            found,
            expected,
        })
    }
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Finds the latent of `codes` (`[N, latents]`: 0/1 bits for a binary head, float latents
/// for a Gaussian one) that knows most about `lasing` (1 for a lasing shot, 0 otherwise).
///
/// # Errors
/// [`LasingError`] if the lengths disagree or only one class of shot is present.
pub fn find_lasing_latent(
    codes: &Array2<f32>,
    lasing: ArrayView1<'_, f32>,
    head: HeadKind,
) -> Result<LasingLatent, LasingError> {
    check_length("the lasing label", lasing.len(), codes.nrows())?;
    let labels = lasing_labels(lasing);
    let lasing_shots = labels.iter().sum::<usize>();
    if lasing_shots == 0 {
        return Err(LasingError::OneClass { missing: "lases" });
    }
    if lasing_shots == labels.len() {
        return Err(LasingError::OneClass {
            missing: "does not lase",
        });
    }
    let entropy = entropy_of_labels(&labels);
    let mut ranking: Vec<(usize, f64)> = codes
        .columns()
        .into_iter()
        .enumerate()
        .map(|(latent, values)| {
            let latent_labels = match head {
                HeadKind::Binary => lasing_labels(values),
                HeadKind::Gaussian => bin(values),
            };
            (latent, label_information(&latent_labels, &labels) / entropy)
        })
        .collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (latent, information) = ranking[0];
    // The median of 0/1 bits is the value most of them have.
    let typical = |lases: usize| {
        median(
            codes
                .column(latent)
                .iter()
                .zip(&labels)
                .filter(|&(_, &l)| l == lases)
                .map(|(&v, _)| v)
                .collect(),
        )
    };
    Ok(LasingLatent {
        latent,
        information,
        runner_up: ranking.get(1).copied(),
        off_value: typical(0),
        on_value: typical(1),
    })
}

/// `codes` with the lasing latent set to its lasing-off value.
pub fn switch_off(codes: &Array2<f32>, latent: &LasingLatent) -> Array2<f32> {
    let mut switched = codes.clone();
    switched.column_mut(latent.latent).fill(latent.off_value);
    switched
}

/// Refuses events that are not Polarix images.
///
/// # Errors
/// [`LasingError::NotPolarix`].
pub fn check_images(images: &Array2<f32>) -> Result<(), LasingError> {
    if images.ncols() == ROWS * COLUMNS {
        Ok(())
    } else {
        Err(LasingError::NotPolarix {
            found: images.ncols(),
        })
    }
}

fn as_image(row: ArrayView1<'_, f32>) -> ArrayView2<'_, f32> {
    row.into_shape_with_order((ROWS, COLUMNS))
        .unwrap_or_else(|_| unreachable!("checked by check_images"))
}

/// For each shot, the non-lasing shot of `images` (not itself) closest to it in squared
/// distance over the whole image: the reference a facility picks from shots taken with
/// lasing suppressed. (Matching the current profile alone, which lasing leaves unchanged,
/// picks shots of another energy and chirp, whose centroids differ by more than the
/// lasing's energy loss.)
///
/// # Errors
/// [`LasingError`] if the images are not Polarix images, the lengths disagree or fewer than
/// one non-lasing shot besides each shot exists.
pub fn matched_references(
    images: &Array2<f32>,
    lasing: ArrayView1<'_, f32>,
) -> Result<Array2<f32>, LasingError> {
    check_images(images)?;
    check_length("the lasing label", lasing.len(), images.nrows())?;
    let off: Vec<usize> = (0..images.nrows()).filter(|&n| lasing[n] <= 0.5).collect();
    let mut references = Array2::zeros(images.raw_dim());
    for (n, image) in images.rows().into_iter().enumerate() {
        let distance = |m: usize| {
            image
                .iter()
                .zip(images.row(m))
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
        };
        let closest = off
            .iter()
            .filter(|&&m| m != n)
            .min_by(|&&a, &&b| distance(a).total_cmp(&distance(b)))
            .ok_or(LasingError::OneClass {
                missing: "does not lase (besides the shot itself)",
            })?;
        references.row_mut(n).assign(&images.row(*closest));
    }
    Ok(references)
}

/// How well one set of references gives the power profiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceScore {
    /// Where the references come from.
    pub reference: String,
    /// Lasing shots scored.
    pub lasing_shots: usize,
    /// Mean over lasing shots of the rms difference between measured and true power over
    /// the true peak power.
    pub profile_error: f64,
    /// Mean |measured − true| pulse energy over the true one, over lasing shots.
    pub pulse_energy_error: f64,
    /// Mean (measured − true) pulse energy over the true one, over lasing shots.
    pub pulse_energy_bias: f64,
    /// Mean |measured pulse energy| (µJ) of the shots that do not lase: power measured
    /// where there is none.
    pub false_pulse_energy_uj: f64,
}

/// The power profile of every image against its reference, `[N, COLUMNS]` in GW
/// ([`polarix::power_profile`]).
///
/// # Errors
/// [`LasingError`] if the images are not Polarix images or their counts disagree.
pub fn power_profiles(
    images: &Array2<f32>,
    references: &Array2<f32>,
) -> Result<Array2<f32>, LasingError> {
    check_images(images)?;
    check_images(references)?;
    check_length("the references", references.nrows(), images.nrows())?;
    let mut profiles = Array2::zeros((images.nrows(), COLUMNS));
    for (shot, mut profile) in profiles.rows_mut().into_iter().enumerate() {
        profile.assign(&polarix::power_profile(
            as_image(images.row(shot)),
            as_image(references.row(shot)),
        ));
    }
    Ok(profiles)
}

/// Scores measured power profiles (`[N, COLUMNS]`, GW, from [`power_profiles`]) against
/// the true ones `power` with the labels `lasing`.
///
/// # Errors
/// [`LasingError::Length`] if the lengths disagree.
pub fn score(
    name: &str,
    measured: &Array2<f32>,
    power: &Array2<f32>,
    lasing: ArrayView1<'_, f32>,
) -> Result<ReferenceScore, LasingError> {
    let n = measured.nrows();
    check_length("the true power", power.nrows(), n)?;
    check_length("the lasing label", lasing.len(), n)?;
    let (mut profile, mut energy, mut bias, mut lasing_shots) = (0.0, 0.0, 0.0, 0usize);
    let (mut false_energy, mut off_shots) = (0.0, 0usize);
    for shot in 0..n {
        let estimate = measured.row(shot).to_owned();
        let measured_energy = f64::from(polarix::pulse_energy(&estimate));
        if lasing[shot] > 0.5 {
            let truth = power.row(shot).to_owned();
            let peak = f64::from(truth.iter().copied().fold(0.0, f32::max));
            let true_energy = f64::from(polarix::pulse_energy(&truth));
            if peak > 0.0 && true_energy > 0.0 {
                let squared = (&estimate - &truth).mapv(|d| f64::from(d * d)).sum();
                profile += (squared / COLUMNS as f64).sqrt() / peak;
                energy += (measured_energy - true_energy).abs() / true_energy;
                bias += (measured_energy - true_energy) / true_energy;
                lasing_shots += 1;
            }
        } else {
            false_energy += measured_energy.abs();
            off_shots += 1;
        }
    }
    let mean = |sum: f64, count: usize| sum / count.max(1) as f64;
    Ok(ReferenceScore {
        reference: name.to_owned(),
        lasing_shots,
        profile_error: mean(profile, lasing_shots),
        pulse_energy_error: mean(energy, lasing_shots),
        pulse_energy_bias: mean(bias, lasing_shots),
        false_pulse_energy_uj: mean(false_energy, off_shots),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Simulator;
    use ndarray::{Array1, array};

    fn flat(images: &ndarray::ArrayD<f32>) -> Array2<f32> {
        let n = images.shape()[0];
        images
            .to_owned()
            .into_shape_with_order((n, ROWS * COLUMNS))
            .unwrap()
    }

    #[test]
    fn the_bit_that_copies_the_label_is_found_with_its_off_value() {
        let lasing = array![1.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        // Bit 2 is the label inverted (1 means off); bit 0 is noise; bit 1 half agrees.
        let codes = array![
            [1.0f32, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 1.0],
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 1.0],
            [0.0, 1.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
        ];
        let found = find_lasing_latent(&codes, lasing.view(), HeadKind::Binary).unwrap();
        assert_eq!(
            (found.latent, found.off_value, found.on_value),
            (2, 1.0, 0.0)
        );
        assert!((found.information - 1.0).abs() < 1e-9);
        assert!(found.runner_up.unwrap().1 < 0.5);
        let switched = switch_off(&codes, &found);
        assert!(switched.column(2).iter().all(|&b| b == 1.0));
        assert_eq!(switched.column(0), codes.column(0));
    }

    #[test]
    fn one_class_of_shot_is_refused() {
        let codes = Array2::<f32>::zeros((4, 2));
        let all = Array1::<f32>::ones(4);
        assert!(matches!(
            find_lasing_latent(&codes, all.view(), HeadKind::Gaussian),
            Err(LasingError::OneClass { .. })
        ));
        assert!(matches!(
            find_lasing_latent(&codes, Array1::zeros(3).view(), HeadKind::Gaussian),
            Err(LasingError::Length { .. })
        ));
    }

    /// The true lasing-off twins score far better than no lasing at all (the lasing image
    /// as its own reference, which measures zero power), and a matched shot lies between.
    #[test]
    fn references_are_scored_against_the_truth() {
        let sim = Simulator::Polarix.simulate(300, 4);
        let images = flat(&sim.events);
        let twins = flat(&sim.truths[1].values);
        let power = sim.truths[0]
            .values
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let lasing = sim.factors.column(0);
        let scored = |name, references: &Array2<f32>| {
            let measured = power_profiles(&images, references).unwrap();
            assert_eq!(measured.dim(), (300, COLUMNS));
            score(name, &measured, &power, lasing).unwrap()
        };
        let twin = scored("twin", &twins);
        let own = scored("own", &images);
        let matched = scored("matched", &matched_references(&images, lasing).unwrap());
        assert!(twin.lasing_shots > 150);
        assert!((own.pulse_energy_bias + 1.0).abs() < 1e-9, "{own:?}");
        assert!(
            twin.profile_error < 0.5 * matched.profile_error,
            "{twin:?} {matched:?}"
        );
        assert!(
            matched.profile_error < own.profile_error,
            "{matched:?} {own:?}"
        );
    }

    #[test]
    fn other_images_are_refused() {
        let images = Array2::<f32>::zeros((3, 100));
        assert!(matches!(
            matched_references(&images, Array1::zeros(3).view()),
            Err(LasingError::NotPolarix { found: 100 })
        ));
    }
}
