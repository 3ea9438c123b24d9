//! `.npy` reading that checks the header against the file before allocating anything.
//!
//! `ndarray_npy::read_npy` allocates as many elements as the header claims before it reads a
//! byte of data, so a 144-byte file whose header claims 2^60 elements aborts the process with
//! an allocation failure; and its header reader allocates the header length the preamble
//! claims (up to 4 GiB in format versions 2 and 3) before reading it (found by the `npy` fuzz
//! target). Every reader of `.npy` files in the workspace (training data, golden vectors,
//! decoded chunks) goes through [`read`], which refuses both with
//! [`ReadNpyError::MissingData`] first.
//!
//! The header itself is a Python literal, and the literal parser backtracks: each level of
//! nested `[` or `{` multiplies its time by four to six, so a header of 150 bytes can take
//! seconds (also found by the fuzz target). A numeric array's header is a flat dictionary
//! holding one shape tuple, so [`read`] refuses, before parsing, headers that nest brackets
//! deeper than that or that are longer than numpy's own limit of 10,000 bytes.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use ndarray::{Array, Dimension};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};

/// Reads an `.npy` array, first checking that the file holds every byte its header promises.
///
/// # Errors
/// [`ReadNpyError`]: the reader's own errors, plus [`ReadNpyError::LengthOverflow`] for a
/// shape whose byte count overflows, [`ReadNpyError::MissingData`] for a file shorter than
/// its header claims, and [`ReadNpyError::WrongDescriptor`] for an element type that is not a
/// plain number (whose size this check cannot know).
pub fn read<A: ReadableElement, D: Dimension>(path: &Path) -> Result<Array<A, D>, ReadNpyError> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    read_from(BufReader::new(file), file_len)
}

/// As [`read`], from the `file_len` bytes of an `.npy` file in `file`.
///
/// # Errors
/// As [`read`].
pub fn read_from<A: ReadableElement, D: Dimension>(
    mut file: impl Read + Seek,
    file_len: u64,
) -> Result<Array<A, D>, ReadNpyError> {
    if let Some(header) = header_span(&mut file)? {
        if header.end > file_len {
            return Err(ReadNpyError::MissingData);
        }
        check_header_shape(&mut file, header)?;
    }
    file.rewind()?;
    let header = Header::from_reader(&mut file)?;
    let data_len = file_len.saturating_sub(file.stream_position()?);
    let element_bytes = numeric_element_bytes(&header)
        .ok_or_else(|| ReadNpyError::WrongDescriptor(header.type_descriptor.clone()))?;
    let claimed = header
        .shape
        .iter()
        .try_fold(element_bytes, |bytes, &axis| bytes.checked_mul(axis))
        .ok_or(ReadNpyError::LengthOverflow)?;
    if u64::try_from(claimed).map_or(true, |claimed| claimed > data_len) {
        return Err(ReadNpyError::MissingData);
    }
    file.rewind()?;
    Array::read_npy(file)
}

