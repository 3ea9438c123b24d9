//! Polarix-like images of an electron bunch's longitudinal phase space, lasing and not.
//!
//! At an X-ray free-electron laser, a transverse-deflecting cavity behind the undulators
//! (PolariX TDS at FLASH and the European XFEL) streaks the bunch so that a screen after a
//! dipole shows time along one axis and energy along the other. Each time column is one
//! slice of the bunch: its summed intensity is the slice's current `I(t)`, its centroid the
//! slice's mean energy, its width the slice's energy spread.
//!
//! # The bunch
//!
//! The current profile is a Gaussian with different head and tail widths (peak current,
//! centre and an rms length as factors). The mean energy follows a random offset, a linear
//! chirp and a quadratic curvature in time (the RF curvature left over after compression);
//! every slice has the same uncorrelated energy spread.
//!
//! # Lasing
//!
//! Slices that lase give energy to the X-ray pulse: an electron of a lasing slice loses
//! `ΔE(t)` on average and the slice's energy spread grows. `ΔE(t)` is a Gaussian in time
//! (centre and duration as factors) with a SASE-like random modulation of about one time
//! column. The X-ray power is the energy lost per second, `P(t) = ΔE(t) · I(t)`: with
//! `ΔE` in MeV and `I` in kA, `P` is in GW (10⁶ V · 10³ A), and its sum over time in
//! GW · fs is the pulse energy in µJ. That power profile is the ground truth
//! ([`POWER`], `power.npy`); about a quarter of the shots do not lase ([`LASING_FRACTION`]).
//!
//! # Measuring the power: the energy-loss method
//!
//! [`power_profile`] compares a lasing image with a reference image of the same bunch
//! without lasing: per column, the difference of the two centroids (above a noise
//! threshold) is `ΔE(t)` and the lasing image's column sum is `I(t)`. A measured reference needs a shot with lasing suppressed,
//! which costs beam time and is never the same bunch; the simulator also returns, for every
//! shot, that same bunch without lasing and with its own noise ([`LASING_OFF`],
//! `lasing_off.npy`), a reference no experiment can take, to measure the method's own floor.
//!
//! # Detector
//!
//! [`ROWS`] energy rows of [`MEV_PER_ROW`] (row 0 is the highest energy) by [`COLUMNS`] time
//! columns of [`FS_PER_COLUMN`]; a column holds [`COUNTS_PER_KA`] counts per kA of current.
//! Each pixel counts Poisson-distributed photons from the screen plus Gaussian read noise of
//! [`READ_NOISE`] counts.
//!
//! Factors (columns of [`Simulation::factors`], [`FACTOR_NAMES`]): lasing (1 or 0), peak
//! energy loss (MeV), pulse energy (µJ), lasing centre and rms duration (fs), bunch centre
//! and rms length (fs), peak current (kA), chirp (MeV/fs) and energy offset (MeV). The
//! lasing centre and duration are drawn for every shot; a shot that does not lase has zero
//! energy loss and pulse energy.

use ndarray::{Array1, Array2, Array3, ArrayView2};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use super::{Simulation, Truth};

/// Energy rows of an image.
pub const ROWS: usize = 32;
/// Time columns of an image.
pub const COLUMNS: usize = 32;
/// Energy per row (MeV).
pub const MEV_PER_ROW: f32 = 0.75;
/// Time per column (fs).
pub const FS_PER_COLUMN: f32 = 5.0;
/// Counts a column holds per kA of slice current.
pub const COUNTS_PER_KA: f32 = 80.0;
/// Gaussian read noise per pixel (counts).
pub const READ_NOISE: f32 = 1.5;
/// Share of the shots that lase.
pub const LASING_FRACTION: f64 = 0.75;
/// Factors per shot (the columns of [`Simulation::factors`]).
pub const FACTORS: usize = 10;
/// The factors' names, with units.
pub const FACTOR_NAMES: [&str; FACTORS] = [
    "lasing",
    "energy_loss_mev",
    "pulse_energy_uj",
    "lasing_centre_fs",
    "lasing_duration_fs",
    "bunch_centre_fs",
    "bunch_length_fs",
    "peak_current_ka",
    "chirp_mev_per_fs",
    "energy_offset_mev",
];
/// Name of the ground-truth power profile, `[N, COLUMNS]` in GW.
pub const POWER: &str = "power";
/// Name of the same shots without lasing, `[N, ROWS, COLUMNS]` in counts.
pub const LASING_OFF: &str = "lasing_off";
/// Counts subtracted from every pixel, and below which a pixel is empty, when a slice's
/// centroid is measured: 3 σ of the read noise. Without it the noise of the empty rows
/// pulls every centroid towards the middle of the screen, and a lasing slice's (lower)
/// centroid more than its reference's: the pulse energy came out 14 % low with the true
/// reference, and is within 1 % with it.
pub const NOISE_THRESHOLD: f32 = 3.0 * READ_NOISE;
/// Columns whose current is below this share of the image's largest column current carry
/// no measured power: their centroids are mostly noise.
pub const CURRENT_CUT: f32 = 0.1;

