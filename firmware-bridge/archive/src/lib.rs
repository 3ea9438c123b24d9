//! # latentlink archive
//!
//! The code archive: an append-only file of every decoded code, replayable later. A crate of
//! its own, with no machine-learning dependency, so that tools and fuzz targets
//! (`firmware-bridge/fuzz`) read archives without compiling a decoder; the bridge re-exports
//! it as `latentlink_bridge::archive`.
//!
//! # Format (version 1, little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `LLCA` |
//! | 4 | 1 | version, [`VERSION`] |
//! | 5 | 1 | code width in bytes |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 8 | model id of the codes |
//!
//! then fixed-size records, one per code:
//!
//! | size | field |
//! |---|---|
//! | 2 | stream id |
//! | 8 | event id |
//! | width | the code (the layout of `latentlink_runtime::code`) |
//! | 4 | CRC-32C of the record's bytes before it |
//!
//! Records of one frame are written with one `write` call and flushed to the OS, so a killed
//! process leaves every frame it finished writing; the writer also syncs to disk at most
//! [`SYNC_INTERVAL`] after a write, and holds an exclusive advisory lock so that two
//! listeners cannot append to (or cut) one archive.
//!
//! Records sit at fixed offsets, so one damaged record costs only itself: a reader skips a
//! record that fails its CRC, counts it as **corrupt**, and goes on with the next one. Only an
//! incomplete final record is a **torn tail** (the writer stopped mid-write); reopening an
//! archive for appending cuts that partial record and nothing else. Reading streams record by
//! record: memory does not grow with the archive.
//!
//! [`search`] works on an archive's codes without decoding them: nearest codes in Hamming
//! space and an anomaly score per event.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crc::{CRC_32_ISCSI, Crc};

pub mod search;

/// Archive format version.
pub const VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"LLCA";
const HEADER_LEN: usize = 16;
const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Longest a written record waits before the writer syncs it to disk.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Why an archive cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The archive.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Not an archive, or a version this bridge does not read.
    #[error(
        "{path}: not a latentlink code archive of version {VERSION} (header starts {found:02x?})"
    )]
    Format {
        /// The archive.
        path: PathBuf,
        /// Magic, version and code width found.
        found: [u8; 6],
    },
    /// Another process (a second listener) is appending to the archive.
    #[error("{path}: another process is writing this archive (it holds its lock)")]
    Locked {
        /// The archive.
        path: PathBuf,
    },
    /// Shorter than an archive header.
    #[error("{path}: not a latentlink code archive (shorter than its header)")]
    ShortHeader {
        /// The archive.
        path: PathBuf,
    },
    /// Appending codes of another model or width to an existing archive.
    #[error(
        "{path}: holds codes of model {archive_model:016x} ({archive_width} B); these are of model {model:016x} ({width} B); use a new archive file"
    )]
    Mismatch {
        /// The archive.
        path: PathBuf,
        /// Model id in the archive.
        archive_model: u64,
        /// Code width in the archive.
        archive_width: u8,
        /// Model id of the new codes.
        model: u64,
        /// Their code width.
        width: u8,
    },
}

/// One archived code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Stream id.
    pub stream: u16,
    /// Event id.
    pub event: u64,
    /// The code bytes.
    pub code: Vec<u8>,
}

fn record_len(width: u8) -> usize {
    2 + 8 + usize::from(width) + 4
}

fn header(model_id: u64, width: u8) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[5] = width;
    h[8..].copy_from_slice(&model_id.to_le_bytes());
    h
}

/// What a pass over an archive found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveScan {
    /// Intact records.
    pub records: u64,
    /// Whole records that failed their CRC (damaged on disk), skipped.
    pub corrupt: u64,
    /// Bytes of an incomplete final record (the writer stopped mid-write).
    pub torn_tail_bytes: u64,
}