/// Where the header lies in the file, by the preamble: magic (6 bytes), version (2), then the
/// header length, 2 bytes in version 1 and 4 in versions 2 and 3. `None` when the bytes are
/// not such a preamble (the header reader then says what is wrong).
fn header_span(file: &mut impl Read) -> std::io::Result<Option<Range<u64>>> {
    let mut preamble = [0u8; 12];
    let mut filled = 0;
    while filled < preamble.len() {
        match file.read(&mut preamble[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let [
        b'\x93',
        b'N',
        b'U',
        b'M',
        b'P',
        b'Y',
        major,
        _,
        l0,
        l1,
        l2,
        l3,
    ] = preamble
    else {
        return Ok(None);
    };
    Ok(match (major, filled) {
        (1, 10..) => Some(10..10 + u64::from(u16::from_le_bytes([l0, l1]))),
        (2 | 3, 12) => Some(12..12 + u64::from(u32::from_le_bytes([l0, l1, l2, l3]))),
        _ => None,
    })
}

/// The longest header numpy itself reads without being told it is trusted.
const MAX_HEADER_BYTES: u64 = 10_000;

/// The deepest bracket nesting of a numeric array's header: the dictionary and its shape tuple.
const MAX_HEADER_NESTING: usize = 2;

/// Refuses headers that are too long or nest too deep for a numeric array (which would only
/// slow the backtracking literal parser down).
fn check_header_shape(
    file: &mut (impl Read + Seek),
    header: Range<u64>,
) -> Result<(), ReadNpyError> {
    let refuse = |what: String| {
        ReadNpyError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a numeric .npy header: {what}"),
        ))
    };
    let header_len = header.end - header.start;
    if header_len > MAX_HEADER_BYTES {
        return Err(refuse(format!(
            "{header_len} bytes, over numpy's limit of {MAX_HEADER_BYTES}"
        )));
    }
    file.seek(SeekFrom::Start(header.start))?;
    let mut text = Vec::new();
    file.take(header_len).read_to_end(&mut text)?;
    let mut depth = 0usize;
    for &byte in &text {
        match byte {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(refuse(format!(
                        "brackets nested deeper than {MAX_HEADER_NESTING} levels"
                    )));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Bytes per element of a numeric descriptor such as `<f4`, `|u1` or `>i8`; `None` for
/// strings, objects and structured types.
fn numeric_element_bytes(header: &Header) -> Option<usize> {
    let descriptor = header.type_descriptor.as_string()?.as_bytes();
    let (kind, size) = match descriptor {
        [b'<' | b'>' | b'|' | b'=', kind, size @ ..] => (kind, size),
        _ => return None,
    };
    if !matches!(kind, b'b' | b'i' | b'u' | b'f' | b'c') {
        return None;
    }
    std::str::from_utf8(size).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};
    use ndarray_npy::write_npy;

    #[test]
    fn reads_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let written = array![[1.5f32, -2.0], [3.0, 4.0]];
        write_npy(&path, &written).unwrap();
        assert_eq!(read::<f32, ndarray::Ix2>(&path).unwrap(), written);
        write_npy(&path, &array![[7u64, 8]]).unwrap();
        assert_eq!(read::<u64, ndarray::IxDyn>(&path).unwrap().len(), 2);
    }

    /// A valid header (padded to 64 bytes, as numpy writes it) followed by `data`.
    fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{dict} ");
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.npy");
        // 2^60 f32 elements in a file of 144 bytes: allocating them first would abort.
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1152921504606846976,), }";
        std::fs::write(&path, npy_bytes(dict, &[0; 16])).unwrap();
        let err = read::<f32, ndarray::IxDyn>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::MissingData), "{err}");
        // A shape whose byte count overflows usize.
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
        std::fs::write(&path, npy_bytes(dict, &[])).unwrap();
        let err = read::<f64, ndarray::IxDyn>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::LengthOverflow), "{err}");
        // One byte short of the claimed 2 x 2 f32.
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        std::fs::write(&path, npy_bytes(dict, &[0; 15])).unwrap();
        let err = read::<f32, ndarray::Ix2>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::MissingData), "{err}");
        std::fs::write(&path, npy_bytes(dict, &[0; 16])).unwrap();
        assert_eq!(
            read::<f32, ndarray::Ix2>(&path).unwrap(),
            Array2::zeros((2, 2))
        );
    }

    #[test]
    fn a_preamble_claiming_a_header_longer_than_the_file_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("header.npy");
        // Version 2: a 4-byte header length of 3.9 GB in a 12-byte file.
        std::fs::write(&path, b"\x93NUMPY\x02\x00\x00\x00\x00\xe9").unwrap();
        let err = read::<f32, ndarray::IxDyn>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::MissingData), "{err}");
        // Version 1, 2-byte length: 65,535 bytes claimed, 20 there.
        std::fs::write(&path, b"\x93NUMPY\x01\x00\xff\xff{'descr'").unwrap();
        let err = read::<f32, ndarray::IxDyn>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::MissingData), "{err}");
    }

    #[test]
    fn a_descriptor_of_unknown_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strings.npy");
        let dict = "{'descr': '<U1000000', 'fortran_order': False, 'shape': (1000000000,), }";
        std::fs::write(&path, npy_bytes(dict, &[])).unwrap();
        let err = read::<f32, ndarray::IxDyn>(&path).unwrap_err();
        assert!(matches!(err, ReadNpyError::WrongDescriptor(_)), "{err}");
    }

    #[test]
    fn headers_nesting_too_deep_or_too_long_are_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested.npy");
        let refused = |dict: &str| {
            std::fs::write(&path, npy_bytes(dict, &[0; 16])).unwrap();
            let err = read::<f32, ndarray::IxDyn>(&path).unwrap_err();
            match err {
                ReadNpyError::Io(err) => err.to_string(),
                other => panic!("{other}"),
            }
        };
        // Twelve levels of `{` take the literal parser seconds; refused at once.
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': {}{}}}",
            "{".repeat(12),
            "}".repeat(12)
        );
        assert!(refused(&deep).contains("nested deeper than 2"));
        let list = "{'descr': '<f4', 'fortran_order': False, 'shape': ([4],), }";
        assert!(refused(list).contains("nested deeper than 2"));
        let long = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }}{}",
            " ".repeat(10_000)
        );
        assert!(refused(&long).contains("over numpy's limit of 10000"));
        // Version 3 (4-byte header length): the same check, on the header after 12 bytes.
        let v1 = npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
            &[0; 16],
        );
        let header_len = u32::from(u16::from_le_bytes([v1[8], v1[9]]));
        let mut v3 = b"\x93NUMPY\x03\x00".to_vec();
        v3.extend_from_slice(&header_len.to_le_bytes());
        v3.extend_from_slice(&v1[10..]);
        std::fs::write(&path, &v3).unwrap();
        assert_eq!(read::<f32, ndarray::IxDyn>(&path).unwrap().len(), 4);
    }
}