/// One shot's bunch and lasing, in physical units.
#[derive(Debug, Clone, Copy)]
struct Shot {
    bunch_centre_fs: f32,
    head_length_fs: f32,
    tail_length_fs: f32,
    peak_current_ka: f32,
    energy_offset_mev: f32,
    chirp_mev_per_fs: f32,
    curvature_mev_per_fs2: f32,
    slice_spread_mev: f32,
    energy_loss_mev: f32,
    lasing_centre_fs: f32,
    lasing_duration_fs: f32,
}

impl Shot {
    fn draw(rng: &mut StdRng) -> Self {
        let head_length_fs = rng.random_range(12.0f32..22.0);
        let tail_length_fs = rng.random_range(12.0f32..22.0);
        let bunch_centre_fs = rng.random_range(65.0f32..95.0);
        let lasing = rng.random_bool(LASING_FRACTION);
        let rms = 0.5 * (head_length_fs + tail_length_fs);
        Self {
            bunch_centre_fs,
            head_length_fs,
            tail_length_fs,
            peak_current_ka: rng.random_range(1.0f32..3.0),
            energy_offset_mev: rng.random_range(-2.5f32..2.5),
            chirp_mev_per_fs: rng.random_range(-0.05f32..0.05),
            curvature_mev_per_fs2: rng.random_range(-0.0012f32..0.0012),
            slice_spread_mev: rng.random_range(0.5f32..0.9),
            energy_loss_mev: if lasing {
                rng.random_range(1.0f32..4.0)
            } else {
                0.0
            },
            lasing_centre_fs: bunch_centre_fs + rms * rng.random_range(-0.6f32..0.6),
            lasing_duration_fs: rng.random_range(4.0f32..12.0),
        }
    }

    /// Slice current (kA) at time `t` (fs).
    fn current(&self, t: f32) -> f32 {
        let d = t - self.bunch_centre_fs;
        let sigma = if d < 0.0 {
            self.head_length_fs
        } else {
            self.tail_length_fs
        };
        self.peak_current_ka * (-0.5 * (d / sigma).powi(2)).exp()
    }

    /// Mean slice energy (MeV from nominal) at time `t` without lasing.
    fn energy(&self, t: f32) -> f32 {
        let d = t - self.bunch_centre_fs;
        self.energy_offset_mev + self.chirp_mev_per_fs * d + self.curvature_mev_per_fs2 * d * d
    }

    /// Smooth lasing energy loss (MeV) at time `t`, before the SASE modulation.
    fn smooth_loss(&self, t: f32) -> f32 {
        let d = (t - self.lasing_centre_fs) / self.lasing_duration_fs;
        self.energy_loss_mev * (-0.5 * d * d).exp()
    }

    fn factors(&self, pulse_energy_uj: f32) -> [f32; FACTORS] {
        [
            f32::from(u8::from(self.energy_loss_mev > 0.0)),
            self.energy_loss_mev,
            pulse_energy_uj,
            self.lasing_centre_fs,
            self.lasing_duration_fs,
            self.bunch_centre_fs,
            0.5 * (self.head_length_fs + self.tail_length_fs),
            self.peak_current_ka,
            self.chirp_mev_per_fs,
            self.energy_offset_mev,
        ]
    }
}

/// Time (fs) at the centre of column `c`.
fn column_time(c: usize) -> f32 {
    (c as f32 + 0.5) * FS_PER_COLUMN
}

/// Energy (MeV from nominal) at the centre of row `r`; row 0 is the highest.
fn row_energy(r: usize) -> f32 {
    (ROWS as f32 / 2.0 - r as f32 - 0.5) * MEV_PER_ROW
}

/// Sub-samples per row when a slice's energy distribution is integrated over a row (a slice
/// spread is about one row, too narrow to sample at the row centre only).
const SUBSAMPLES: usize = 8;

