//! Replay: codes → bits → decoder → sink, in batches. The one path from received or archived
//! codes to reconstructions, used by [`crate::listen`] (live) and [`decode_archive`] (from a
//! code archive), so both decode exactly the same way.

use std::path::{Path, PathBuf};

use latentlink_package::{ModelId, Package};
use ndarray::Array2;

use crate::archive::{ArchiveError, ArchiveReader, ArchiveScan};
use crate::decode::{self, DecodeError, Decoder, DecoderKind};
use crate::sink::{ChunkFormat, ReconstructionSink, SinkError};

/// Why codes could not be replayed into reconstructions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The decoder failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Reconstructions could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The codes HDF5 file could not be written.
    #[error(transparent)]
    CodesH5(#[from] crate::codes_h5::CodesH5Error),
    /// The archive holds codes of another model.
    #[error(
        "{archive} holds codes of model {archive_model}, but {package} is model {package_model}; decode with the package that made them"
    )]
    WrongModel {
        /// The archive.
        archive: PathBuf,
        /// Model id in the archive.
        archive_model: ModelId,
        /// The package folder.
        package: PathBuf,
        /// Model id of the package.
        package_model: ModelId,
    },
    /// Codes of another width than the package's.
    #[error("codes are {found} bytes wide, the model's are {expected} bytes")]
    Width {
        /// Bytes per code of the model.
        expected: usize,
        /// Bytes per code given.
        found: usize,
    },
}

/// Code bytes (`width` per code, bit `i` in byte `i / 8` at bit `i % 8`, as the runtime's
/// code contract says) to a `[N, bits]` 0/1 matrix.
///
/// # Errors
/// [`ReplayError::Width`] if `bits` do not fit `width` bytes or `codes` is not a whole number
/// of codes.
pub fn codes_to_bits(codes: &[u8], width: usize, bits: usize) -> Result<Array2<f32>, ReplayError> {
    let whole = width > 0 && codes.len().is_multiple_of(width);
    if !whole || bits > 8 * width {
        return Err(ReplayError::Width {
            expected: bits.div_ceil(8),
            found: width,
        });
    }
    let rows: Vec<&[u8]> = codes.chunks_exact(width).collect();
    Ok(Array2::from_shape_fn((rows.len(), bits), |(row, bit)| {
        f32::from(rows[row][bit / 8] >> (bit % 8) & 1)
    }))
}

/// Decodes batches of codes and hands the reconstructions to a sink.
pub struct Replay {
    decoder: Box<dyn Decoder>,
    sink: Option<ReconstructionSink>,
    width: usize,
    bits: usize,
    decoded: u64,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("decoder", &self.decoder.name())
            .field("sink", &self.sink)
            .field("decoded", &self.decoded)
            .finish()
    }
}

impl Replay {
    /// The `kind` decoder of `package`, writing into `sink` (none: decode only to count).
    ///
    /// # Errors
    /// [`ReplayError::Decode`] if the decoder cannot load.
    pub fn new(
        package: &Package,
        kind: DecoderKind,
        sink: Option<ReconstructionSink>,
    ) -> Result<Self, ReplayError> {
        Ok(Self {
            decoder: decode::open(package, kind)?,
            sink,
            width: package.manifest.code.bytes,
            bits: package.manifest.code.bits,
            decoded: 0,
        })
    }

    /// Decodes `codes` (back to back, the package's code width each) whose stream and event
    /// ids are `ids`, and writes the reconstructions.
    ///
    /// # Errors
    /// [`ReplayError`] if the codes have the wrong width or decoding or writing fails.
    pub fn push(&mut self, codes: &[u8], ids: &[[u64; 2]]) -> Result<(), ReplayError> {
        let bits = codes_to_bits(codes, self.width, self.bits)?;
        if bits.nrows() != ids.len() {
            return Err(ReplayError::Width {
                expected: self.width,
                found: codes.len() / ids.len().max(1),
            });
        }
        let reconstructions = self.decoder.decode(&bits)?;
        self.decoded += ids.len() as u64;
        if let Some(sink) = &mut self.sink {
            sink.push(reconstructions, ids)?;
        }
        Ok(())
    }

    /// Codes decoded so far.
    pub const fn decoded(&self) -> u64 {
        self.decoded
    }

    /// The decoder's name, for logs and summaries.
    pub fn decoder_name(&self) -> &'static str {
        self.decoder.name()
    }

    /// Flushes the sink; returns the reconstructions written (or decoded, without a sink).
    ///
    /// # Errors
    /// [`ReplayError::Sink`] if the last chunk cannot be written.
    pub fn finish(self) -> Result<u64, ReplayError> {
        match self.sink {
            Some(sink) => Ok(sink.close()?),
            None => Ok(self.decoded),
        }
    }
}

