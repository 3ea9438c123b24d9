//! Reconstructions to disk in chunks, each with the ids of its events.
//!
//! As `.npy`, chunk `k` is `reconstructions-k.npy` (`[n, channels · length]` f32, detector
//! units) and `events-k.npy` (`[n, 2]` u64: stream id, event id); as HDF5 it is
//! `chunk-k.h5` holding the datasets `/reconstructions` and `/events` with the same
//! contents; `k` is zero-padded to 6 digits. A chunk is written when it holds `chunk_events`
//! events, and at [`ReconstructionSink::close`]. Chunks are written to a temporary name and
//! renamed, so a reader never sees half a chunk. A folder that already holds chunks is
//! refused: a second run would restart the numbering at 0 and overwrite the first.

use std::path::{Path, PathBuf};

use hdf5_pure::FileBuilder;
use ndarray::{Array2, Axis, Ix2, concatenate};
use ndarray_npy::write_npy;

/// File format of the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkFormat {
    /// `reconstructions-k.npy` and `events-k.npy`.
    #[default]
    Npy,
    /// `chunk-k.h5` with `/reconstructions` and `/events`.
    Hdf5,
}

impl std::str::FromStr for ChunkFormat {
    type Err = latentlink_model::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [("npy", Self::Npy), ("hdf5", Self::Hdf5)];
        latentlink_model::vae::UnknownName::pick("chunk format", name, &choices)
    }
}

/// Why reconstructions could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[error("reconstructions at {path}: {source}")]
pub struct SinkError {
    /// The file or folder.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: SinkFailure,
}

/// What went wrong with a chunk, the cause of a [`SinkError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkFailure {
    /// The file system refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An `.npy` chunk could not be written.
    #[error(transparent)]
    WriteNpy(#[from] ndarray_npy::WriteNpyError),
    /// An `.npy` chunk could not be read.
    #[error(transparent)]
    ReadNpy(#[from] ndarray_npy::ReadNpyError),
    /// An HDF5 chunk could not be written or read.
    #[error(transparent)]
    Hdf5(#[from] hdf5_pure::Error),
    /// An HDF5 dataset's values do not fill its declared shape.
    #[error(transparent)]
    Layout(#[from] ndarray::ShapeError),
    /// An HDF5 dataset is not 2-D.
    #[error("dataset {dataset} has shape {shape:?}, not 2-D")]
    NotTwoD {
        /// The dataset.
        dataset: &'static str,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// Reconstructions of different widths were pushed into one chunk.
    #[error("reconstructions of different widths in one chunk")]
    MixedWidths,
    /// The folder holds no chunks.
    #[error("no reconstruction chunks")]
    NoChunks,
    /// The folder holds chunks of an earlier run, which a new run would overwrite.
    #[error(
        "holds reconstruction chunks of an earlier run (e.g. {example}); give a new folder or remove them"
    )]
    Occupied {
        /// One of the chunk files found.
        example: String,
    },
}

/// Attaches `path` to a failure.
fn at(path: &Path) -> impl Fn(SinkFailure) -> SinkError + '_ {
    move |source| SinkError {
        path: path.to_owned(),
        source,
    }
}

/// Writes reconstructions in `.npy` chunks.
#[derive(Debug)]
pub struct ReconstructionSink {
    dir: PathBuf,
    chunk_events: usize,
    format: ChunkFormat,
    next_chunk: usize,
    pending: Vec<Array2<f32>>,
    pending_ids: Vec<[u64; 2]>,
    written: u64,
}

impl ReconstructionSink {
    /// Writes into `dir` (created if needed), `chunk_events` events per chunk.
    ///
    /// # Errors
    /// [`SinkError`] if the folder cannot be created or holds chunks already.
    pub fn new(dir: &Path, chunk_events: usize, format: ChunkFormat) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| at(dir)(e.into()))?;
        let entries = std::fs::read_dir(dir).map_err(|e| at(dir)(e.into()))?;
        for entry in entries {
            let name = entry.map_err(|e| at(dir)(e.into()))?.file_name();
            let name = name.to_string_lossy();
            let is_chunk = ["reconstructions-", "events-", "chunk-"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if is_chunk {
                return Err(at(dir)(SinkFailure::Occupied {
                    example: name.into_owned(),
                }));
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            chunk_events: chunk_events.max(1),
            format,
            next_chunk: 0,
            pending: Vec::new(),
            pending_ids: Vec::new(),
            written: 0,
        })
    }

    /// Adds reconstructions with their `(stream, event)` ids.
    ///
    /// # Errors
    /// [`SinkError`] if a full chunk cannot be written.
    pub fn push(
        &mut self,
        reconstructions: Array2<f32>,
        ids: &[[u64; 2]],
    ) -> Result<(), SinkError> {
        self.pending.push(reconstructions);
        self.pending_ids.extend_from_slice(ids);
        if self.pending_ids.len() >= self.chunk_events {
            self.flush()?;
        }
        Ok(())
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.pending_ids.is_empty() {
            return Ok(());
        }
        let data = join(&self.pending).ok_or_else(|| at(&self.dir)(SinkFailure::MixedWidths))?;
        let ids =
            Array2::from_shape_fn((self.pending_ids.len(), 2), |(i, j)| self.pending_ids[i][j]);
        let chunk = self.next_chunk;
        match self.format {
            ChunkFormat::Npy => {
                write_atomically(
                    &self.dir.join(format!("reconstructions-{chunk:06}.npy")),
                    &data,
                )?;
                write_atomically(&self.dir.join(format!("events-{chunk:06}.npy")), &ids)?;
            }
            ChunkFormat::Hdf5 => {
                write_hdf5(&self.dir.join(format!("chunk-{chunk:06}.h5")), &data, &ids)?
            }
        }
        self.written += ids.nrows() as u64;
        self.next_chunk += 1;
        self.pending.clear();
        self.pending_ids.clear();
        Ok(())
    }

    /// Writes what is pending as a last chunk.
    ///
    /// # Errors
    /// [`SinkError`] if it cannot be written.
    pub fn close(mut self) -> Result<u64, SinkError> {
        self.flush()?;
        Ok(self.written)
    }
}

