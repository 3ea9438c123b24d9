//! HDF5 datasets in and out, through the pure-Rust `hdf5-pure` crate (no libhdf5 to install).
//!
//! A dataset is named by its path inside the file (`/entry/data/spectra`). Reading, with its
//! checks against hostile files, is `latentlink_package::hdf5` (shared with the fuzz targets);
//! here the dataset becomes [`Events`], and arrays are written.

use std::path::Path;

use hdf5_pure::FileBuilder;
use latentlink_package::hdf5::read_f32;
use ndarray::ArrayD;

use super::Events;
use crate::error::DataError;

/// Loads events from one dataset of an HDF5 file (see [`super`] for the accepted shapes).
///
/// # Errors
/// [`DataError`] naming the file and dataset for every bad-input case.
pub fn load_events(path: &Path, dataset: &str) -> Result<Events, DataError> {
    Events::from_array(
        read_f32(path, dataset)?,
        &format!("{}:{dataset}", path.display()),
    )
}

/// Writes `datasets` (name, array) into a new HDF5 file at `path`, replacing the file.
///
/// # Errors
/// [`DataError::Hdf5`] naming the file.
pub fn write_f32(path: &Path, datasets: &[(&str, &ArrayD<f32>)]) -> Result<(), DataError> {
    let mut builder = FileBuilder::new();
    for (name, array) in datasets {
        let values: Vec<f32> = array.iter().copied().collect();
        let shape: Vec<u64> = array.shape().iter().map(|&d| d as u64).collect();
        builder
            .create_dataset(name.trim_start_matches('/'))
            .with_f32_data(&values)
            .with_shape(&shape);
    }
    builder.write(path).map_err(|source| DataError::Hdf5 {
        path: path.to_owned(),
        dataset: "/".to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use latentlink_package::hdf5::Hdf5Error;
    use ndarray::IxDyn;

    /// Written by libhdf5 through h5py (`package/tests/data/make_facility_h5.py`): chunked,
    /// gzip-compressed `u16` counts, a shuffled `f64` dataset and a string dataset.
    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../package/tests/data/facility.h5")
    }

    #[test]
    fn reads_chunked_compressed_files_written_by_libhdf5() {
        let events = load_events(&fixture(), "/entry/data/spectra").unwrap();
        assert_eq!(
            (events.len(), events.shape.channels, events.shape.length),
            (6, 2, 8)
        );
        // counts = arange(6·2·8) · 7, so event 1, channel 1, sample 0 is (16 + 8) · 7.
        assert_eq!(events.data[[1, 8]], 168.0);
        assert_eq!(events.data[[5, 15]], 95.0 * 7.0);
    }

    #[test]
    fn round_trips_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.h5");
        let array = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f32 - 2.5);
        let factors = array.mapv(|v| v * 2.0);
        write_f32(&path, &[("/events", &array), ("factors", &factors)]).unwrap();
        assert_eq!(read_f32(&path, "/events").unwrap(), array);
        assert_eq!(read_f32(&path, "/factors").unwrap(), factors);
    }

    #[test]
    fn bad_inputs_name_the_file_and_dataset() {
        let err = load_events(&fixture(), "/entry/data/missing").unwrap_err();
        assert!(
            matches!(err, DataError::Hdf5Read(Hdf5Error::MissingDataset { .. })),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("facility.h5") && text.contains("/entry/data/missing"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let not_hdf5 = dir.path().join("run.h5");
        std::fs::write(&not_hdf5, b"not an hdf5 file").unwrap();
        let err = load_events(&not_hdf5, "/x").unwrap_err();
        assert!(err.to_string().contains("run.h5"), "{err}");
    }
}
