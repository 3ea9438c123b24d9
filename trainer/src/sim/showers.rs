//! Calorimeter showers as point clouds: each event is the set of energy deposits ("hits") a
//! particle leaves in a homogeneous calorimeter, `[N, HITS, 4]` with features `x`, `y`, `z`
//! (cm) and `E` (GeV) per hit. The order of the hits carries no information.
//!
//! # Physics
//!
//! The calorimeter is a block of lead tungstate (PbWO₄: radiation length X₀ = 0.89 cm,
//! Molière radius R_M = 2.2 cm, critical energy E_c = 9.3 MeV), [`DEPTH_X0`] radiation
//! lengths deep, its front face the plane `z = 0`. A particle of energy `E` (log-uniform in
//! 2–100 GeV) enters at `(x₀, y₀)` with angles `(θx, θy)`; the shower axis is the straight
//! line `x = x₀ + z·tan θx`, `y = y₀ + z·tan θy`.
//!
//! - **Electromagnetic showers** (photons): the mean longitudinal profile is the Longo–Sestili
//!   gamma distribution `dE/dt ∝ (bt)^(a−1) e^(−bt)` in depth `t` (X₀), `b = 0.5`, with its
//!   maximum at `t_max = (a − 1)/b = ln(E/E_c) + 0.5` (PDG, "Passage of particles through
//!   matter", §34.5). Transversely, about 90 % of the energy lies within one R_M: a core of
//!   exponential radius 0.25 R_M and a halo of 1.2 R_M, both widening with depth.
//! - **Hadronic showers** (charged pions): the first interaction happens at an exponential
//!   depth with mean one interaction length (λ_I = 20.3 cm ≈ 23 X₀, so part of the energy
//!   leaks out the back, as in a real EM calorimeter); the profile behind it is a wider gamma
//!   (`a = 2.5`, `b = 0.12` per X₀) and transversely twice as broad. Only a fraction of the
//!   energy is visible (non-compensation, e/h > 1: 55–85 %, event by event). Up to its
//!   first interaction the pion ionises along a thin track (10.2 MeV/cm, a minimum-ionising
//!   particle); about a third of pions (e^(−25/22.8)) cross the whole depth that way.
//!
//! Each event has [`HITS`] hits drawn from its shower's profile (shared between a pion's
//! track and its shower by their energies): every hit is a deposit at one point, and the
//! visible energy is shared among them with gamma-distributed weights (sampling fluctuations). The calorimeter spans ±[`HALF_WIDTH_CM`] transversely;
//! deposits outside it (behind it or beside it) are not recorded: their energy is lost, and
//! their place is taken by another draw.
//!
//! Factors (columns of [`Simulation::factors`]): energy (GeV), entry x and y (cm), angles θx
//! and θy (rad), particle (0 photon, 1 pion).

use ndarray::{Array2, Array3};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Exp, Gamma};

use super::Simulation;

/// Hits per event.
pub const HITS: usize = 32;

/// Features per hit: x, y, z (cm) and energy (GeV).
pub const HIT_FEATURES: usize = 4;

/// Factors per event (the columns of [`Simulation::factors`]).
pub const FACTORS: usize = 6;

/// Depth of the calorimeter in radiation lengths.
pub const DEPTH_X0: f32 = 25.0;

/// Half the transverse size of the calorimeter (cm): it spans ±30 cm in x and y.
pub const HALF_WIDTH_CM: f32 = 30.0;

/// Radiation length of PbWO₄ (cm).
const X0_CM: f32 = 0.89;
/// Molière radius of PbWO₄ (cm).
const MOLIERE_CM: f32 = 2.2;
/// Critical energy of PbWO₄ (GeV).
const CRITICAL_GEV: f32 = 0.0093;
/// Nuclear interaction length of PbWO₄ in radiation lengths (20.3 cm / 0.89 cm).
const LAMBDA_X0: f32 = 22.8;
/// Energy a minimum-ionising particle loses in PbWO₄ (GeV/cm).
const MIP_GEV_PER_CM: f32 = 0.0102;
/// Radius of a minimum-ionising track's deposits (cm).
const TRACK_RADIUS_CM: f32 = 0.1;

/// One shower's generating parameters.
struct Shower {
    energy: f32,
    entry: (f32, f32),
    slope: (f32, f32),
    hadronic: bool,
}

