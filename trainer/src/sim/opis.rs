//! OPIS-like photoelectron time-of-flight spectra.
//!
//! A photon of energy `E_ph` ionises the target gas; an electron from a shell of binding
//! energy `E_b` leaves with kinetic energy `E_kin = E_ph − E_b` and reaches the detector of a
//! field-free drift tube at `t = t0 + L·sqrt(m / 2E_kin)`, so a peak of energy width `ΔE` has
//! time width `Δt = (dt/dE)·ΔE ∝ E_kin^{-3/2}`: fast electrons bunch at early times, slow ones
//! spread out. Four spectrometers sit around the beam at 0°, 90°, 180° and 270°; beam pointing
//! shifts intensity between them. Each bin counts Poisson-distributed electrons (shot noise),
//! plus a baseline offset and an alternating-sample offset from interleaved ADCs.
//!
//! Factors (columns of [`Simulation::factors`]): photon energy (eV), pulse intensity (mean
//! electrons per spectrometer), baseline offset (counts), interleave offset (counts), beam
//! pointing x and y (−1..1).

use ndarray::{Array2, Array3};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use super::Simulation;

/// One photoemission line of the target gas.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// Binding energy (eV).
    pub binding_ev: f32,
    /// Relative cross-section.
    pub strength: f32,
}

/// Parameters of the simulated instrument.
#[derive(Debug, Clone)]
pub struct OpisConfig {
    /// Spectrometers around the beam.
    pub spectrometers: usize,
    /// Time bins per spectrometer.
    pub bins: usize,
    /// Photon energy range (eV).
    pub photon_ev: (f32, f32),
    /// Lines of the target gas (neon-like by default: 2p, 2p satellite, 2s).
    pub lines: Vec<Line>,
    /// Energy resolution (eV, Gaussian sigma) of a line.
    pub resolution_ev: f32,
    /// Kinetic energy (eV) of an electron arriving at the last bin; lower energies arrive
    /// later and fall off the end of the window.
    pub min_kinetic_ev: f32,
    /// Kinetic energy (eV) of an electron arriving at the first bin.
    pub max_kinetic_ev: f32,
    /// Pulse intensity range (mean detected electrons per spectrometer).
    pub intensity: (f32, f32),
}

impl Default for OpisConfig {
    fn default() -> Self {
        Self {
            spectrometers: 4,
            bins: 256,
            photon_ev: (60.0, 120.0),
            lines: vec![
                Line {
                    binding_ev: 21.6,
                    strength: 1.0,
                },
                Line {
                    binding_ev: 34.0,
                    strength: 0.12,
                },
                Line {
                    binding_ev: 48.5,
                    strength: 0.35,
                },
            ],
            resolution_ev: 0.6,
            min_kinetic_ev: 8.0,
            max_kinetic_ev: 110.0,
            intensity: (150.0, 600.0),
        }
    }
}

impl OpisConfig {
    /// Fractional bin position of an electron of kinetic energy `e` (eV): time ∝ 1/sqrt(E),
    /// scaled so that `max_kinetic_ev` lands on bin 0 and `min_kinetic_ev` on the last bin.
    fn bin_of(&self, e: f32) -> f32 {
        let t = |e: f32| 1.0 / e.sqrt();
        let (t0, t1) = (t(self.max_kinetic_ev), t(self.min_kinetic_ev));
        (t(e) - t0) / (t1 - t0) * (self.bins - 1) as f32
    }
}

/// Factors per event (the columns of [`Simulation::factors`]).
pub const FACTORS: usize = 6;

