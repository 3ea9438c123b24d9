//! HDF5 dataset reading (feature `hdf5`), through the pure-Rust `hdf5-pure` crate, with the
//! checks a file from anywhere needs before it is trusted.
//!
//! A dataset is named by its path inside the file (`/entry/data/spectra`). Contiguous,
//! chunked and compact storage and the deflate, shuffle and LZF filters are read; the element
//! types are `f32`, `f64`, `i16`, `u16` and `u8`, read as `f32`. Two things a hostile or
//! damaged file can do are refused rather than followed:
//!
//! - hard links that form a cycle (a group that contains itself): listing the datasets for an
//!   error message walks at most [`MAX_GROUPS_LISTED`] groups, [`MAX_GROUP_DEPTH`] deep;
//! - a header that declares more values than the machine can allocate: refused as
//!   [`Hdf5Error::TooLarge`] before the reader allocates them;
//! - a header that declares more bytes than the file could hold, even at deflate's best ratio
//!   ([`MAX_DEFLATE_RATIO`]): refused as [`Hdf5Error::LargerThanFile`], because the reader
//!   would otherwise allocate the declared size first (gigabytes, for a file of 163 bytes that
//!   fuzzing found) and only then find the data missing;
//! - stored data (a contiguous run, or any chunk) that the layout places beyond the end of the
//!   file: refused as [`Hdf5Error::OutsideFile`] before the reader allocates its claimed size;
//! - a dataset whose storage was never written (a contiguous dataset without an address, a
//!   chunked one without chunks): refused as [`Hdf5Error::NoData`], because the reader would
//!   return its fill value, numbers nobody measured.
//!
//! The trainer (training data) reads HDF5 through [`read_f32`]; the fuzz target
//! `firmware-bridge/fuzz` (`hdf5`) runs it on arbitrary bytes.

use std::path::{Path, PathBuf};

use hdf5_pure::{ChunkIndex, DType, File, Layout};
use ndarray::{ArrayD, IxDyn};

/// Groups visited when listing a file's datasets.
pub const MAX_GROUPS_LISTED: usize = 256;
/// Datasets listed at most.
pub const MAX_DATASETS_LISTED: usize = 64;
/// Deepest group visited when listing.
pub const MAX_GROUP_DEPTH: usize = 16;
/// The most bytes one byte of a filtered (deflate) dataset can stand for: deflate codes a
/// run of 258 bytes in at most 2 bits, so no stream inflates by more than 1032:1. Shuffle
/// does not compress and LZF compresses less, so this bounds every filter the reader takes.
pub const MAX_DEFLATE_RATIO: u64 = 1032;