/// Share of a slice of mean `mean` and spread `spread` (MeV) that lands in each row.
fn slice_density(mean: f32, spread: f32, density: &mut [f32; ROWS]) {
    let step = MEV_PER_ROW / SUBSAMPLES as f32;
    let norm = step / (spread * (2.0 * std::f32::consts::PI).sqrt());
    for (r, value) in density.iter_mut().enumerate() {
        *value = (0..SUBSAMPLES)
            .map(|s| {
                let e = row_energy(r) + MEV_PER_ROW / 2.0 - (s as f32 + 0.5) * step;
                norm * (-0.5 * ((e - mean) / spread).powi(2)).exp()
            })
            .sum();
    }
}

/// Draws the noisy screen image of `shot` with energy loss `loss[c]` per column.
fn image(shot: &Shot, loss: &[f32; COLUMNS], rng: &mut StdRng, out: &mut Array2<f32>) {
    let read_noise =
        Normal::new(0.0f32, READ_NOISE).unwrap_or_else(|_| unreachable!("valid sigma"));
    let mut density = [0f32; ROWS];
    for c in 0..COLUMNS {
        let t = column_time(c);
        // Lasing slices lose energy and gain spread (the FEL's energy-spread growth is of
        // the order of the energy loss itself).
        let spread = shot.slice_spread_mev.hypot(0.5 * loss[c]);
        slice_density(shot.energy(t) - loss[c], spread, &mut density);
        let counts = shot.current(t) * COUNTS_PER_KA;
        for (r, share) in density.iter().enumerate() {
            let mean = f64::from(counts * share);
            let photons = super::poisson_count(mean, rng);
            out[[r, c]] = photons as f32 + read_noise.sample(rng);
        }
    }
}

/// Simulates `count` shots: the lasing images as events, the power profiles and the
/// lasing-off images of the same bunches as [`Truth`]s.
pub fn simulate(count: usize, seed: u64) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut images = Array3::<f32>::zeros((count, ROWS, COLUMNS));
    let mut references = Array3::<f32>::zeros((count, ROWS, COLUMNS));
    let mut power = Array2::<f32>::zeros((count, COLUMNS));
    let mut factors = Array2::<f32>::zeros((count, FACTORS));
    let modulation = Normal::new(0.0f32, 1.0).unwrap_or_else(|_| unreachable!("valid sigma"));
    let mut frame = Array2::<f32>::zeros((ROWS, COLUMNS));
    for n in 0..count {
        let shot = Shot::draw(&mut rng);
        // SASE spikes: white noise smoothed over about one column, 30 % deep.
        let white: Vec<f32> = (0..COLUMNS + 2)
            .map(|_| modulation.sample(&mut rng))
            .collect();
        let mut loss = [0f32; COLUMNS];
        for (c, value) in loss.iter_mut().enumerate() {
            let spike = (white[c] + 2.0 * white[c + 1] + white[c + 2]) / 6f32.sqrt();
            *value = shot.smooth_loss(column_time(c)) * (1.0 + 0.3 * spike).max(0.0);
        }
        let mut pulse_energy = 0.0;
        for (c, &l) in loss.iter().enumerate() {
            let p = l * shot.current(column_time(c));
            power[[n, c]] = p;
            pulse_energy += p * FS_PER_COLUMN;
        }
        for (k, value) in shot.factors(pulse_energy).into_iter().enumerate() {
            factors[[n, k]] = value;
        }
        image(&shot, &loss, &mut rng, &mut frame);
        images.slice_mut(ndarray::s![n, .., ..]).assign(&frame);
        image(&shot, &[0.0; COLUMNS], &mut rng, &mut frame);
        references.slice_mut(ndarray::s![n, .., ..]).assign(&frame);
    }
    Simulation {
        events: images.into_dyn(),
        factors,
        factor_names: FACTOR_NAMES.to_vec(),
        truths: vec![
            Truth {
                name: POWER,
                values: power.into_dyn(),
            },
            Truth {
                name: LASING_OFF,
                values: references.into_dyn(),
            },
        ],
    }
}

/// Slice current (kA) of each column of an image (counts, `[ROWS, COLUMNS]`).
pub fn current_profile(image: ArrayView2<'_, f32>) -> Array1<f32> {
    image.sum_axis(ndarray::Axis(0)) / COUNTS_PER_KA
}