impl Shower {
    fn draw(rng: &mut StdRng) -> Self {
        let (low, high) = (2f32.ln(), 100f32.ln());
        Self {
            energy: rng.random_range(low..high).exp(),
            entry: (rng.random_range(-5.0..5.0), rng.random_range(-5.0..5.0)),
            slope: (
                rng.random_range(-0.2f32..0.2).tan(),
                rng.random_range(-0.2f32..0.2).tan(),
            ),
            hadronic: rng.random_bool(0.5),
        }
    }

    /// Longitudinal profile as (start depth, gamma shape a, rate b), in X₀.
    fn profile(&self, rng: &mut StdRng) -> (f32, f32, f32) {
        if self.hadronic {
            let start = Exp::new(1.0 / LAMBDA_X0).map_or(0.0, |d| d.sample(rng));
            (start, 2.5, 0.12)
        } else {
            let b = 0.5;
            let t_max = (self.energy / CRITICAL_GEV).ln() + 0.5;
            (0.0, t_max * b + 1.0, b)
        }
    }

    /// A point at depth `t` (X₀), at an exponentially distributed distance of mean `radius`
    /// (cm) from the shower axis, as `[x, y, z]` (cm).
    fn around_axis(&self, t: f32, radius: f32, rng: &mut StdRng) -> [f32; 3] {
        let z = t * X0_CM;
        let r = Exp::new(1.0 / radius).map_or(0.0, |d| d.sample(rng));
        let phi = rng.random_range(0.0..std::f32::consts::TAU);
        [
            self.entry.0 + z * self.slope.0 + r * phi.cos(),
            self.entry.1 + z * self.slope.1 + r * phi.sin(),
            z,
        ]
    }

    /// Up to [`HITS`] deposits of a shower starting at depth `start` (X₀) with the gamma
    /// profile `depth` behind it, and the fraction of draws that stayed inside the
    /// calorimeter (its containment: a draw outside it is energy that leaked out).
    fn deposits(
        &self,
        start: f32,
        depth: Option<Gamma<f32>>,
        rng: &mut StdRng,
    ) -> (Vec<[f32; 3]>, f32) {
        let (core, halo) = if self.hadronic {
            (0.5 * MOLIERE_CM, 2.4 * MOLIERE_CM)
        } else {
            (0.25 * MOLIERE_CM, 1.2 * MOLIERE_CM)
        };
        let (mut drawn, mut deposits) = (0usize, Vec::with_capacity(HITS));
        while deposits.len() < HITS && drawn < 64 * HITS {
            drawn += 1;
            let t = start + depth.as_ref().map_or(1.0, |d| d.sample(rng));
            // Deeper parts of the shower spread further from the axis.
            let widening = 1.0 + t / DEPTH_X0;
            let radius = if rng.random_bool(0.8) { core } else { halo } * widening;
            let [x, y, z] = self.around_axis(t, radius, rng);
            if t < DEPTH_X0 && x.abs() < HALF_WIDTH_CM && y.abs() < HALF_WIDTH_CM {
                deposits.push([x, y, z]);
            }
        }
        let containment = deposits.len() as f32 / drawn.max(1) as f32;
        (deposits, containment)
    }
}

