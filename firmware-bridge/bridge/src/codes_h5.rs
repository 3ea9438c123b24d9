//! Codes in HDF5, for Python and the facility's tools: one growing, chunked dataset per run.
//!
//! The file holds one dataset, `/codes`: rank 1, chunked ([`CHUNK_RECORDS`] records a
//! chunk), unlimited, one compound record per event:
//!
//! | field | type | |
//! |---|---|---|
//! | `event` | u64 | event id |
//! | `stream` | u16 | stream id (one per front-end) |
//! | `code` | u8 × width | the code, laid out as in the runtime's code contract (bit `i` in byte `i / 8`, LSB first) |
//!
//! h5py reads it as a numpy structured array: `f["codes"]["code"]` is `[N, width]` uint8,
//! and `np.unpackbits(codes, axis=1, bitorder="little")` gives the bits. Attributes on
//! `/codes` say where the codes come from: `model_id` (16 hex digits), `code_bits`,
//! `latentlink_version`, `source` (the link or archive), `created_unix` (seconds).
//!
//! Records are appended in place ([`CodesH5Writer::flush`], about once a second while
//! listening, and at the end), each append durable and crash-atomic (hdf5-pure's in-place
//! append): a crash leaves a shorter, valid file. An existing file is refused, never
//! overwritten or appended to: one file per run.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hdf5_pure::{AttrValue, CompoundTypeBuilder, Datatype, File, FileBuilder, MaxExtent};
use ndarray::Array2;

/// Records per chunk of `/codes`.
pub const CHUNK_RECORDS: u64 = 4096;
/// The dataset.
pub const DATASET: &str = "codes";
/// Bytes of a record before its code.
const HEADER_BYTES: usize = 10;

/// Why codes could not be written to or read from HDF5.
#[derive(Debug, thiserror::Error)]
#[error("codes HDF5 file {path}: {failure}")]
pub struct CodesH5Error {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub failure: CodesH5Failure,
}

/// What went wrong, the cause of a [`CodesH5Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodesH5Failure {
    /// The file exists: each run writes its own.
    #[error("exists already; give a new file name (each run writes its own file)")]
    Exists,
    /// The HDF5 library refused.
    #[error(transparent)]
    Hdf5(#[from] hdf5_pure::Error),
    /// The record layout could not be built.
    #[error(transparent)]
    Format(#[from] hdf5_pure::FormatError),
    /// Codes of another width than the file's were given.
    #[error("codes of {found} bytes given to a file of {expected}-byte codes")]
    Width {
        /// The file's code width.
        expected: usize,
        /// The width given.
        found: usize,
    },
    /// The file's `/codes` records are not this module's layout.
    #[error("/codes holds {bytes} bytes of records, not whole records of {record} bytes")]
    Layout {
        /// Bytes read.
        bytes: usize,
        /// The record size.
        record: usize,
    },
}

/// Where the codes of a file come from, written as attributes of `/codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The model id, 16 hex digits.
    pub model_id: String,
    /// Code bits.
    pub code_bits: u32,
    /// Bytes per code.
    pub code_bytes: usize,
    /// The link or archive the codes came from.
    pub source: String,
}

/// Appends codes to a new HDF5 file.
#[derive(Debug)]
pub struct CodesH5Writer {
    path: PathBuf,
    width: usize,
    pending: Vec<u8>,
    records: u64,
}

impl CodesH5Writer {
    /// Creates the file with an empty `/codes` and its provenance.
    ///
    /// # Errors
    /// [`CodesH5Failure::Exists`] if the file exists; the library's error otherwise.
    pub fn create(path: &Path, provenance: &Provenance) -> Result<Self, CodesH5Error> {
        let fail = |failure: CodesH5Failure| CodesH5Error {
            path: path.to_owned(),
            failure,
        };
        if path.exists() {
            return Err(fail(CodesH5Failure::Exists));
        }
        let width = provenance.code_bytes;
        let mut builder = FileBuilder::new();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        builder
            .create_dataset(DATASET)
            .with_dtype(record_type(width).map_err(|e| fail(e.into()))?)
            .with_shape(&[0])
            .with_maxshape(&[MaxExtent::Unlimited])
            .with_chunks(&[CHUNK_RECORDS])
            .set_attr("model_id", AttrValue::String(provenance.model_id.clone()))
            .set_attr("code_bits", AttrValue::U32(provenance.code_bits))
            .set_attr(
                "latentlink_version",
                AttrValue::String(env!("CARGO_PKG_VERSION").into()),
            )
            .set_attr("source", AttrValue::String(provenance.source.clone()))
            .set_attr("created_unix", AttrValue::U64(created));
        builder.write(path).map_err(|e| fail(e.into()))?;
        Ok(Self {
            path: path.to_owned(),
            width,
            pending: Vec::new(),
            records: 0,
        })
    }

    /// Queues the codes of consecutive events of a stream, from `first_event` on; they reach
    /// the file at the next [`CodesH5Writer::flush`].
    ///
    /// # Errors
    /// [`CodesH5Failure::Width`] if `codes` is not a whole number of codes.
    pub fn append(
        &mut self,
        stream: u16,
        first_event: u64,
        codes: &[u8],
    ) -> Result<(), CodesH5Error> {
        if self.width == 0 || !codes.len().is_multiple_of(self.width) {
            return Err(self.fail(CodesH5Failure::Width {
                expected: self.width,
                found: codes.len(),
            }));
        }
        for (i, code) in codes.chunks_exact(self.width).enumerate() {
            self.pending
                .extend_from_slice(&(first_event + i as u64).to_le_bytes());
            self.pending.extend_from_slice(&stream.to_le_bytes());
            self.pending.extend_from_slice(code);
        }
        Ok(())
    }

