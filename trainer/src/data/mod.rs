//! Event data: loading recorded events, splitting them, and the normalisation that travels
//! with a model.
//!
//! Events are held as an `[N, D]` `f32` matrix plus their [`EventShape`] (`channels ×
//! length`, channel-major, the same layout the runtime's input layer reads). Accepted files:
//!
//! | shape | meaning |
//! |---|---|
//! | `[N, D]` | flat events (one channel) |
//! | `[N, C, L]` | multi-channel spectra or waveforms; images `[N, H, W]`; point clouds `[N, P, 3]` |
//!
//! Files are `.npy` or HDF5 datasets ([`DataSource`]) holding `f32`, `f64`, `i16`, `u16` or
//! `u8`; integers are ADC counts and are converted exactly.

pub mod hdf5;
pub mod npy;

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use ndarray::{Array2, ArrayD, Axis};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

use crate::error::DataError;
pub use latentlink_package::{EventShape, Normalisation};

/// Whether the allocator grants `count` values of `T`: arrays are made with infallible
/// allocation, which aborts the process instead of returning an error, so a size taken from a
/// file header or an option is asked for here first.
pub(crate) use latentlink_package::hdf5::can_allocate;

/// Where recorded events come from, written `FILE.npy` or `FILE.h5:/group/dataset` on the
/// command line (`.h5`, `.hdf5`, `.hdf`, `.nxs` and `.nx5` files are HDF5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A `.npy` file.
    Npy(PathBuf),
    /// One dataset of an HDF5 file.
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The dataset's path inside the file (empty if none was given).
        dataset: String,
    },
}

const HDF5_EXTENSIONS: [&str; 5] = ["h5", "hdf5", "hdf", "nxs", "nx5"];

fn is_hdf5_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| HDF5_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl DataSource {
    /// Loads the events.
    ///
    /// # Errors
    /// [`DataError`] naming the file (and dataset) for every bad-input case; an HDF5 file
    /// given without a dataset gets `Hdf5Error::MissingDataset`, which lists the datasets.
    pub fn load(&self) -> Result<Events, DataError> {
        match self {
            Self::Npy(path) => npy::load_events(path),
            Self::Hdf5 { path, dataset } => hdf5::load_events(path, dataset),
        }
    }
}

impl FromStr for DataSource {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some((file, dataset)) = text.rsplit_once(':') {
            let path = PathBuf::from(file);
            if is_hdf5_path(&path) {
                return Ok(Self::Hdf5 {
                    path,
                    dataset: dataset.to_owned(),
                });
            }
        }
        let path = PathBuf::from(text);
        Ok(if is_hdf5_path(&path) {
            Self::Hdf5 {
                path,
                dataset: String::new(),
            }
        } else {
            Self::Npy(path)
        })
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Npy(path) => write!(f, "{}", path.display()),
            Self::Hdf5 { path, dataset } => write!(f, "{}:{dataset}", path.display()),
        }
    }
}

/// A set of events, `[N, channels · length]`.
#[derive(Debug, Clone)]
pub struct Events {
    /// One event per row.
    pub data: Array2<f32>,
    /// Layout of each row.
    pub shape: EventShape,
}

impl Events {
    /// Wraps an `[N, D]` or `[N, C, L]` array, checking that it is non-empty and finite.
    ///
    /// # Errors
    /// [`DataError`] naming `source` (a path or a simulator) if the shape is unsupported, the
    /// set is empty, or a value is NaN or infinite.
    pub fn from_array(array: ArrayD<f32>, source: &str) -> Result<Self, DataError> {
        let dims = array.shape().to_vec();
        let shape = match dims[..] {
            [_, d] => EventShape {
                channels: 1,
                length: d,
            },
            [_, c, l] => EventShape {
                channels: c,
                length: l,
            },
            _ => {
                return Err(DataError::Shape {
                    source_name: source.to_owned(),
                    shape: dims,
                    expected: "[N, D] or [N, C, L]",
                });
            }
        };
        if dims[0] == 0 || shape.features() == 0 {
            return Err(DataError::Empty {
                source_name: source.to_owned(),
                shape: dims,
            });
        }
        if let Some(position) = array.iter().position(|v| !v.is_finite()) {
            return Err(DataError::NonFinite {
                source_name: source.to_owned(),
                event: position / shape.features(),
                sample: position % shape.features(),
            });
        }
        let data = array
            .into_shape_with_order((dims[0], shape.features()))
            .map_err(|_| DataError::Shape {
                source_name: source.to_owned(),
                shape: dims.clone(),
                expected: "a contiguous array",
            })?;
        Ok(Self { data, shape })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.data.nrows()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.data.nrows() == 0
    }

