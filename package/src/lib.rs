//! # latentlink package
//!
//! The model package (contract 2 in `docs/ARCHITECTURE.md`): one folder that holds everything
//! the runtime, the bridge and a person need, with a model id that ties every code to its
//! decoder. This crate knows the folder's layout and the manifest; it has no machine-learning
//! dependency, so the bridge's receive path and the firmware's build script can read a
//! package without compiling a training stack.
//!
//! ```text
//! models/<name>/
//!   manifest.toml      name, versions, model id, input shape and normalisation, code width,
//!                      architecture, training data and its hash, runtime footprint, metrics,
//!                      and the command that made it
//!   encoder.blob       int8 runtime blob (latentlink_runtime::blob format)
//!   encoder.onnx       float encoder, opset 13: events → mu, posterior_mean, bits
//!   decoder.onnx       float decoder, opset 13: codes → reconstruction (detector units)
//!   model.bpk          burn record of the float model (its decoder decodes on the host)
//!   report.json        the full evaluation report and training log
//!   report.md          its summary, for people
//!   golden/            inputs.npy, float_codes.npy, int8_codes.npy, reconstructions.npy
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`files`] | the file names inside a package |
//! | [`model_id`] | [`ModelId`]: the one parser and printer of model ids |
//! | [`manifest`] | [`Manifest`] and its sections, read with a TOML parser |
//! | [`shape`] | [`EventShape`] and [`Normalisation`]: what the encoder reads |
//! | [`golden`] | [`Golden`] vectors every side must reproduce |
//! | [`npy`] | `.npy` reading that checks the header against the file before allocating |
//! | `hdf5` | feature `hdf5`: HDF5 dataset reading, bounded against link cycles and huge headers |
//! | [`open`] | [`Package::open`]: read a package once and verify its model id |
//! | [`error`] | [`PackageError`] |
//!
//! Open a package once and pass the [`Package`] value down; nothing below re-reads it.

pub mod error;
pub mod files;
pub mod golden;
#[cfg(feature = "hdf5")]
pub mod hdf5;
pub mod manifest;
pub mod model_id;
pub mod npy;
pub mod open;
pub mod shape;

pub use error::PackageError;
pub use golden::Golden;
pub use manifest::Manifest;
pub use model_id::ModelId;
pub use open::Package;
pub use shape::{EventShape, Normalisation};