/// Simulates `count` events.
pub fn simulate(config: &OpisConfig, count: usize, seed: u64) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let (channels, bins) = (config.spectrometers, config.bins);
    let mut events = Array3::<f32>::zeros((count, channels, bins));
    let mut factors = Array2::<f32>::zeros((count, FACTORS));
    let read_noise = Normal::new(0.0f32, 0.3).unwrap_or_else(|_| unreachable!("valid sigma"));
    let mut expected = vec![0f32; bins];
    for n in 0..count {
        let photon = rng.random_range(config.photon_ev.0..config.photon_ev.1);
        let intensity = rng.random_range(config.intensity.0..config.intensity.1);
        let baseline = rng.random_range(0.0f32..2.0);
        let interleave = rng.random_range(-1.0f32..1.0);
        let (px, py) = (
            rng.random_range(-1.0f32..1.0),
            rng.random_range(-1.0f32..1.0),
        );
        for (k, value) in [photon, intensity, baseline, interleave, px, py]
            .into_iter()
            .enumerate()
        {
            factors[[n, k]] = value;
        }
        // The spectral shape (electrons per bin per unit intensity) is shared by all
        // spectrometers; only its amplitude depends on pointing.
        expected.fill(0.0);
        let total_strength: f32 = config.lines.iter().map(|l| l.strength).sum();
        for line in &config.lines {
            let kinetic = photon - line.binding_ev;
            if kinetic <= config.min_kinetic_ev * 0.8 {
                continue;
            }
            // Gaussian in energy mapped to time through the Jacobian of bin_of.
            let centre = config.bin_of(kinetic);
            let width = (config.bin_of(kinetic - config.resolution_ev)
                - config.bin_of(kinetic + config.resolution_ev))
            .abs()
            .max(0.6)
                / 2.0;
            let norm =
                line.strength / total_strength / (width * (2.0 * std::f32::consts::PI).sqrt());
            for (b, e) in expected.iter_mut().enumerate() {
                let d = (b as f32 - centre) / width;
                if d.abs() < 6.0 {
                    *e += norm * (-0.5 * d * d).exp();
                }
            }
        }
        for c in 0..channels {
            let angle = c as f32 * std::f32::consts::TAU / channels as f32;
            let amplitude = intensity * (1.0 + 0.35 * (px * angle.cos() + py * angle.sin()));
            for (b, &shape) in expected.iter().enumerate() {
                let mean = f64::from((amplitude * shape).max(0.0));
                let electrons = super::poisson_count(mean, &mut rng);
                let sign = if b % 2 == 0 { 1.0 } else { -1.0 };
                events[[n, c, b]] =
                    electrons as f32 + baseline + sign * interleave + read_noise.sample(&mut rng);
            }
        }
    }
    Simulation {
        events: events.into_dyn(),
        factors,
        factor_names: vec![
            "photon_energy_ev",
            "intensity_electrons",
            "baseline_counts",
            "interleave_counts",
            "pointing_x",
            "pointing_y",
        ],
        truths: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_factors_in_range() {
        let config = OpisConfig::default();
        let a = simulate(&config, 20, 7);
        let b = simulate(&config, 20, 7);
        let c = simulate(&config, 20, 8);
        assert_eq!(a.events, b.events);
        assert_ne!(a.events, c.events);
        assert_eq!(a.events.shape(), &[20, 4, 256]);
        for row in a.factors.rows() {
            assert!((60.0..120.0).contains(&row[0]));
            assert!((150.0..600.0).contains(&row[1]));
            assert!((-1.0..1.0).contains(&row[4]) && (-1.0..1.0).contains(&row[5]));
        }
        assert!(a.events.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn main_peak_moves_to_earlier_bins_with_photon_energy() {
        // Higher photon energy → faster electrons → earlier arrival (lower bin).
        let config = OpisConfig::default();
        let peak_of = |photon: f32| config.bin_of(photon - 21.6);
        assert!(peak_of(110.0) < peak_of(70.0));
        let sim = simulate(&config, 200, 3);
        let argmax = |n: usize| {
            let spectrum = sim
                .events
                .slice(ndarray::s![n, .., ..])
                .sum_axis(ndarray::Axis(0));
            spectrum
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m })
                .0
        };
        let (mut low, mut high) = (Vec::new(), Vec::new());
        for n in 0..200 {
            let photon = sim.factors[[n, 0]];
            if photon < 70.0 {
                low.push(argmax(n))
            } else if photon > 110.0 {
                high.push(argmax(n))
            }
        }
        let mean = |v: &[usize]| v.iter().sum::<usize>() as f32 / v.len().max(1) as f32;
        assert!(mean(&high) < mean(&low), "high {high:?} low {low:?}");
    }

    #[test]
    fn counts_scale_with_intensity() {
        let sim = simulate(&OpisConfig::default(), 300, 11);
        // Electrons above the (known) baseline offset of each event.
        let totals: Vec<(f32, f32)> = (0..300)
            .map(|n| {
                let total = sim.events.slice(ndarray::s![n, .., ..]).sum();
                (
                    sim.factors[[n, 1]],
                    total - sim.factors[[n, 2]] * 4.0 * 256.0,
                )
            })
            .collect();
        let correlation = {
            let (mx, my) = totals
                .iter()
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
            let (mx, my) = (mx / 300.0, my / 300.0);
            let cov: f32 = totals.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
            let vx: f32 = totals.iter().map(|(x, _)| (x - mx).powi(2)).sum();
            let vy: f32 = totals.iter().map(|(_, y)| (y - my).powi(2)).sum();
            cov / (vx * vy).sqrt()
        };
        assert!(correlation > 0.9, "correlation {correlation}");
    }
}
