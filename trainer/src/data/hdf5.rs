//! HDF5 datasets in and out, through the pure-Rust `hdf5-pure` crate (no libhdf5 to install).
//!
//! A dataset is named by its path inside the file (`/entry/data/spectra`). Contiguous,
//! chunked and compact storage and the deflate, shuffle and LZF filters are read; the element
//! types are those of `.npy` files (see [`super`]).

use std::path::Path;

use hdf5_pure::{DType, File, FileBuilder};
use ndarray::{ArrayD, IxDyn};

use super::Events;
use crate::error::DataError;

fn hdf5_error(path: &Path, dataset: &str, source: hdf5_pure::Error) -> DataError {
    DataError::Hdf5 {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        source,
    }
}

/// Groups visited, datasets listed and depth at most when listing a file's datasets: hard
/// links may form cycles (a group that contains itself), which an unbounded walk follows
/// until the stack overflows.
const MAX_GROUPS_LISTED: usize = 256;
const MAX_DATASETS_LISTED: usize = 64;
const MAX_GROUP_DEPTH: usize = 16;

/// The datasets in the file, as full paths, so an error can list what is there (within the
/// limits above; "..." marks a list cut short).
fn dataset_paths(file: &File) -> Vec<String> {
    struct Walk {
        out: Vec<String>,
        groups_left: usize,
        cut: bool,
    }
    fn walk(group: &hdf5_pure::Group, prefix: &str, depth: usize, state: &mut Walk) {
        let full = state.out.len() >= MAX_DATASETS_LISTED;
        if full || state.groups_left == 0 || depth > MAX_GROUP_DEPTH {
            state.cut = true;
            return;
        }
        state.groups_left -= 1;
        for name in group.datasets().unwrap_or_default() {
            state.out.push(format!("{prefix}/{name}"));
        }
        for name in group.groups().unwrap_or_default() {
            if let Ok(child) = group.group(&name) {
                walk(&child, &format!("{prefix}/{name}"), depth + 1, state);
            }
        }
    }
    let mut state = Walk {
        out: Vec::new(),
        groups_left: MAX_GROUPS_LISTED,
        cut: false,
    };
    walk(&file.root(), "", 0, &mut state);
    if state.cut {
        state.out.push("...".to_owned());
    }
    state.out
}

/// Reads dataset `dataset` of the HDF5 file at `path` as `f32` (`f64` rounds to the nearest
/// `f32`; `i16`, `u16` and `u8` convert exactly).
///
/// # Errors
/// [`DataError`] naming the file and dataset: missing file, not HDF5, no such dataset (the
/// error lists the datasets the file holds), or an unsupported element type.
pub fn read_f32(path: &Path, dataset: &str) -> Result<ArrayD<f32>, DataError> {
    if !path.exists() {
        return Err(DataError::Io {
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let file = File::open(path).map_err(|e| hdf5_error(path, dataset, e))?;
    let Ok(handle) = file.dataset(dataset) else {
        return Err(DataError::MissingDataset {
            path: path.to_owned(),
            dataset: dataset.to_owned(),
            available: dataset_paths(&file).join(", "),
        });
    };
    let read_error = |e| hdf5_error(path, dataset, e);
    let declared = handle.shape().map_err(read_error)?;
    let too_large = || DataError::Hdf5TooLarge {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        shape: declared.clone(),
    };
    let shape: Vec<usize> = declared
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_large()))
        .collect::<Result<_, _>>()?;
    // The reader allocates what the header declares before reading, up to 8 bytes a value.
    let values = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if !values.is_some_and(super::can_allocate::<f64>) {
        return Err(too_large());
    }
    let values: Vec<f32> = match handle.dtype().map_err(read_error)? {
        DType::F32 => handle.read_f32().map_err(read_error)?,
        DType::F64 => to_f32(handle.read_f64().map_err(read_error)?, |v| v as f32),
        DType::I16 => to_f32(handle.read_i16().map_err(read_error)?, f32::from),
        DType::U16 => to_f32(handle.read_u16().map_err(read_error)?, f32::from),
        DType::U8 => to_f32(handle.read_u8().map_err(read_error)?, f32::from),
        other => {
            return Err(DataError::Hdf5Dtype {
                path: path.to_owned(),
                dataset: dataset.to_owned(),
                found: other.to_string(),
            });
        }
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|source| DataError::Hdf5Layout {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        source,
    })
}

fn to_f32<T: Copy>(values: Vec<T>, convert: impl Fn(T) -> f32) -> Vec<f32> {
    values.into_iter().map(convert).collect()
}

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
    builder.write(path).map_err(|e| hdf5_error(path, "/", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by libhdf5 through h5py (`tests/data/make_facility_h5.py`): chunked,
    /// gzip-compressed `u16` counts, a shuffled `f64` dataset and a string dataset.
    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facility.h5")
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
        let calibrated = load_events(&fixture(), "entry/data/calibrated").unwrap();
        assert_eq!(calibrated.data, events.data.mapv(|v| v * 0.5));
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
        assert!(matches!(err, DataError::MissingDataset { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("facility.h5")
                && text.contains("/entry/data/missing")
                && text.contains("/entry/data/spectra"),
            "{text}"
        );

        let err = load_events(&fixture(), "/entry/data/labels").unwrap_err();
        assert!(
            matches!(err, DataError::Hdf5Dtype { .. }) && err.to_string().contains("labels"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let not_hdf5 = dir.path().join("run.h5");
        std::fs::write(&not_hdf5, b"not an hdf5 file").unwrap();
        let err = load_events(&not_hdf5, "/x").unwrap_err();
        assert!(err.to_string().contains("run.h5"), "{err}");

        let err = load_events(&dir.path().join("gone.h5"), "/x").unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
    }

    #[test]
    fn a_file_whose_links_form_a_cycle_lists_its_datasets_and_ends() {
        let cycle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cycle.h5");
        let err = load_events(&cycle, "/entry/missing").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, DataError::MissingDataset { .. })
                && text.contains("/entry/data,")
                && text.contains(", ...]"),
            "{text}"
        );
        assert_eq!(read_f32(&cycle, "/entry/loop/loop/data").unwrap().len(), 12);
    }

    #[test]
    fn a_dataset_declaring_more_than_memory_is_refused_not_allocated() {
        let huge = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/huge.h5");
        let err = read_f32(&huge, "/huge").unwrap_err();
        assert!(
            matches!(err, DataError::Hdf5TooLarge { .. }) && err.to_string().contains("huge.h5"),
            "{err}"
        );
    }
}