/// Mean energy (MeV) of each column, weighting rows by their counts above
/// [`NOISE_THRESHOLD`]; 0 for a column with nothing above it.
fn centroids(image: ArrayView2<'_, f32>) -> Array1<f32> {
    Array1::from_iter(image.columns().into_iter().map(|column| {
        let (mut weight, mut moment) = (0.0, 0.0);
        for (r, &v) in column.iter().enumerate() {
            let v = (v - NOISE_THRESHOLD).max(0.0);
            weight += v;
            moment += v * row_energy(r);
        }
        if weight > 0.0 { moment / weight } else { 0.0 }
    }))
}

/// The X-ray power profile (GW per column) by the energy-loss method: the energy the slices
/// of `lasing` lost against `reference` (the same bunch without lasing) times their
/// current. Columns below [`CURRENT_CUT`] of the peak current give 0. Both images in
/// counts, `[ROWS, COLUMNS]`.
pub fn power_profile(lasing: ArrayView2<'_, f32>, reference: ArrayView2<'_, f32>) -> Array1<f32> {
    let current = current_profile(lasing);
    let peak = current.iter().copied().fold(0.0f32, f32::max);
    let loss = centroids(reference) - centroids(lasing);
    Array1::from_iter(current.iter().zip(&loss).map(|(&i, &l)| {
        if i >= CURRENT_CUT * peak && peak > 0.0 {
            l * i
        } else {
            0.0
        }
    }))
}

/// Pulse energy (µJ) of a power profile (GW per column).
pub fn pulse_energy(power: &Array1<f32>) -> f32 {
    power.sum() * FS_PER_COLUMN
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn reproducible_with_a_truth_per_shot() {
        let a = simulate(40, 3);
        assert_eq!(a.events, simulate(40, 3).events);
        assert_eq!(a.events.shape(), &[40, ROWS, COLUMNS]);
        assert_eq!(a.factor_names.len(), a.factors.ncols());
        assert_eq!(a.truths[0].values.shape(), &[40, COLUMNS]);
        assert_eq!(a.truths[1].values.shape(), &[40, ROWS, COLUMNS]);
        let lasing = a.factors.column(0).sum();
        assert!((20.0..40.0).contains(&lasing), "{lasing} of 40 shots lase");
        for n in 0..40 {
            let power = a.truths[0].values.slice(s![n, ..]);
            let energy = power.sum() * FS_PER_COLUMN;
            assert!((energy - a.factors[[n, 2]]).abs() < 1e-2 * energy.max(1.0));
            assert_eq!(energy > 0.0, a.factors[[n, 0]] == 1.0, "shot {n}");
        }
    }

    /// The columns sum to the current: summed over time they give the bunch charge
    /// (peak × √(2π) × rms length for this current profile), with lasing or without.
    #[test]
    fn column_sums_measure_the_charge() {
        let sim = simulate(60, 8);
        for n in 0..60 {
            let (peak, length) = (sim.factors[[n, 7]], sim.factors[[n, 6]]);
            let charge = peak * (2.0 * std::f32::consts::PI).sqrt() * length;
            for images in [&sim.events, &sim.truths[1].values] {
                let image = images.slice(s![n, .., ..]);
                let current = current_profile(image.into_dimensionality().unwrap());
                let measured = current.sum() * FS_PER_COLUMN;
                // Shot and read noise: about 5 % of the charge.
                assert!(
                    (measured - charge).abs() < 0.2 * charge,
                    "shot {n}: {measured} pC vs {charge} pC"
                );
            }
        }
    }

    /// With the true lasing-off image as reference, the energy-loss method gives back the
    /// pulse energy (to the noise of the centroids) and nothing for a shot that does not lase.
    #[test]
    fn the_energy_loss_method_recovers_the_power_from_the_true_reference() {
        let sim = simulate(200, 11);
        let view = |images: &ndarray::ArrayD<f32>, n: usize| {
            images
                .slice(s![n, .., ..])
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap()
                .to_owned()
        };
        let (mut relative, mut lasing) = (0.0, 0);
        for n in 0..200 {
            let estimate = power_profile(
                view(&sim.events, n).view(),
                view(&sim.truths[1].values, n).view(),
            );
            let truth = sim.factors[[n, 2]];
            if truth > 0.0 {
                relative += ((pulse_energy(&estimate) - truth) / truth).abs();
                lasing += 1;
            } else {
                assert!(pulse_energy(&estimate).abs() < 40.0, "shot {n}: {estimate}");
            }
        }
        let mean = relative / lasing.max(1) as f32;
        assert!(mean < 0.15, "mean pulse energy error {mean}");
    }
}
