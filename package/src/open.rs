//! Opening a package: read the manifest, the blob and the record once, and check the model
//! id against the files. The [`Package`] value is what every consumer takes.

use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::error::{PackageError, io_error};
use crate::files;
use crate::golden::Golden;
use crate::manifest::Manifest;
use crate::model_id::ModelId;

/// A package read from disk and verified: its manifest, and the two files its model id
/// covers.
#[derive(Debug, Clone)]
pub struct Package {
    /// The folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// `encoder.blob`.
    pub blob: Vec<u8>,
    /// `model.bpk`.
    pub record: Vec<u8>,
}

impl Package {
    /// Reads a package's manifest, blob and record, and checks the model id against the
    /// files.
    ///
    /// # Errors
    /// [`PackageError`] if a file is missing or invalid, or the id does not match.
    pub fn open(dir: &Path) -> Result<Self, PackageError> {
        let manifest = Manifest::read(dir)?;
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read(&path).map_err(io_error(&path))
        };
        let blob = read(files::ENCODER_BLOB)?;
        let record = read(files::MODEL_RECORD)?;
        let computed = ModelId::of(&blob, &record);
        if computed != manifest.model_id {
            return Err(PackageError::ModelId {
                path: dir.to_owned(),
                declared: manifest.model_id,
                computed,
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
            blob,
            record,
        })
    }

    /// The model id (verified against the files).
    pub const fn model_id(&self) -> ModelId {
        self.manifest.model_id
    }

    /// A file of the package.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The package's golden vectors.
    ///
    /// # Errors
    /// As [`Golden::read`].
    pub fn golden(&self) -> Result<Golden, PackageError> {
        Golden::read(&self.dir)
    }
}

/// Writes a file into a package folder.
///
/// # Errors
/// [`PackageError::Io`] naming the file.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PackageError> {
    let path = dir.join(name);
    fs::write(&path, bytes).map_err(io_error(&path))
}

/// SHA-256 of events as little-endian f32, hex: the training data's fingerprint in the
/// manifest.
pub fn data_hash(events: &Array2<f32>) -> String {
    let mut hasher = Sha256::new();
    for v in events {
        hasher.update(v.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_hash_is_stable_and_sensitive() {
        let a = Array2::<f32>::zeros((2, 3));
        let mut b = a.clone();
        assert_eq!(data_hash(&a), data_hash(&b));
        b[[1, 2]] = 1e-7;
        assert_ne!(data_hash(&a), data_hash(&b));
        assert_eq!(data_hash(&a).len(), 64);
    }

    #[test]
    fn the_shipped_package_opens_and_a_changed_file_is_refused() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128");
        let package = Package::open(&shipped).expect("the shipped package opens");
        assert_eq!(package.manifest.code.bits, 128);
        assert_eq!(
            package.model_id(),
            ModelId::of(&package.blob, &package.record)
        );
        let golden = package.golden().expect("golden vectors");
        assert_eq!(
            golden.inputs.ncols(),
            package.manifest.input.shape().features()
        );

        let copy = tempfile::tempdir().expect("temp dir");
        for name in [files::MANIFEST, files::ENCODER_BLOB, files::MODEL_RECORD] {
            fs::copy(shipped.join(name), copy.path().join(name)).expect("copy");
        }
        let mut blob = package.blob.clone();
        blob[100] ^= 1;
        write_file(copy.path(), files::ENCODER_BLOB, &blob).expect("write");
        let error = Package::open(copy.path()).expect_err("a changed blob is refused");
        assert!(matches!(error, PackageError::ModelId { .. }), "{error}");
    }

    #[test]
    fn a_manifest_that_contradicts_itself_is_refused() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128");
        let text = fs::read_to_string(shipped.join(files::MANIFEST)).expect("manifest");
        let copy = tempfile::tempdir().expect("temp dir");
        let std_line = text
            .lines()
            .find(|line| line.starts_with("std = "))
            .expect("a std line");
        let first_comma = std_line.find(',').expect("two values");
        let tampered = [
            (text.replace("bits = 128", "bits = 136"), "136 code bits"),
            (
                text.replacen("length = 256", "length = 255", 1),
                "input.mean",
            ),
            (
                text.replace(std_line, &format!("std = [0.0{}", &std_line[first_comma..])),
                "above 0",
            ),
        ];
        for (manifest, expected) in tampered {
            assert_ne!(manifest, text, "{expected}: the replacement applied");
            write_file(copy.path(), files::MANIFEST, manifest.as_bytes()).expect("write");
            let error = Manifest::read(copy.path()).expect_err(expected);
            assert!(
                matches!(error, PackageError::Inconsistent { .. }),
                "{error}"
            );
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