    /// Appends the queued records to `/codes`, durably.
    ///
    /// # Errors
    /// The library's error; the records stay queued.
    pub fn flush(&mut self) -> Result<(), CodesH5Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = File::open_rw(&self.path).map_err(|e| self.fail(e.into()))?;
        let mut dataset = file.dataset(DATASET).map_err(|e| self.fail(e.into()))?;
        dataset
            .append_raw(&self.pending)
            .map_err(|e| self.fail(e.into()))?;
        file.close().map_err(|e| self.fail(e.into()))?;
        self.records += (self.pending.len() / (HEADER_BYTES + self.width)) as u64;
        self.pending.clear();
        Ok(())
    }

    /// Records in the file (flushed).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records queued for the next flush.
    pub fn pending_records(&self) -> usize {
        self.pending.len() / (HEADER_BYTES + self.width)
    }

    fn fail(&self, failure: CodesH5Failure) -> CodesH5Error {
        CodesH5Error {
            path: self.path.clone(),
            failure,
        }
    }
}

/// The compound record: `event` u64, `stream` u16, `code` u8 × `width`, packed.
fn record_type(width: usize) -> Result<Datatype, hdf5_pure::FormatError> {
    let code = Datatype::Array {
        base_type: Box::new(hdf5_pure::make_u8_type()),
        dimensions: vec![width as u32],
    };
    CompoundTypeBuilder::with_size((HEADER_BYTES + width) as u32)
        .u64_field("event", 0)
        .u16_field("stream", 8)
        .field("code", HEADER_BYTES as u64, code)
        .build()
}

/// The records of a codes file: stream ids, event ids, and the codes `[N, width]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodesH5 {
    /// Stream id of each event.
    pub streams: Vec<u16>,
    /// Event ids.
    pub events: Vec<u64>,
    /// The codes, one row per event.
    pub codes: Array2<u8>,
    /// The `model_id` attribute.
    pub model_id: String,
}

/// Reads a codes file back.
///
/// # Errors
/// The library's error, or [`CodesH5Failure::Layout`] for records of another size.
pub fn read(path: &Path) -> Result<CodesH5, CodesH5Error> {
    let fail = |failure: CodesH5Failure| CodesH5Error {
        path: path.to_owned(),
        failure,
    };
    let file = File::open(path).map_err(|e| fail(e.into()))?;
    let dataset = file.dataset(DATASET).map_err(|e| fail(e.into()))?;
    let attrs = dataset.attrs().map_err(|e| fail(e.into()))?;
    let model_id = match attrs.get("model_id") {
        Some(AttrValue::String(id)) => id.clone(),
        _ => String::new(),
    };
    let code_bits = match attrs.get("code_bits") {
        Some(AttrValue::U32(bits)) => *bits as usize,
        _ => 0,
    };
    let width = code_bits.div_ceil(8);
    let record = HEADER_BYTES + width;
    let bytes = dataset.read_raw().map_err(|e| fail(e.into()))?;
    if width == 0 || !bytes.len().is_multiple_of(record) {
        return Err(fail(CodesH5Failure::Layout {
            bytes: bytes.len(),
            record,
        }));
    }
    let n = bytes.len() / record;
    let (mut streams, mut events, mut codes) = (Vec::new(), Vec::new(), Vec::new());
    for r in bytes.chunks_exact(record) {
        let (event, rest) = r.split_at(8);
        let (stream, code) = rest.split_at(2);
        events.push(u64::from_le_bytes(event.try_into().unwrap_or_default()));
        streams.push(u16::from_le_bytes(stream.try_into().unwrap_or_default()));
        codes.extend_from_slice(code);
    }
    let codes = Array2::from_shape_vec((n, width), codes).map_err(|_| {
        fail(CodesH5Failure::Layout {
            bytes: bytes.len(),
            record,
        })
    })?;
    Ok(CodesH5 {
        streams,
        events,
        codes,
        model_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            model_id: "02047e225cc06d67".into(),
            code_bits: 20,
            code_bytes: 3,
            source: "tcp-listen:127.0.0.1:7000".into(),
        }
    }

    #[test]
    fn codes_grow_in_place_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.h5");
        let mut writer = CodesH5Writer::create(&path, &provenance()).unwrap();
        writer.append(1, 10, &[1, 2, 3, 4, 5, 6]).unwrap();
        writer.flush().unwrap();
        // More than a chunk in one flush, from another stream.
        let many: Vec<u8> = (0..5000 * 3).map(|i| i as u8).collect();
        writer.append(2, 1 << 40, &many).unwrap();
        writer.flush().unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.records(), 5002);
        let back = read(&path).unwrap();
        assert_eq!(back.model_id, "02047e225cc06d67");
        assert_eq!(back.events[..3], [10, 11, 1 << 40]);
        assert_eq!(back.streams[..3], [1, 1, 2]);
        assert_eq!(back.codes.row(1).to_vec(), [4, 5, 6]);
        assert_eq!(back.codes.row(5001).to_vec(), many[4999 * 3..]);
        assert_eq!(back.events[5001], (1 << 40) + 4999);
    }

    #[test]
    fn an_existing_file_and_a_wrong_width_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.h5");
        let mut writer = CodesH5Writer::create(&path, &provenance()).unwrap();
        let error = CodesH5Writer::create(&path, &provenance()).unwrap_err();
        assert!(matches!(error.failure, CodesH5Failure::Exists), "{error}");
        assert!(error.to_string().contains("run.h5"), "{error}");
        let error = writer.append(1, 0, &[1, 2]).unwrap_err();
        assert!(
            matches!(error.failure, CodesH5Failure::Width { .. }),
            "{error}"
        );
    }
}
