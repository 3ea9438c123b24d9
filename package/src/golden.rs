//! Golden vectors: events and the codes and reconstructions every side (runtime, firmware,
//! bridge, ONNX) must reproduce, under `golden/` as `f32` `.npy` arrays.

use std::fs;
use std::path::Path;

use ndarray::{Array2, Ix2};
use ndarray_npy::write_npy;

use crate::error::{PackageError, io_error};
use crate::files;

/// The golden vectors of a package.
#[derive(Debug, Clone)]
pub struct Golden {
    /// Raw events, `[n, D]`.
    pub inputs: Array2<f32>,
    /// Float model code bits (0/1), `[n, bits]`.
    pub float_codes: Array2<f32>,
    /// int8 runtime code bits (0/1), `[n, bits]`.
    pub int8_codes: Array2<f32>,
    /// Reconstructions of the int8 codes by the float decoder, detector units, `[n, D]`.
    pub reconstructions: Array2<f32>,
}

const NAMES: [&str; 4] = [
    "inputs.npy",
    "float_codes.npy",
    "int8_codes.npy",
    "reconstructions.npy",
];

impl Golden {
    /// Reads the golden vectors of the package in `dir`.
    ///
    /// # Errors
    /// [`PackageError`] naming the file that is missing or invalid.
    pub fn read(dir: &Path) -> Result<Self, PackageError> {
        let folder = dir.join(files::GOLDEN);
        let read = |name: &str| -> Result<Array2<f32>, PackageError> {
            let path = folder.join(name);
            let array: ndarray::ArrayD<f32> =
                crate::npy::read(&path).map_err(|source| PackageError::NpyRead {
                    path: path.clone(),
                    source,
                })?;
            let shape = array.shape().to_vec();
            array
                .into_dimensionality::<Ix2>()
                .map_err(|_| PackageError::GoldenShape { path, shape })
        };
        let [inputs, float_codes, int8_codes, reconstructions] = NAMES;
        Ok(Self {
            inputs: read(inputs)?,
            float_codes: read(float_codes)?,
            int8_codes: read(int8_codes)?,
            reconstructions: read(reconstructions)?,
        })
    }

    /// Writes the golden vectors under `dir/golden`.
    ///
    /// # Errors
    /// [`PackageError`] naming the file that could not be written.
    pub fn write(&self, dir: &Path) -> Result<(), PackageError> {
        let folder = dir.join(files::GOLDEN);
        fs::create_dir_all(&folder).map_err(io_error(&folder))?;
        let arrays = [
            &self.inputs,
            &self.float_codes,
            &self.int8_codes,
            &self.reconstructions,
        ];
        for (name, array) in NAMES.into_iter().zip(arrays) {
            let path = folder.join(name);
            write_npy(&path, array).map_err(|source| PackageError::NpyWrite { path, source })?;
        }
        Ok(())
    }
}