/// Appends codes to an archive file.
#[derive(Debug)]
pub struct ArchiveWriter {
    file: File,
    path: PathBuf,
    width: u8,
    buffer: Vec<u8>,
    records: u64,
    corrupt: u64,
    unsynced_since: Option<Instant>,
}

impl ArchiveWriter {
    /// Opens `path` for appending codes of `model_id` and `width` bytes, creating it with its
    /// header if needed, and takes its lock. An incomplete final record left by a crash is
    /// cut off first; corrupt records elsewhere stay (and are counted, and logged).
    ///
    /// # Errors
    /// [`ArchiveError`] if the file cannot be opened, is locked by another writer, is not an
    /// archive, or holds codes of another model or width.
    pub fn open(path: &Path, model_id: u64, width: u8) -> Result<Self, ArchiveError> {
        let io_error = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        file.try_lock().map_err(|error| match error {
            TryLockError::WouldBlock => ArchiveError::Locked {
                path: path.to_owned(),
            },
            TryLockError::Error(source) => io_error(source),
        })?;
        let mut scan = ArchiveScan::default();
        if file.metadata().map_err(io_error)?.len() > 0 {
            let mut reader = ArchiveReader::open(path)?;
            if reader.model_id != model_id || reader.width != width {
                return Err(ArchiveError::Mismatch {
                    path: path.to_owned(),
                    archive_model: reader.model_id,
                    archive_width: reader.width,
                    model: model_id,
                    width,
                });
            }
            while reader.next_record()?.is_some() {}
            scan = reader.scan();
            if scan.torn_tail_bytes > 0 {
                let len = file.metadata().map_err(io_error)?.len();
                file.set_len(len - scan.torn_tail_bytes).map_err(io_error)?;
                tracing::warn!(
                    path = %path.display(),
                    bytes = scan.torn_tail_bytes,
                    "cut an incomplete final record"
                );
            }
            if scan.corrupt > 0 {
                tracing::warn!(
                    path = %path.display(),
                    corrupt = scan.corrupt,
                    "the archive holds records that fail their CRC; they are kept and skipped"
                );
            }
        } else {
            (&file)
                .write_all(&header(model_id, width))
                .map_err(io_error)?;
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            width,
            buffer: Vec::new(),
            records: scan.records,
            corrupt: scan.corrupt,
            unsynced_since: None,
        })
    }

    /// Appends the codes of one frame (`codes` holds `width`-byte codes back to back, for
    /// events `first_event`, `first_event + 1`, ...) in one write.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if the write fails.
    pub fn append(
        &mut self,
        stream: u16,
        first_event: u64,
        codes: &[u8],
    ) -> Result<(), ArchiveError> {
        self.buffer.clear();
        for (i, code) in codes.chunks_exact(usize::from(self.width)).enumerate() {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&stream.to_le_bytes());
            self.buffer
                .extend_from_slice(&(first_event + i as u64).to_le_bytes());
            self.buffer.extend_from_slice(code);
            let crc = CRC32C.checksum(&self.buffer[start..]);
            self.buffer.extend_from_slice(&crc.to_le_bytes());
            self.records += 1;
        }
        self.file
            .write_all(&self.buffer)
            .map_err(|source| ArchiveError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.unsynced_since.get_or_insert_with(Instant::now);
        self.sync_if_due()
    }

    /// Syncs to disk if a record has waited [`SYNC_INTERVAL`] or longer (call it now and
    /// then while no records arrive).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if the sync fails.
    pub fn sync_if_due(&mut self) -> Result<(), ArchiveError> {
        if self
            .unsynced_since
            .is_some_and(|since| since.elapsed() >= SYNC_INTERVAL)
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Intact codes in the archive.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records found corrupt when the archive was opened.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Flushes the records to disk (`fdatasync`).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if the sync fails.
    pub fn sync(&mut self) -> Result<(), ArchiveError> {
        self.unsynced_since = None;
        self.file.sync_data().map_err(|source| ArchiveError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads an archive, one record at a time, from a file (or any reader of its bytes).
#[derive(Debug)]
pub struct ArchiveReader<R: Read = File> {
    reader: BufReader<R>,
    path: PathBuf,
    record: Vec<u8>,
    scan: ArchiveScan,
    /// Model id of every code in the archive.
    pub model_id: u64,
    /// Code width in bytes.
    pub width: u8,
}

impl ArchiveReader {
    /// Opens an archive and reads its header.
    ///
    /// # Errors
    /// [`ArchiveError`] if the file is missing, not an archive, or of another version.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let file = File::open(path).map_err(|source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(file, path)
    }
}

impl<R: Read> ArchiveReader<R> {
    /// Reads an archive's header from `reader`; `path` names it in errors.
    ///
    /// # Errors
    /// [`ArchiveError`] if the bytes are not an archive, or of another version.
    pub fn from_reader(reader: R, path: &Path) -> Result<Self, ArchiveError> {
        let mut reader = BufReader::new(reader);
        let mut h = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut h)
            .map_err(|_| ArchiveError::ShortHeader {
                path: path.to_owned(),
            })?;
        if &h[..4] != MAGIC || h[4] != VERSION || h[5] == 0 {
            let [m0, m1, m2, m3, version, width, ..] = h;
            return Err(ArchiveError::Format {
                path: path.to_owned(),
                found: [m0, m1, m2, m3, version, width],
            });
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[8..]);
        Ok(Self {
            reader,
            path: path.to_owned(),
            record: vec![0; record_len(h[5])],
            scan: ArchiveScan::default(),
            model_id: u64::from_le_bytes(id),
            width: h[5],
        })
    }

    /// The next intact record, skipping (and counting) corrupt ones; `None` at the end,
    /// where an incomplete final record is counted as a torn tail.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if reading fails.
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        loop {
            let filled = self.fill_record()?;
            if filled < self.record.len() {
                self.scan.torn_tail_bytes = filled as u64;
                return Ok(None);
            }
            // The record is at least stream, event and CRC long (`record_len`).
            let Some((body, crc)) = self.record.split_last_chunk::<4>() else {
                return Ok(None);
            };
            let Some((stream, rest)) = body.split_first_chunk::<2>() else {
                return Ok(None);
            };
            let Some((event, code)) = rest.split_first_chunk::<8>() else {
                return Ok(None);
            };
            if CRC32C.checksum(body) != u32::from_le_bytes(*crc) {
                self.scan.corrupt += 1;
                continue;
            }
            self.scan.records += 1;
            return Ok(Some(Record {
                stream: u16::from_le_bytes(*stream),
                event: u64::from_le_bytes(*event),
                code: code.to_vec(),
            }));
        }
    }

    /// Reads up to one record's bytes; returns how many it got (fewer only at the end).
    fn fill_record(&mut self) -> Result<usize, ArchiveError> {
        let mut filled = 0;
        while filled < self.record.len() {
            match self.reader.read(&mut self.record[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ArchiveError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(filled)
    }

    /// What the records read so far held (complete once [`Self::next_record`] gave `None`).
    pub fn scan(&self) -> ArchiveScan {
        self.scan
    }

    /// Reads every intact record into memory (for small archives and tests; replay streams
    /// with [`Self::next_record`]).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if reading fails.
    pub fn read_all(mut self) -> Result<(Vec<Record>, ArchiveScan), ArchiveError> {
        let mut records = Vec::new();
        while let Some(record) = self.next_record()? {
            records.push(record);
        }
        Ok((records, self.scan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_append_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.llca");
        let mut w = ArchiveWriter::open(&path, 0xfeed, 2).unwrap();
        w.append(7, 100, &[1, 2, 3, 4]).unwrap();
        drop(w);
        // Reopen and append more: the old records stay.
        let mut w = ArchiveWriter::open(&path, 0xfeed, 2).unwrap();
        assert_eq!(w.records(), 2);
        w.append(7, 102, &[5, 6]).unwrap();
        drop(w);
        let (records, scan) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!(
            scan,
            ArchiveScan {
                records: 3,
                corrupt: 0,
                torn_tail_bytes: 0
            }
        );
        assert_eq!(
            records,
            vec![
                Record {
                    stream: 7,
                    event: 100,
                    code: vec![1, 2]
                },
                Record {
                    stream: 7,
                    event: 101,
                    code: vec![3, 4]
                },
                Record {
                    stream: 7,
                    event: 102,
                    code: vec![5, 6]
                },
            ]
        );

        // A crash mid-write leaves half a record: it is skipped, then cut when reopened.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[7, 0, 103, 0, 0]);
        std::fs::write(&path, &bytes).unwrap();
        let (records, scan) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!((records.len(), scan.torn_tail_bytes), (3, 5));
        let mut w = ArchiveWriter::open(&path, 0xfeed, 2).unwrap();
        w.append(7, 103, &[9, 9]).unwrap();
        drop(w);
        let (records, scan) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!(
            (records.len(), scan.torn_tail_bytes, records[3].event),
            (4, 0, 103)
        );
    }

    #[test]
    fn a_corrupt_record_costs_only_itself_and_reopening_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.llca");
        let mut w = ArchiveWriter::open(&path, 0xfeed, 16).unwrap();
        let codes: Vec<u8> = (0..2816 * 16).map(|i| (i % 251) as u8).collect();
        for (frame, chunk) in codes.chunks(16 * 16).enumerate() {
            w.append(0, frame as u64 * 16, chunk).unwrap();
        }
        drop(w);
        // One flipped byte in record 10.
        let mut bytes = std::fs::read(&path).unwrap();
        let size = bytes.len();
        bytes[HEADER_LEN + 10 * record_len(16) + 5] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (records, scan) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!(
            scan,
            ArchiveScan {
                records: 2815,
                corrupt: 1,
                torn_tail_bytes: 0
            }
        );
        assert_eq!((records[9].event, records[10].event), (9, 11));
        // Reopening for appending cuts nothing.
        let w = ArchiveWriter::open(&path, 0xfeed, 16).unwrap();
        assert_eq!((w.records(), w.corrupt()), (2815, 1));
        drop(w);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size as u64);
    }

    proptest::proptest! {
        /// Whatever follows a valid header, the reader never panics and accounts for every
        /// byte: intact and corrupt records, then a torn tail shorter than a record.
        #[test]
        fn any_bytes_after_the_header_are_accounted_for(
            width in 1u8..40,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("codes.llca");
            let mut bytes = header(7, width).to_vec();
            bytes.extend_from_slice(&body);
            std::fs::write(&path, &bytes).unwrap();
            let (records, scan) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
            let len = record_len(width) as u64;
            proptest::prop_assert_eq!(records.len() as u64, scan.records);
            proptest::prop_assert!(scan.torn_tail_bytes < len);
            proptest::prop_assert_eq!(
                (scan.records + scan.corrupt) * len + scan.torn_tail_bytes,
                body.len() as u64
            );
        }
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.llca");
        let first = ArchiveWriter::open(&path, 1, 16).unwrap();
        let err = ArchiveWriter::open(&path, 1, 16).unwrap_err();
        assert!(matches!(err, ArchiveError::Locked { .. }), "{err}");
        drop(first);
        ArchiveWriter::open(&path, 1, 16).unwrap();
    }

    #[test]
    fn other_models_and_non_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.llca");
        ArchiveWriter::open(&path, 1, 16).unwrap();
        let err = ArchiveWriter::open(&path, 2, 16).unwrap_err();
        assert!(matches!(err, ArchiveError::Mismatch { .. }), "{err}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"hello world, not an archive").unwrap();
        let err = ArchiveReader::open(&junk).unwrap_err();
        assert!(matches!(err, ArchiveError::Format { .. }), "{err}");
        assert!(err.to_string().contains("junk"), "{err}");
    }
}
