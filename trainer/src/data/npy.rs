//! `.npy` files in and out, with the element types detectors produce.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadableElement, write_npy};

use super::Events;
use crate::error::DataError;

fn try_read<T: ReadableElement + Copy>(
    path: &Path,
    convert: impl Fn(T) -> f32,
) -> Result<Option<ArrayD<f32>>, DataError> {
    match latentlink_package::npy::read::<T, ndarray::IxDyn>(path) {
        Ok(array) => Ok(Some(array.mapv(convert))),
        Err(ReadNpyError::WrongDescriptor(_)) => Ok(None),
        Err(ReadNpyError::Io(source)) => Err(DataError::Io {
            path: path.to_owned(),
            source,
        }),
        Err(source) => Err(DataError::ReadNpy {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads an `.npy` array of `f32`, `f64`, `i16`, `u16` or `u8` as `f32` (`f64` rounds to the
/// nearest `f32`; the integer types convert exactly).
///
/// # Errors
/// [`DataError`] naming the file: missing, unreadable, or of another element type.
pub fn read_f32(path: &Path) -> Result<ArrayD<f32>, DataError> {
    if let Some(a) = try_read::<f32>(path, |v| v)? {
        return Ok(a);
    }
    if let Some(a) = try_read::<f64>(path, |v| v as f32)? {
        return Ok(a);
    }
    if let Some(a) = try_read::<i16>(path, f32::from)? {
        return Ok(a);
    }
    if let Some(a) = try_read::<u16>(path, f32::from)? {
        return Ok(a);
    }
    if let Some(a) = try_read::<u8>(path, f32::from)? {
        return Ok(a);
    }
    Err(DataError::UnsupportedDtype {
        path: path.to_owned(),
    })
}

/// Loads events from an `.npy` file (see [`super`] for the accepted shapes).
///
/// # Errors
/// [`DataError`] naming the file for every bad-input case.
pub fn load_events(path: &Path) -> Result<Events, DataError> {
    Events::from_array(read_f32(path)?, &path.display().to_string())
}

/// Writes an `f32` array as `.npy`.
///
/// # Errors
/// [`DataError::Io`] or [`DataError::WriteNpy`] naming the file.
pub fn write_f32<D: ndarray::Dimension>(
    path: &Path,
    array: &ndarray::Array<f32, D>,
) -> Result<(), DataError> {
    write_npy(path, array).map_err(|e| match e {
        ndarray_npy::WriteNpyError::Io(source) => DataError::Io {
            path: path.to_owned(),
            source,
        },
        source => DataError::WriteNpy {
            path: path.to_owned(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3, array};

    #[test]
    fn round_trips_every_supported_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        write_npy(&path, &array![[1.5f64, -2.0], [3.0, 4.0]]).unwrap();
        assert_eq!(
            read_f32(&path)
                .unwrap()
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap(),
            array![[1.5f32, -2.0], [3.0, 4.0]]
        );
        write_npy(&path, &array![[-7i16, 300]]).unwrap();
        assert_eq!(read_f32(&path).unwrap().as_slice().unwrap(), &[-7.0, 300.0]);
        write_npy(&path, &array![[65535u16, 0]]).unwrap();
        assert_eq!(
            read_f32(&path).unwrap().as_slice().unwrap(),
            &[65535.0, 0.0]
        );
        write_npy(&path, &array![[255u8, 1]]).unwrap();
        assert_eq!(read_f32(&path).unwrap().as_slice().unwrap(), &[255.0, 1.0]);
        let spectra =
            Array3::<f32>::from_shape_fn((5, 4, 8), |(n, c, l)| (n * 100 + c * 10 + l) as f32);
        write_f32(&path, &spectra).unwrap();
        let events = load_events(&path).unwrap();
        assert_eq!(
            (events.shape.channels, events.shape.length, events.len()),
            (4, 8, 5)
        );
        assert_eq!(events.data[[2, 13]], 2.0 * 100.0 + 10.0 + 5.0);
    }

    #[test]
    fn bad_files_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.npy");
        let err = load_events(&missing).unwrap_err();
        assert!(
            matches!(err, DataError::Io { .. }) && err.to_string().contains("missing.npy"),
            "{err}"
        );

        let garbage = dir.path().join("garbage.npy");
        std::fs::write(&garbage, b"not numpy").unwrap();
        let err = load_events(&garbage).unwrap_err();
        assert!(err.to_string().contains("garbage.npy"), "{err}");

        let ints = dir.path().join("i64.npy");
        write_npy(&ints, &array![[1i64, 2]]).unwrap();
        let err = load_events(&ints).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedDtype { .. }), "{err}");
        assert!(err.to_string().contains("astype"), "{err}");

        let nan = dir.path().join("nan.npy");
        write_npy(&nan, &Array2::from_elem((2, 2), f32::NAN)).unwrap();
        assert!(matches!(
            load_events(&nan),
            Err(DataError::NonFinite {
                event: 0,
                sample: 0,
                ..
            })
        ));

        let four_d = dir.path().join("4d.npy");
        write_npy(&four_d, &ndarray::Array4::<f32>::zeros((1, 1, 1, 1))).unwrap();
        assert!(matches!(load_events(&four_d), Err(DataError::Shape { .. })));
    }
}