fn write_atomically<T: ndarray_npy::WritableElement>(
    path: &Path,
    array: &Array2<T>,
) -> Result<(), SinkError> {
    let partial = path.with_extension("npy.partial");
    write_npy(&partial, array).map_err(|e| at(path)(e.into()))?;
    std::fs::rename(&partial, path).map_err(|e| at(path)(e.into()))
}

fn write_hdf5(path: &Path, data: &Array2<f32>, ids: &Array2<u64>) -> Result<(), SinkError> {
    let shape = |a: (usize, usize)| [a.0 as u64, a.1 as u64];
    let mut builder = FileBuilder::new();
    builder
        .create_dataset("reconstructions")
        .with_f32_data(&data.iter().copied().collect::<Vec<_>>())
        .with_shape(&shape(data.dim()));
    builder
        .create_dataset("events")
        .with_u64_data(&ids.iter().copied().collect::<Vec<_>>())
        .with_shape(&shape(ids.dim()));
    let partial = path.with_extension("h5.partial");
    builder.write(&partial).map_err(|e| at(path)(e.into()))?;
    std::fs::rename(&partial, path).map_err(|e| at(path)(e.into()))
}

fn read_hdf5(path: &Path) -> Result<(Array2<f32>, Array2<u64>), SinkError> {
    read_hdf5_datasets(path).map_err(at(path))
}

fn read_hdf5_datasets(path: &Path) -> Result<(Array2<f32>, Array2<u64>), SinkFailure> {
    let file = hdf5_pure::File::open(path)?;
    let read = |name: &'static str| {
        let dataset = file.dataset(name)?;
        let shape = dataset.shape()?;
        let dims = match shape[..] {
            [rows, cols] => (rows as usize, cols as usize),
            _ => {
                return Err(SinkFailure::NotTwoD {
                    dataset: name,
                    shape,
                });
            }
        };
        Ok((dataset, dims))
    };
    let (reconstructions, dims) = read("reconstructions")?;
    let data = Array2::from_shape_vec(dims, reconstructions.read_f32()?)?;
    let (events, dims) = read("events")?;
    let ids = Array2::from_shape_vec(dims, events.read_u64()?)?;
    Ok((data, ids))
}

/// Reads every chunk in `dir` back, in order: reconstructions and their `(stream, event)` ids.
///
/// # Errors
/// [`SinkError`] if a chunk cannot be read.
pub fn read_chunks(dir: &Path) -> Result<(Array2<f32>, Array2<u64>), SinkError> {
    let mut data = Vec::new();
    let mut ids = Vec::new();
    for chunk in 0.. {
        let h5 = dir.join(format!("chunk-{chunk:06}.h5"));
        if h5.exists() {
            let (d, i) = read_hdf5(&h5)?;
            data.push(d);
            ids.push(i);
            continue;
        }
        let path = dir.join(format!("reconstructions-{chunk:06}.npy"));
        if !path.exists() {
            break;
        }
        data.push(
            latentlink_package::npy::read::<f32, Ix2>(&path).map_err(|e| at(&path)(e.into()))?,
        );
        let id_path = dir.join(format!("events-{chunk:06}.npy"));
        ids.push(
            latentlink_package::npy::read::<u64, Ix2>(&id_path)
                .map_err(|e| at(&id_path)(e.into()))?,
        );
    }
    let empty = || at(dir)(SinkFailure::NoChunks);
    Ok((
        join(&data).ok_or_else(empty)?,
        join(&ids).ok_or_else(empty)?,
    ))
}

/// Rows of every array, one after the other (none if empty or of different widths).
fn join<T: Clone>(arrays: &[Array2<T>]) -> Option<Array2<T>> {
    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
    concatenate(Axis(0), &views).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_in_both_formats() {
        for (format, second_chunk) in [
            (ChunkFormat::Npy, "reconstructions-000001.npy"),
            (ChunkFormat::Hdf5, "chunk-000001.h5"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = ReconstructionSink::new(dir.path(), 3, format).unwrap();
            for i in 0..4u64 {
                let rows = Array2::from_elem((2, 5), i as f32);
                sink.push(rows, &[[1, 2 * i], [1, 2 * i + 1]]).unwrap();
            }
            assert_eq!(sink.close().unwrap(), 8);
            let (data, ids) = read_chunks(dir.path()).unwrap();
            assert_eq!(data.dim(), (8, 5));
            assert_eq!(ids.column(1).to_vec(), (0..8).collect::<Vec<u64>>());
            assert_eq!(data[[7, 0]], 3.0);
            assert!(dir.path().join(second_chunk).exists());
            // A second run into the same folder would overwrite these chunks: refused.
            let err = ReconstructionSink::new(dir.path(), 3, format).unwrap_err();
            assert!(matches!(err.source, SinkFailure::Occupied { .. }), "{err}");
        }
    }
}