/// Simulates `count` showers.
pub fn simulate(count: usize, seed: u64) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hits = Array3::<f32>::zeros((count, HITS, HIT_FEATURES));
    let mut factors = Array2::<f32>::zeros((count, FACTORS));
    for n in 0..count {
        let shower = Shower::draw(&mut rng);
        for (k, value) in [
            shower.energy,
            shower.entry.0,
            shower.entry.1,
            shower.slope.0.atan(),
            shower.slope.1.atan(),
            f32::from(u8::from(shower.hadronic)),
        ]
        .into_iter()
        .enumerate()
        {
            factors[[n, k]] = value;
        }
        let (start, a, b) = shower.profile(&mut rng);
        let visible = if shower.hadronic {
            rng.random_range(0.55..0.85)
        } else {
            1.0
        };
        let (deposits, containment) = if start < DEPTH_X0 {
            shower.deposits(start, Gamma::new(a, 1.0 / b).ok(), &mut rng)
        } else {
            (Vec::new(), 0.0)
        };
        let shower_energy = shower.energy * visible * containment;
        // A pion ionises along its track up to its first interaction.
        let track_depth = if shower.hadronic {
            start.min(DEPTH_X0)
        } else {
            0.0
        };
        let obliquity = (1.0 + shower.slope.0.powi(2) + shower.slope.1.powi(2)).sqrt();
        let track_energy = MIP_GEV_PER_CM * track_depth * X0_CM * obliquity;
        // The hits are shared between track and shower by their energies.
        let track_hits = if deposits.is_empty() {
            HITS
        } else {
            let fraction = track_energy / (track_energy + shower_energy);
            ((HITS as f32 * fraction).round() as usize).min(HITS)
        };
        // Sampling fluctuations: each hit's share of its part's energy.
        let shares: Vec<f32> = Gamma::new(2.0f32, 1.0).map_or_else(
            |_| vec![1.0; HITS],
            |d| (0..HITS).map(|_| d.sample(&mut rng)).collect(),
        );
        let (track_shares, shower_shares) = shares.split_at(track_hits);
        let (track_total, shower_total): (f32, f32) =
            (track_shares.iter().sum(), shower_shares.iter().sum());
        for (h, &share) in shares.iter().enumerate() {
            let ([x, y, z], e) = if h < track_hits {
                let t = rng.random::<f32>() * track_depth;
                let point = shower.around_axis(t, TRACK_RADIUS_CM, &mut rng);
                (point, track_energy * share / track_total)
            } else {
                let point = deposits[(h - track_hits) % deposits.len()];
                (point, shower_energy * share / shower_total)
            };
            for (f, value) in [x, y, z, e].into_iter().enumerate() {
                hits[[n, h, f]] = value;
            }
        }
    }
    Simulation {
        events: hits.into_dyn(),
        factors,
        factor_names: vec![
            "energy_gev",
            "x_cm",
            "y_cm",
            "theta_x_rad",
            "theta_y_rad",
            "particle",
        ],
        truths: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn reproducible_with_hits_inside_the_calorimeter() {
        let a = simulate(100, 1);
        assert_eq!(a.events, simulate(100, 1).events);
        assert_eq!(a.events.shape(), &[100, HITS, HIT_FEATURES]);
        for hit in a
            .events
            .to_shape((100 * HITS, HIT_FEATURES))
            .unwrap()
            .rows()
        {
            assert!(
                (0.0..DEPTH_X0 * X0_CM).contains(&hit[2]),
                "depth {}",
                hit[2]
            );
            assert!(hit[3] > 0.0, "energy {}", hit[3]);
            assert!(hit[0].abs() < HALF_WIDTH_CM && hit[1].abs() < HALF_WIDTH_CM);
        }
    }

    #[test]
    fn showers_follow_their_axis_and_pions_show_less_energy() {
        let sim = simulate(2000, 3);
        let (mut photon_ratio, mut pion_ratio, mut photons, mut pions) = (0.0, 0.0, 0.0, 0.0);
        let mut off_axis = 0.0;
        for n in 0..2000 {
            let event = sim.events.slice(s![n, .., ..]);
            let energy: f32 = event.column(3).sum();
            let centroid_x = event.column(0).dot(&event.column(3)) / energy;
            let centroid_z = event.column(2).dot(&event.column(3)) / energy;
            let f = sim.factors.row(n);
            let axis_x = f[1] + centroid_z * f[3].tan();
            off_axis += (centroid_x - axis_x).abs() / 2000.0;
            if f[5] == 0.0 {
                photon_ratio += energy / f[0];
                photons += 1.0;
            } else {
                pion_ratio += energy / f[0];
                pions += 1.0;
            }
        }
        let (photon_ratio, pion_ratio) = (photon_ratio / photons, pion_ratio / pions);
        assert!(
            off_axis < 1.0,
            "centroids {off_axis} cm from the axis on average"
        );
        assert!(
            photon_ratio > 0.95,
            "photons keep {photon_ratio} of their energy"
        );
        assert!(
            (0.1..0.6).contains(&pion_ratio),
            "pions show {pion_ratio} of theirs"
        );
    }

    #[test]
    fn the_shower_maximum_moves_deeper_with_energy() {
        let sim = simulate(3000, 4);
        let mean_depth = |low: f32, high: f32| {
            let (mut sum, mut count) = (0.0, 0.0);
            for n in 0..3000 {
                let f = sim.factors.row(n);
                if f[5] == 0.0 && (low..high).contains(&f[0]) {
                    let event = sim.events.slice(s![n, .., ..]);
                    sum += event.column(2).dot(&event.column(3)) / event.column(3).sum();
                    count += 1.0;
                }
            }
            sum / count
        };
        // t_max grows by ln(80/3) ≈ 3.3 X₀ ≈ 2.9 cm between the two energy ranges.
        let (low, high) = (mean_depth(2.0, 4.0), mean_depth(60.0, 100.0));
        assert!(
            high - low > 2.0,
            "depth {low} cm at 3 GeV, {high} cm at 80 GeV"
        );
    }
}
