//! The code archive: an append-only file of every decoded code, replayable later.
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
//! | width | the code ([`latentlink_runtime::code`] layout) |
//! | 4 | CRC-32C of the record's bytes before it |
//!
//! Records of one frame are written with one `write` call and flushed to the OS, so a killed
//! process leaves every frame it finished writing. A reader stops at the first record that is
//! cut short or fails its CRC (a torn tail) and reports how many bytes it skipped; everything
//! before stays readable.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crc::{CRC_32_ISCSI, Crc};

/// Archive format version.
pub const VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"LLCA";
const HEADER_LEN: usize = 16;
const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

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

/// Appends codes to an archive file.
#[derive(Debug)]
pub struct ArchiveWriter {
    file: File,
    path: PathBuf,
    width: u8,
    buffer: Vec<u8>,
    records: u64,
}

impl ArchiveWriter {
    /// Opens `path` for appending codes of `model_id` and `width` bytes, creating it with its
    /// header if needed. A torn tail left by a crash is cut off first.
    ///
    /// # Errors
    /// [`ArchiveError`] if the file cannot be opened, is not an archive, or holds codes of
    /// another model or width.
    pub fn open(path: &Path, model_id: u64, width: u8) -> Result<Self, ArchiveError> {
        let io_error = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let mut records = 0;
        if path.exists() && std::fs::metadata(path).map_err(io_error)?.len() > 0 {
            let reader = ArchiveReader::open(path)?;
            if reader.model_id != model_id || reader.width != width {
                return Err(ArchiveError::Mismatch {
                    path: path.to_owned(),
                    archive_model: reader.model_id,
                    archive_width: reader.width,
                    model: model_id,
                    width,
                });
            }
            let (good, _) = reader.read_all()?;
            records = good.len() as u64;
            let keep = HEADER_LEN as u64 + records * record_len(width) as u64;
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error)?;
            file.set_len(keep).map_err(io_error)?;
        } else {
            std::fs::write(path, header(model_id, width)).map_err(io_error)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            width,
            buffer: Vec::new(),
            records,
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
            })
    }

    /// Codes in the archive.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes to disk (`fsync`).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if the sync fails.
    pub fn sync(&self) -> Result<(), ArchiveError> {
        self.file.sync_all().map_err(|source| ArchiveError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads an archive.
#[derive(Debug)]
pub struct ArchiveReader {
    reader: BufReader<File>,
    path: PathBuf,
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
        let io_error = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io_error)?);
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
            model_id: u64::from_le_bytes(id),
            width: h[5],
        })
    }

    /// Reads every whole, intact record; returns them and the bytes of the torn tail that
    /// were skipped (0 for an archive closed cleanly).
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if reading fails.
    pub fn read_all(mut self) -> Result<(Vec<Record>, u64), ArchiveError> {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .map_err(|source| ArchiveError::Io {
                path: self.path.clone(),
                source,
            })?;
        let len = record_len(self.width);
        let mut records = Vec::with_capacity(rest.len() / len);
        for chunk in rest.chunks(len) {
            let Some((body, crc)) = chunk.split_last_chunk::<4>() else {
                break;
            };
            if chunk.len() != len || CRC32C.checksum(body) != u32::from_le_bytes(*crc) {
                break;
            }
            let mut event = [0u8; 8];
            event.copy_from_slice(&body[2..10]);
            records.push(Record {
                stream: u16::from_le_bytes([body[0], body[1]]),
                event: u64::from_le_bytes(event),
                code: body[10..].to_vec(),
            });
        }
        let skipped = (rest.len() - records.len() * len) as u64;
        Ok((records, skipped))
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
        let (records, skipped) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!(skipped, 0);
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
        let (records, skipped) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!((records.len(), skipped), (3, 5));
        let mut w = ArchiveWriter::open(&path, 0xfeed, 2).unwrap();
        w.append(7, 103, &[9, 9]).unwrap();
        drop(w);
        let (records, skipped) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!((records.len(), skipped, records[3].event), (4, 0, 103));

        // A flipped byte in the last record: it fails its CRC and is skipped.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (records, skipped) = ArchiveReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!((records.len(), skipped), (3, 16));
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
