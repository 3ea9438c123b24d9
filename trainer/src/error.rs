//! Errors of the trainer library. Each names the file or thing involved and, where there is
//! one, the fix.

use std::path::PathBuf;

use latentlink_package::EventShape;

/// Problems with input data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable `.npy` array.
    #[error("{path}: not a readable .npy array ({source})")]
    ReadNpy {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: ndarray_npy::ReadNpyError,
    },
    /// The array could not be written as `.npy`.
    #[error("{path}: cannot write .npy ({source})")]
    WriteNpy {
        /// The file.
        path: PathBuf,
        /// What the writer said.
        #[source]
        source: ndarray_npy::WriteNpyError,
    },
    /// An HDF5 file could not be written.
    #[error("{path}:{dataset}: {source}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// What the HDF5 writer said.
        #[source]
        source: hdf5_pure::Error,
    },
    /// An HDF5 dataset could not be read (the error names the file, the dataset, and what
    /// the file holds).
    #[error(transparent)]
    Hdf5Read(#[from] latentlink_package::hdf5::Hdf5Error),
    /// The element type is not one of the supported ones.
    #[error(
        "{path}: unsupported element type; expected f32, f64, i16, u16 or u8 (convert with numpy's astype)"
    )]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
    },
    /// The array does not have a supported shape.
    #[error("{source_name}: shape {shape:?} is not supported; expected {expected}")]
    Shape {
        /// File or simulator.
        source_name: String,
        /// Shape found.
        shape: Vec<usize>,
        /// Shapes accepted.
        expected: &'static str,
    },
    /// The array holds no events.
    #[error("{source_name}: no events (shape {shape:?})")]
    Empty {
        /// File or simulator.
        source_name: String,
        /// Shape found.
        shape: Vec<usize>,
    },
    /// A point cloud whose every point slot is empty (all zero).
    #[error(
        "{source_name}: event {event} is an empty point cloud (every point is all zeros); drop it before training"
    )]
    EmptyCloud {
        /// File or simulator.
        source_name: String,
        /// Index of the event.
        event: usize,
    },
    /// A value is NaN or infinite.
    #[error(
        "{source_name}: event {event}, sample {sample} is NaN or infinite; clean or mask the data before training"
    )]
    NonFinite {
        /// File or simulator.
        source_name: String,
        /// Event index.
        event: usize,
        /// Sample index within the event.
        sample: usize,
    },
    /// The events do not have the layout a model expects.
    #[error("{source_name}: events are {}×{} but the model takes {}×{}", found.channels, found.length, expected.channels, expected.length)]
    ShapeMismatch {
        /// File or simulator.
        source_name: String,
        /// Layout the model takes.
        expected: EventShape,
        /// Layout found.
        found: EventShape,
    },
    /// Too few events to split.
    #[error("{found} events are too few; at least {needed} are needed")]
    TooFewEvents {
        /// Events given.
        found: usize,
        /// Events needed.
        needed: usize,
    },
}
