//! Loading a package's float model.

use burn::module::Module;
use burn::tensor::Device;
use latentlink_package::{Package, PackageError, files};

use crate::vae::{Vae, VaeConfig};

/// Why a package's model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The manifest's `[architecture]` does not describe a model of this version.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The architecture names a kind this version does not know, or does not fit its events.
    #[error(transparent)]
    Architecture(#[from] crate::vae::ArchitectureError),
    /// `model.bpk` does not fit the manifest's architecture.
    #[error("{path}: cannot load the model record: {source}")]
    Record {
        /// The file.
        path: std::path::PathBuf,
        /// burn's error.
        #[source]
        source: burn::store::RecordError,
    },
}

/// The float model of an opened package, on `device`.
///
/// # Errors
/// [`ModelError`] if the architecture section or `model.bpk` does not fit.
pub fn load_vae(package: &Package, device: &Device) -> Result<Vae, ModelError> {
    let config: VaeConfig = package.manifest.architecture()?;
    config.validate()?;
    let path = package.path(files::MODEL_RECORD);
    config
        .init(device)
        .try_load_file(&path)
        .map_err(|source| ModelError::Record { path, source })
}
