//! Built-in detector simulators. Each one is reproducible from a seed and returns, with the
//! events, the ground-truth factors that generated them, so that disentanglement (does latent
//! `k` follow photon energy?) can be measured and not only reconstruction.
//!
//! | simulator | events | factors |
//! |---|---|---|
//! | [`opis`] | `[N, 4, 256]` photoelectron time-of-flight spectra from 4 spectrometers | photon energy, intensity, baseline, interleave, pointing x, pointing y |
//! | [`sprites`] | `[N, 32, 32]` images of a shape | shape, scale, rotation, x, y |
//! | [`showers`] | `[N, 32, 4]` point clouds: calorimeter hits `(x, y, z, E)` | energy, entry x, entry y, θx, θy, particle |
//! | [`polarix`] | `[N, 32, 32]` longitudinal phase-space images (energy × time) of a lasing or non-lasing electron bunch | lasing, energy loss, pulse energy, lasing centre and duration, bunch centre and length, peak current, chirp, energy offset |
//!
//! A simulator may return more truth than a factor per event can hold ([`Truth`]): Polarix
//! gives each shot's X-ray power profile and the same bunch imaged without lasing.

pub mod opis;
pub mod polarix;
pub mod showers;
pub mod sprites;

use ndarray::{Array2, ArrayD};

/// Simulated events and the factors behind them.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Events, `[N, ...]`.
    pub events: ArrayD<f32>,
    /// Factors, `[N, F]`, in physical units.
    pub factors: Array2<f32>,
    /// Name and unit of each factor column.
    pub factor_names: Vec<&'static str>,
    /// Further per-event ground truth, written beside the events as `<name>.npy`.
    pub truths: Vec<Truth>,
}

/// Per-event ground truth that is not one number per event.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Its name (a file stem: `<name>.npy`, or the HDF5 dataset `/<name>`).
    pub name: &'static str,
    /// `[N, ...]`, one entry per event.
    pub values: ArrayD<f32>,
}

/// A Poisson-distributed count of mean `mean` (shot noise); 0 where the mean is not
/// positive, as an empty bin or pixel counts nothing.
fn poisson_count(mean: f64, rng: &mut impl rand::Rng) -> f64 {
    if mean > 0.0 {
        rand_distr::Poisson::new(mean).map_or(0.0, |p| rand_distr::Distribution::sample(&p, rng))
    } else {
        0.0
    }
}

/// The simulators by name, for the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Simulator {
    /// OPIS photoelectron spectrometer: 4 × 256 time-of-flight bins.
    Opis,
    /// 32 × 32 sprites (the classic beta-VAE test case).
    Sprites,
    /// Calorimeter showers as point clouds of 32 hits `(x, y, z, E)`.
    Showers,
    /// Longitudinal phase-space images (32 energy rows × 32 time columns) of a bunch that
    /// lases or not, as a PolariX deflecting cavity takes them at an X-ray FEL.
    Polarix,
}

impl std::str::FromStr for Simulator {
    type Err = latentlink_model::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [
            ("opis", Self::Opis),
            ("sprites", Self::Sprites),
            ("showers", Self::Showers),
            ("polarix", Self::Polarix),
        ];
        latentlink_model::vae::UnknownName::pick("simulator", name, &choices)
    }
}

/// A simulation that could not be held in memory.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} {simulator:?} events need {bytes} bytes, more than this machine can allocate; \
     simulate fewer (in parts, with different seeds)"
)]
pub struct SimulationTooLarge {
    /// The simulator.
    pub simulator: Simulator,
    /// Events asked for.
    pub count: usize,
    /// Bytes of events and factors they need (saturated at `usize::MAX`).
    pub bytes: usize,
}

impl Simulator {
    /// `f32` values each event takes: its features and its factors.
    fn floats_per_event(self) -> usize {
        match self {
            Self::Opis => {
                let config = opis::OpisConfig::default();
                config.spectrometers * config.bins + opis::FACTORS
            }
            Self::Sprites => sprites::SIDE * sprites::SIDE + sprites::FACTORS,
            Self::Showers => showers::HITS * showers::HIT_FEATURES + showers::FACTORS,
            // The image, its lasing-off twin and the power profile.
            Self::Polarix => {
                2 * polarix::ROWS * polarix::COLUMNS + polarix::COLUMNS + polarix::FACTORS
            }
        }
    }

    /// Names of the [`Truth`]s a simulation returns beside its factors.
    pub fn truth_names(self) -> &'static [&'static str] {
        match self {
            Self::Polarix => &[polarix::POWER, polarix::LASING_OFF],
            Self::Opis | Self::Sprites | Self::Showers => &[],
        }
    }

    /// [`Self::simulate`], refusing a count whose arrays cannot be allocated (which would
    /// otherwise abort the process, e.g. `simulate --events 1e14`).
    ///
    /// # Errors
    /// [`SimulationTooLarge`] when the allocator refuses the events' memory.
    pub fn try_simulate(self, count: usize, seed: u64) -> Result<Simulation, SimulationTooLarge> {
        let too_large = |bytes| SimulationTooLarge {
            simulator: self,
            count,
            bytes,
        };
        let floats = count.saturating_mul(self.floats_per_event());
        let bytes = floats.saturating_mul(size_of::<f32>());
        if !crate::data::can_allocate::<f32>(floats) {
            return Err(too_large(bytes));
        }
        Ok(self.simulate(count, seed))
    }

    /// Simulates `count` events from `seed`.
    pub fn simulate(self, count: usize, seed: u64) -> Simulation {
        match self {
            Self::Opis => opis::simulate(&opis::OpisConfig::default(), count, seed),
            Self::Sprites => sprites::simulate(count, seed),
            Self::Showers => showers::simulate(count, seed),
            Self::Polarix => polarix::simulate(count, seed),
        }
    }
}