    /// The events at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        Self {
            data: self.data.select(Axis(0), indices),
            shape: self.shape,
        }
    }

    /// Reads the events as point clouds (`channels` points of `length` features) padded the
    /// way most tools store them, every unused point slot all zeros, and pads them instead
    /// with copies of the event's first non-zero point ("duplicate padding", see
    /// [`crate::cloud`]): a max over the points and the set metrics then see only the real
    /// points. Returns how many slots were padding. A real point at exactly zero in every
    /// feature would be taken for padding; with an energy or pT feature there is none.
    ///
    /// # Errors
    /// [`DataError::EmptyCloud`] for an event with no non-zero point.
    pub fn pad_clouds_with_copies(&mut self, source: &str) -> Result<usize, DataError> {
        let features = self.shape.length.max(1);
        let is_empty = |point: &ndarray::ArrayViewMut1<'_, f32>| point.iter().all(|&v| v == 0.0);
        let mut padded = 0;
        for (event, mut row) in self.data.rows_mut().into_iter().enumerate() {
            let mut points: Vec<_> = row.exact_chunks_mut(features).into_iter().collect();
            let first = points
                .iter()
                .find(|point| !is_empty(point))
                .map(|point| point.to_owned())
                .ok_or_else(|| DataError::EmptyCloud {
                    source_name: source.to_owned(),
                    event,
                })?;
            for point in &mut points {
                if is_empty(point) {
                    point.assign(&first);
                    padded += 1;
                }
            }
        }
        Ok(padded)
    }

    /// Checks that these events fit a model trained on `expected`.
    ///
    /// # Errors
    /// [`DataError::ShapeMismatch`] if the layouts differ.
    pub fn expect_shape(&self, expected: EventShape, source: &str) -> Result<(), DataError> {
        if self.shape == expected {
            Ok(())
        } else {
            Err(DataError::ShapeMismatch {
                source_name: source.to_owned(),
                expected,
                found: self.shape,
            })
        }
    }
}

/// Train, validation and test parts of one data set.
#[derive(Debug, Clone)]
pub struct Split {
    /// Fitting.
    pub train: Events,
    /// Early stopping, calibration and reported metrics.
    pub validation: Events,
    /// Held out.
    pub test: Events,
}