/// What [`decode_archive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDecoded {
    /// Reconstructions written.
    pub written: u64,
    /// What the archive held: intact and corrupt records, and a torn tail.
    pub scan: ArchiveScan,
    /// The decoder that ran.
    pub decoder: &'static str,
}

/// Writes every code of a code archive of `package`'s model to a new HDF5 file
/// ([`crate::codes_h5`]), and returns how many, with what the archive held.
///
/// # Errors
/// [`ReplayError`] if the archive is of another model or width, the file exists, or reading
/// or writing fails.
pub fn codes_to_h5(
    archive: &Path,
    package: &Package,
    path: &Path,
) -> Result<(u64, ArchiveScan), ReplayError> {
    let mut reader = open_archive_of(archive, package)?;
    let mut writer = crate::codes_h5::CodesH5Writer::create(
        path,
        &crate::codes_h5::Provenance {
            model_id: package.model_id().to_string(),
            code_bits: package.manifest.code.bits as u32,
            code_bytes: package.manifest.code.bytes,
            source: archive.display().to_string(),
        },
    )?;
    while let Some(record) = reader.next_record()? {
        writer.append(record.stream, record.event, &record.code)?;
        // Bounded memory whatever the archive's size.
        if writer.pending_records() >= 65_536 {
            writer.flush()?;
        }
    }
    writer.flush()?;
    Ok((writer.records(), reader.scan()))
}

/// Opens an archive after checking it holds codes of `package`'s model and width.
fn open_archive_of(archive: &Path, package: &Package) -> Result<ArchiveReader, ReplayError> {
    let reader = ArchiveReader::open(archive)?;
    let archive_model = ModelId(reader.model_id);
    if archive_model != package.model_id() {
        return Err(ReplayError::WrongModel {
            archive: archive.to_owned(),
            archive_model,
            package: package.dir.clone(),
            package_model: package.model_id(),
        });
    }
    let width = usize::from(reader.width);
    if width != package.manifest.code.bytes {
        return Err(ReplayError::Width {
            expected: package.manifest.code.bytes,
            found: width,
        });
    }
    Ok(reader)
}

/// Decodes every code of a code archive with `package` into chunks under `out`.
///
/// # Errors
/// [`ReplayError`] if the archive is of another model or width, or reading, decoding or
/// writing fails.
pub fn decode_archive(
    archive: &Path,
    package: &Package,
    kind: DecoderKind,
    out: &Path,
    batch_size: usize,
    format: ChunkFormat,
) -> Result<ArchiveDecoded, ReplayError> {
    let mut reader = open_archive_of(archive, package)?;
    let sink = ReconstructionSink::new(out, 65_536, format)?;
    let mut replay = Replay::new(package, kind, Some(sink))?;
    // One batch in memory at a time, whatever the archive's size.
    let (mut codes, mut ids) = (Vec::new(), Vec::new());
    loop {
        let record = reader.next_record()?;
        if let Some(record) = &record {
            codes.extend_from_slice(&record.code);
            ids.push([u64::from(record.stream), record.event]);
        }
        if !ids.is_empty() && (record.is_none() || ids.len() >= batch_size.max(1)) {
            replay.push(&codes, &ids)?;
            codes.clear();
            ids.clear();
        }
        if record.is_none() {
            break;
        }
    }
    let decoder = replay.decoder_name();
    Ok(ArchiveDecoded {
        written: replay.finish()?,
        scan: reader.scan(),
        decoder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bytes_become_lsb_first_bits() {
        let bits = codes_to_bits(&[0b0000_0101, 0b1000_0000, 0xff, 0x00], 2, 16).unwrap();
        assert_eq!(bits.row(0).iter().filter(|&&b| b == 1.0).count(), 3);
        assert_eq!((bits[[0, 0]], bits[[0, 1]], bits[[0, 2]]), (1.0, 0.0, 1.0));
        assert_eq!(bits[[0, 15]], 1.0);
        assert_eq!(bits.row(1).sum(), 8.0);
        assert_eq!(bits[[1, 8]], 0.0);
    }

    #[test]
    fn widths_that_do_not_fit_are_errors_not_panics() {
        assert!(codes_to_bits(&[1, 2, 3], 2, 16).is_err());
        assert!(codes_to_bits(&[1, 2], 2, 17).is_err());
        assert!(codes_to_bits(&[1, 2], 0, 0).is_err());
    }
}