/// Why an HDF5 dataset could not be read. Every variant names the file and the dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Hdf5Error {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HDF5 reader refused the file or dataset.
    #[error("{path}:{dataset}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// What the HDF5 reader said.
        #[source]
        source: hdf5_pure::Error,
    },
    /// The dataset's values do not fill the shape it declares.
    #[error("{path}:{dataset}: values do not match the declared shape ({source})")]
    Layout {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// What ndarray said.
        #[source]
        source: ndarray::ShapeError,
    },
    /// The dataset declares more values than this machine can allocate.
    #[error(
        "{path}:{dataset}: declares shape {shape:?}, more values than this machine can hold; read a smaller dataset"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// The shape it declares.
        shape: Vec<u64>,
    },
    /// The dataset declares more bytes than the file could hold, even compressed.
    #[error(
        "{path}:{dataset}: declares shape {shape:?} ({declared_bytes} bytes), more than a file of {file_bytes} bytes can hold{compressed}; the file is damaged or truncated",
        compressed = if *filtered { " at deflate's best ratio" } else { "" }
    )]
    LargerThanFile {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// The shape it declares.
        shape: Vec<u64>,
        /// The bytes that shape takes at the dataset's element size.
        declared_bytes: u64,
        /// The file's length.
        file_bytes: u64,
        /// Whether the dataset is filtered (compressed), which allows [`MAX_DEFLATE_RATIO`].
        filtered: bool,
    },
    /// The dataset's storage (or one of its chunks) lies beyond the end of the file.
    #[error(
        "{path}:{dataset}: stored bytes {address}..{address}+{size} lie beyond the file's {file_bytes} bytes; the file is damaged or truncated"
    )]
    OutsideFile {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// Where the stored run starts.
        address: u64,
        /// Its length in bytes.
        size: u64,
        /// The file's length.
        file_bytes: u64,
    },
    /// A chunk of the dataset claims a position outside the shape the dataset declares.
    #[error(
        "{path}:{dataset}: a chunk claims position {offset:?}, outside the declared shape {shape:?}; the file is damaged"
    )]
    ChunkOutsideShape {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// The chunk's first element, one coordinate per dimension.
        offset: Vec<u64>,
        /// The shape the dataset declares.
        shape: Vec<u64>,
    },
    /// The dataset's chunks declare more raw bytes than the file could hold, even compressed.
    #[error(
        "{path}:{dataset}: {chunks} chunk(s) of shape {chunk_shape:?} declare more bytes than a file of {file_bytes} bytes can hold{compressed}; the file is damaged",
        compressed = if *filtered { " at deflate's best ratio" } else { "" }
    )]
    ChunksLargerThanFile {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// The chunk shape the dataset declares.
        chunk_shape: Vec<u64>,
        /// Chunks counted: those the index lists, or 1 where it cannot list them.
        chunks: u64,
        /// The file's length.
        file_bytes: u64,
        /// Whether the dataset is filtered (compressed), which allows [`MAX_DEFLATE_RATIO`].
        filtered: bool,
    },
    /// The dataset's storage was never written, so it holds no measured values.
    #[error(
        "{path}:{dataset}: storage was never written (it would read as its fill value); write the data, or name another dataset"
    )]
    NoData {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
    },
    /// The dataset's element type is not one of the supported ones.
    #[error(
        "{path}:{dataset}: element type {found} is not supported; expected f32, f64, i16, u16 or u8"
    )]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The dataset inside it.
        dataset: String,
        /// The element type found.
        found: String,
    },
    /// The file has no dataset of that name.
    #[error(
        "{path}: no dataset {dataset:?}; the file holds [{available}] (name one as {path}:/group/dataset)"
    )]
    MissingDataset {
        /// The file.
        path: PathBuf,
        /// The dataset asked for.
        dataset: String,
        /// The datasets the file holds, comma-separated.
        available: String,
    },
}

