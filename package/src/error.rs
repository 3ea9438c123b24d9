//! Why a package could not be read or written. Every variant names the file or section and
//! carries the underlying error as its source.

use std::path::{Path, PathBuf};

use crate::model_id::ModelId;

/// Why a package could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected layout.
    #[error("{path}: invalid manifest: {source}")]
    ManifestSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The manifest could not be serialised.
    #[error("{path}: cannot write the manifest: {source}")]
    ManifestWrite {
        /// The file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: toml::ser::Error,
    },
    /// A section of the manifest does not fit the type that reads it.
    #[error("manifest section [{section}] does not fit this version: {source}")]
    Section {
        /// The section.
        section: &'static str,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A configuration could not be written as a manifest section.
    #[error("cannot write manifest section [{section}]: {source}")]
    SectionWrite {
        /// The section.
        section: &'static str,
        /// The serialiser's error.
        #[source]
        source: toml::ser::Error,
    },
    /// A golden array could not be read.
    #[error("{path}: not a readable f32 .npy array: {source}")]
    NpyRead {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: ndarray_npy::ReadNpyError,
    },
    /// A golden array could not be written.
    #[error("{path}: cannot write the .npy array: {source}")]
    NpyWrite {
        /// The file.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: ndarray_npy::WriteNpyError,
    },
    /// A golden array is not two-dimensional.
    #[error("{path}: shape {shape:?}, expected [n, width]")]
    GoldenShape {
        /// The file.
        path: PathBuf,
        /// Shape found.
        shape: Vec<usize>,
    },
    /// The model id in the manifest does not match the files.
    #[error(
        "{path}: model id {declared} does not match its files ({computed}); the package was modified or is incomplete"
    )]
    ModelId {
        /// Package folder.
        path: PathBuf,
        /// Id in the manifest.
        declared: ModelId,
        /// Id of the files.
        computed: ModelId,
    },
    /// The manifest parses but contradicts itself (e.g. 136 bits in 16-byte codes, or a
    /// normalisation of another length than the event).
    #[error("{path}: the manifest is inconsistent: {what}")]
    Inconsistent {
        /// The manifest.
        path: PathBuf,
        /// What does not add up.
        what: String,
    },
}

/// Maps an I/O error to [`PackageError::Io`] naming `path`.
pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_owned(),
        source,
    }
}