/// Shuffles with `seed` and splits into train/validation/test by `fractions` of validation
/// and test (the rest trains). Each part gets at least one event.
///
/// # Errors
/// [`DataError::TooFewEvents`] with fewer than 3 events.
pub fn split(events: &Events, validation: f64, test: f64, seed: u64) -> Result<Split, DataError> {
    let n = events.len();
    if n < 3 {
        return Err(DataError::TooFewEvents {
            found: n,
            needed: 3,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let count = |fraction: f64| ((n as f64 * fraction).round() as usize).clamp(1, n - 2);
    let n_val = count(validation);
    let n_test = count(test).min(n - n_val - 1);
    let (val_idx, rest) = order.split_at(n_val);
    let (test_idx, train_idx) = rest.split_at(n_test);
    Ok(Split {
        train: events.select(train_idx),
        validation: events.select(val_idx),
        test: events.select(test_idx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, IxDyn};

    fn events(n: usize, d: usize) -> Events {
        let data = Array::from_shape_fn(IxDyn(&[n, d]), |i| (i[0] * d + i[1]) as f32);
        Events::from_array(data, "test").unwrap()
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let all = events(100, 3);
        let a = split(&all, 0.1, 0.2, 4).unwrap();
        assert_eq!(
            (a.train.len(), a.validation.len(), a.test.len()),
            (70, 10, 20)
        );
        let b = split(&all, 0.1, 0.2, 4).unwrap();
        assert_eq!(a.validation.data, b.validation.data);
        let mut firsts: Vec<f32> = [&a.train, &a.validation, &a.test]
            .iter()
            .flat_map(|e| e.data.column(0).to_vec())
            .collect();
        firsts.sort_by(f32::total_cmp);
        assert_eq!(firsts, (0..100).map(|i| (i * 3) as f32).collect::<Vec<_>>());
        assert!(matches!(
            split(&events(2, 3), 0.1, 0.1, 0),
            Err(DataError::TooFewEvents { .. })
        ));
    }

    #[test]
    fn normalisation_round_trips_and_floors_constant_features() {
        let mut all = events(10, 3);
        all.data.column_mut(1).fill(5.0);
        let norm = Normalisation::fit(&all.data);
        assert!(norm.std[1] > 0.0);
        let z = norm.apply(&all.data);
        assert!(z.column(0).mean().unwrap().abs() < 1e-5);
        let back = norm.invert(&z);
        assert!(
            back.iter()
                .zip(all.data.iter())
                .all(|(a, b)| (a - b).abs() < 1e-3)
        );
    }

    #[test]
    fn zero_padded_clouds_are_padded_with_a_copy_of_a_real_point() {
        // Two clouds of three (x, E) slots: one with a zero slot, one full.
        let array = ndarray::array![
            [[0.0f32, 0.0], [2.0, 1.0], [0.0, 0.0]],
            [[1.0, 1.0], [0.0, 3.0], [4.0, 2.0]]
        ];
        let mut events = Events::from_array(array.into_dyn(), "test").unwrap();
        assert_eq!(events.pad_clouds_with_copies("test").unwrap(), 2);
        assert_eq!(
            events.data.row(0).to_vec(),
            vec![2.0, 1.0, 2.0, 1.0, 2.0, 1.0]
        );
        assert_eq!(
            events.data.row(1).to_vec(),
            vec![1.0, 1.0, 0.0, 3.0, 4.0, 2.0]
        );
        let empty = ndarray::Array3::<f32>::zeros((2, 3, 2));
        let mut events = Events::from_array(empty.into_dyn(), "file.npy").unwrap();
        let error = events.pad_clouds_with_copies("file.npy").unwrap_err();
        assert!(
            matches!(error, DataError::EmptyCloud { event: 0, .. }),
            "{error}"
        );
    }

    #[test]
    fn data_sources_parse_from_the_command_line() {
        let source = |t: &str| t.parse::<DataSource>().unwrap();
        assert_eq!(
            source("runs/42/events.npy"),
            DataSource::Npy("runs/42/events.npy".into())
        );
        assert_eq!(
            source("/data/run42.h5:/entry/data/spectra"),
            DataSource::Hdf5 {
                path: "/data/run42.h5".into(),
                dataset: "/entry/data/spectra".into()
            }
        );
        assert_eq!(
            source("scan.NXS"),
            DataSource::Hdf5 {
                path: "scan.NXS".into(),
                dataset: String::new()
            }
        );
        assert_eq!(
            source("scan.nxs:/entry").to_string(),
            "scan.nxs:/entry".to_string()
        );
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../package/tests/data/facility.h5");
        let err = DataSource::Hdf5 {
            path: fixture,
            dataset: String::new(),
        }
        .load()
        .unwrap_err();
        assert!(err.to_string().contains("/entry/data/spectra"), "{err}");
    }

    #[test]
    fn bad_arrays_are_named_errors() {
        let nan = Array::from_shape_vec(IxDyn(&[2, 2]), vec![0.0, 1.0, f32::NAN, 0.0]).unwrap();
        let err = Events::from_array(nan, "run42.npy").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run42.npy: event 1, sample 0 is NaN or infinite; clean or mask the data before training"
        );
        let flat = Array::zeros(IxDyn(&[4]));
        assert!(matches!(
            Events::from_array(flat, "x"),
            Err(DataError::Shape { .. })
        ));
        let empty = Array::zeros(IxDyn(&[0, 4]));
        assert!(matches!(
            Events::from_array(empty, "x"),
            Err(DataError::Empty { .. })
        ));
        let e = events(3, 4);
        let other = EventShape {
            channels: 2,
            length: 2,
        };
        assert!(
            e.expect_shape(other, "deploy.npy")
                .unwrap_err()
                .to_string()
                .contains("deploy.npy")
        );
    }
}