/// Reads dataset `dataset` of the HDF5 file at `path` as `f32` (`f64` rounds to the nearest
/// `f32`; `i16`, `u16` and `u8` convert exactly).
///
/// # Errors
/// [`Hdf5Error`] naming the file and dataset: missing file, not HDF5, no such dataset (the
/// error lists the datasets the file holds), more values than memory, or an unsupported
/// element type.
pub fn read_f32(path: &Path, dataset: &str) -> Result<ArrayD<f32>, Hdf5Error> {
    if !path.exists() {
        return Err(Hdf5Error::Io {
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let file_bytes = std::fs::metadata(path)
        .map_err(|source| Hdf5Error::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    let file = File::open(path).map_err(read_error(path, dataset))?;
    read_dataset(&file, file_bytes, path, dataset)
}

/// As [`read_f32`], from the bytes of an HDF5 file; `path` names it in errors.
///
/// # Errors
/// As [`read_f32`].
pub fn read_f32_from_bytes(
    bytes: Vec<u8>,
    path: &Path,
    dataset: &str,
) -> Result<ArrayD<f32>, Hdf5Error> {
    let file_bytes = bytes.len() as u64;
    let file = File::from_bytes(bytes).map_err(read_error(path, dataset))?;
    read_dataset(&file, file_bytes, path, dataset)
}

/// What the HDF5 reader said about `dataset` of `path`, as an [`Hdf5Error::Read`].
fn read_error(path: &Path, dataset: &str) -> impl Fn(hdf5_pure::Error) -> Hdf5Error {
    move |source| Hdf5Error::Read {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        source,
    }
}

fn read_dataset(
    file: &File,
    file_bytes: u64,
    path: &Path,
    dataset: &str,
) -> Result<ArrayD<f32>, Hdf5Error> {
    let read_error = read_error(path, dataset);
    let Ok(handle) = file.dataset(dataset) else {
        return Err(Hdf5Error::MissingDataset {
            path: path.to_owned(),
            dataset: dataset.to_owned(),
            available: dataset_paths(file).join(", "),
        });
    };
    let dtype = handle.dtype().map_err(&read_error)?;
    let element_bytes: u64 = match dtype {
        DType::F64 => 8,
        DType::F32 => 4,
        DType::I16 | DType::U16 => 2,
        DType::U8 => 1,
        other => {
            return Err(Hdf5Error::Dtype {
                path: path.to_owned(),
                dataset: dataset.to_owned(),
                found: other.to_string(),
            });
        }
    };
    let declared = handle.shape().map_err(&read_error)?;
    let too_large = || Hdf5Error::TooLarge {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        shape: declared.clone(),
    };
    let shape: Vec<usize> = declared
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_large()))
        .collect::<Result<_, _>>()?;
    // The reader allocates what the header declares before reading, up to 8 bytes a value.
    // The file's own length bounds that first, without allocating: probing the allocator
    // with a damaged header's gigabytes is itself an allocation that big.
    let Some(values) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(too_large());
    };
    let declared_bytes = (values as u64).saturating_mul(element_bytes);
    let filtered = !handle.filters().is_empty();
    let ratio = if filtered { MAX_DEFLATE_RATIO } else { 1 };
    if declared_bytes > file_bytes.saturating_mul(ratio) {
        return Err(Hdf5Error::LargerThanFile {
            path: path.to_owned(),
            dataset: dataset.to_owned(),
            shape: declared,
            declared_bytes,
            file_bytes,
            filtered,
        });
    }
    if !can_allocate::<f64>(values) {
        return Err(too_large());
    }
    // An empty dataset has nothing to read; the reader would still place its chunks, at
    // positions an empty shape cannot bound (one overflowed, in fuzzing).
    let values: Vec<f32> = if values == 0 {
        Vec::new()
    } else {
        check_storage(&handle, &declared, element_bytes, file_bytes, ratio).map_err(|problem| {
            match problem {
                StorageProblem::Reader(source) => read_error(source),
                StorageProblem::NotWritten => Hdf5Error::NoData {
                    path: path.to_owned(),
                    dataset: dataset.to_owned(),
                },
                StorageProblem::OutsideFile { address, size } => Hdf5Error::OutsideFile {
                    path: path.to_owned(),
                    dataset: dataset.to_owned(),
                    address,
                    size,
                    file_bytes,
                },
                StorageProblem::ChunkOutsideShape { offset } => Hdf5Error::ChunkOutsideShape {
                    path: path.to_owned(),
                    dataset: dataset.to_owned(),
                    offset,
                    shape: declared.clone(),
                },
                StorageProblem::ChunksLargerThanFile {
                    chunk_shape,
                    chunks,
                } => Hdf5Error::ChunksLargerThanFile {
                    path: path.to_owned(),
                    dataset: dataset.to_owned(),
                    chunk_shape,
                    chunks,
                    file_bytes,
                    filtered,
                },
            }
        })?;
        match dtype {
            DType::F64 => to_f32(handle.read_f64().map_err(&read_error)?, |v| v as f32),
            DType::F32 => handle.read_f32().map_err(&read_error)?,
            DType::I16 => to_f32(handle.read_i16().map_err(&read_error)?, f32::from),
            DType::U16 => to_f32(handle.read_u16().map_err(&read_error)?, f32::from),
            _ => to_f32(handle.read_u8().map_err(&read_error)?, f32::from),
        }
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|source| Hdf5Error::Layout {
        path: path.to_owned(),
        dataset: dataset.to_owned(),
        source,
    })
}

/// What [`check_storage`] found wrong with a dataset's storage.
enum StorageProblem {
    /// The reader could not parse the layout or the chunk index.
    Reader(hdf5_pure::Error),
    /// No storage was ever written.
    NotWritten,
    /// A run of stored bytes lies (partly) beyond the end of the file.
    OutsideFile { address: u64, size: u64 },
    /// A chunk's first element lies outside the declared shape.
    ChunkOutsideShape { offset: Vec<u64> },
    /// The chunks' raw bytes exceed what the file can hold.
    ChunksLargerThanFile { chunk_shape: Vec<u64>, chunks: u64 },
}

/// Checks, from the layout and the chunk index alone, that the dataset has storage, that
/// every stored run lies inside the file and that every chunk starts inside the dataset's
/// `shape`. The reader allocates a run's declared size before it finds the file too short (a
/// damaged chunk record claiming 2.9 GB, in fuzzing), reads a dataset that was never written
/// as its fill value, and adds a chunk's position to coordinates inside it unchecked (a
/// chunk claiming position 2^64 − 1 overflowed, in fuzzing).
fn check_storage(
    handle: &hdf5_pure::Dataset,
    shape: &[u64],
    element_bytes: u64,
    file_bytes: u64,
    ratio: u64,
) -> Result<(), StorageProblem> {
    let inside = |address: u64, size: u64| {
        if address
            .checked_add(size)
            .is_some_and(|end| end <= file_bytes)
        {
            Ok(())
        } else {
            Err(StorageProblem::OutsideFile { address, size })
        }
    };
    match handle.layout().map_err(StorageProblem::Reader)? {
        Layout::Contiguous { address: None, .. } => Err(StorageProblem::NotWritten),
        Layout::Contiguous {
            address: Some(address),
            size,
        } => inside(address, size),
        Layout::Chunked { chunk_shape, index } => {
            // The reader walks every row of every chunk, inside the dataset or not, so
            // declared chunks far larger than the file cost minutes (a 3688-byte file took
            // 93 s, in fuzzing). Stored whole, or compressed at most `ratio` times, all the
            // chunks' raw bytes fit in `ratio` times the file.
            let chunk_bytes = chunk_shape
                .iter()
                .try_fold(element_bytes, |bytes, &d| bytes.checked_mul(d));
            let fits = |chunks: u64| {
                chunk_bytes
                    .and_then(|bytes| bytes.checked_mul(chunks))
                    .is_some_and(|total| total <= file_bytes.saturating_mul(ratio))
            };
            let too_large = |chunks: u64| StorageProblem::ChunksLargerThanFile {
                chunk_shape: chunk_shape.clone(),
                chunks,
            };
            // A B-tree v2 index has no chunk enumerator in this reader, so only one chunk's
            // size can be checked before reading; libhdf5 writes it only for datasets
            // extensible in two or more dimensions.
            if index == ChunkIndex::BTreeV2 {
                return if fits(1) { Ok(()) } else { Err(too_large(1)) };
            }
            let chunks = handle.chunks().map_err(StorageProblem::Reader)?;
            if chunks.is_empty() {
                return Err(StorageProblem::NotWritten);
            }
            let listed = chunks.len() as u64;
            if !fits(listed) {
                return Err(too_large(listed));
            }
            chunks.iter().try_for_each(|chunk| {
                let placed = chunk.offset.len() == shape.len()
                    && chunk
                        .offset
                        .iter()
                        .zip(shape)
                        .all(|(start, end)| start < end);
                if !placed {
                    return Err(StorageProblem::ChunkOutsideShape {
                        offset: chunk.offset.clone(),
                    });
                }
                inside(chunk.address, chunk.storage_size)
            })
        }
        _ => Ok(()),
    }
}

/// Whether the allocator grants `count` values of `T`, asked once and released at once
/// (`try_reserve` refuses where an infallible allocation would abort the process).
pub fn can_allocate<T>(count: usize) -> bool {
    Vec::<T>::new().try_reserve_exact(count).is_ok()
}

fn to_f32<T: Copy>(values: Vec<T>, convert: impl Fn(T) -> f32) -> Vec<f32> {
    values.into_iter().map(convert).collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn reads_chunked_compressed_datasets_written_by_libhdf5() {
        // `tests/data/make_facility_h5.py`: counts = arange(6·2·8) · 7 as chunked, gzip u16.
        let counts = read_f32(&fixture("facility.h5"), "/entry/data/spectra").unwrap();
        assert_eq!(counts.shape(), &[6, 2, 8]);
        assert_eq!(counts[[1, 1, 0]], 168.0);
        let calibrated = read_f32(&fixture("facility.h5"), "entry/data/calibrated").unwrap();
        // The same values as float, halved, stored shuffled (its shape is events × samples).
        assert_eq!(calibrated.len(), counts.len());
        assert!(calibrated.iter().zip(&counts).all(|(c, v)| *c == v * 0.5));
    }

    #[test]
    fn bad_datasets_name_the_file_and_what_is_there() {
        let err = read_f32(&fixture("facility.h5"), "/entry/data/missing").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Hdf5Error::MissingDataset { .. })
                && text.contains("facility.h5")
                && text.contains("/entry/data/spectra"),
            "{text}"
        );
        let err = read_f32(&fixture("facility.h5"), "/entry/data/labels").unwrap_err();
        assert!(matches!(err, Hdf5Error::Dtype { .. }), "{err}");
        let err = read_f32(&fixture("gone.h5"), "/x").unwrap_err();
        assert!(matches!(err, Hdf5Error::Io { .. }), "{err}");
    }

    #[test]
    fn a_file_whose_links_form_a_cycle_lists_its_datasets_and_ends() {
        let err = read_f32(&fixture("cycle.h5"), "/entry/missing").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Hdf5Error::MissingDataset { .. })
                && text.contains("/entry/data,")
                && text.contains(", ...]"),
            "{text}"
        );
        assert_eq!(
            read_f32(&fixture("cycle.h5"), "/entry/loop/loop/data")
                .unwrap()
                .len(),
            12
        );
    }

    #[test]
    fn a_dataset_declaring_more_than_memory_is_refused_not_allocated() {
        // 2^40 × 2^40 values: more than a 64-bit count holds.
        let err = read_f32(&fixture("huge.h5"), "/overflow").unwrap_err();
        assert!(
            matches!(err, Hdf5Error::TooLarge { .. }) && err.to_string().contains("huge.h5"),
            "{err}"
        );
        // 2^40 values (4 TiB) declared in a file of a few kB.
        let err = read_f32(&fixture("huge.h5"), "/huge").unwrap_err();
        assert!(matches!(err, Hdf5Error::LargerThanFile { .. }), "{err}");
    }

    #[test]
    fn a_dataset_declaring_more_than_its_file_holds_is_refused_before_allocation() {
        // The first 4096 bytes of a 200 × 50 f32 dataset (40,000 bytes, contiguous).
        let err = read_f32(&fixture("truncated.h5"), "/spectra").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                Hdf5Error::LargerThanFile {
                    declared_bytes: 40_000,
                    file_bytes: 4096,
                    filtered: false,
                    ..
                }
            ) && text.contains("truncated.h5"),
            "{text}"
        );
        // The same bytes from memory take the same path.
        let bytes = std::fs::read(fixture("truncated.h5")).unwrap();
        let err = read_f32_from_bytes(bytes, Path::new("mem.h5"), "/spectra").unwrap_err();
        assert!(matches!(err, Hdf5Error::LargerThanFile { .. }), "{err}");
        // Found by the `hdf5` fuzz target: facility.h5 cut to 5789 bytes, its chunk records
        // pointing past the end, one claiming 2.9 GB (which the reader allocated before
        // finding the file too short).
        let err = read_f32(&fixture("fuzzed_chunk.h5"), "/entry/data/spectra").unwrap_err();
        assert!(
            matches!(
                err,
                Hdf5Error::OutsideFile {
                    file_bytes: 5789,
                    ..
                }
            ),
            "{err}"
        );
        // Found by the `hdf5` fuzz target: a 6895-byte mutation of facility.h5 whose
        // spectra (now u16) have a chunk at position 2^64 − 1, which overflowed the
        // reader's coordinate arithmetic.
        let err = read_f32(&fixture("fuzzed_offset.h5"), "/entry/data/spectra").unwrap_err();
        assert!(
            matches!(&err, Hdf5Error::ChunkOutsideShape { offset, .. } if offset.contains(&u64::MAX)),
            "{err}"
        );
        // Found by the `hdf5` fuzz target: a 3688-byte mutation of facility.h5 whose three
        // chunks declare shape [2, 2^27, 2]; the reader walked every row of each (93 s).
        let err = read_f32(&fixture("fuzzed_slow.h5"), "/entry/data/spectra").unwrap_err();
        assert!(
            matches!(
                err,
                Hdf5Error::ChunksLargerThanFile {
                    chunks: 3,
                    file_bytes: 3688,
                    filtered: false,
                    ..
                }
            ),
            "{err}"
        );
        // Found by the `hdf5` fuzz target: a mutation of facility.h5 whose spectra declare a
        // zero dimension beside others too large for an index, with a chunk at position
        // 2^64 − 1 that the reader placed anyway (an overflow). Empty datasets are no longer
        // read; this one's shape is refused.
        let err = read_f32(&fixture("fuzzed_empty.h5"), "/entry/data/spectra").unwrap_err();
        assert!(matches!(err, Hdf5Error::Layout { .. }), "{err}");
        // Found by the `hdf5` fuzz target: 163 bytes whose header declares 780 M values and
        // whose element type is damaged. It once made the allocator probe ask for 6.2 GB.
        let err = read_f32(&fixture("fuzzed_huge.h5"), "/huge").unwrap_err();
        assert!(matches!(err, Hdf5Error::Read { .. }), "{err}");
    }

    #[test]
    fn a_dataset_never_written_is_refused_not_read_as_fill_values() {
        for dataset in ["/contiguous", "/chunked"] {
            let err = read_f32(&fixture("unwritten.h5"), dataset).unwrap_err();
            assert!(
                matches!(err, Hdf5Error::NoData { .. }) && err.to_string().contains(dataset),
                "{err}"
            );
        }
    }
}
