//! The code archive's reader, on any bytes, and its reopen-for-append, on any archive.
//!
//! Random bytes rarely start with the archive's magic, so with the first byte odd the input
//! becomes the records of an archive with a valid header (code width from the second byte),
//! and with its second bit set every whole record gets its CRC fixed, so the fuzzer explores
//! valid, corrupt and torn records alike. Checked: no panic, no allocation beyond the rss
//! limit, and the reader's account adds up to the bytes (intact + corrupt records fill them,
//! the rest is the torn tail). With the third bit set too, the archive is also written to a
//! file and reopened for appending, which must cut only the torn tail and keep every intact
//! record (a file costs time, so only on those inputs).
#![no_main]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use latentlink_archive::{ArchiveReader, ArchiveScan, ArchiveWriter, Record};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 16;
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// One file per fuzzing process, rewritten for the inputs that need one.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "latentlink-fuzz-archive-{}.llca",
            std::process::id()
        ))
    })
}

fn read_all<R: std::io::Read>(mut reader: ArchiveReader<R>) -> (Vec<Record>, ArchiveScan) {
    let width = reader.width;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().expect("bytes in memory read") {
        assert_eq!(record.code.len(), usize::from(width));
        records.push(record);
    }
    (records, reader.scan())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        let Some((&width, body)) = rest.split_first() else {
            return;
        };
        let width = width % 32 + 1;
        let mut bytes = b"LLCA\x01".to_vec();
        bytes.extend_from_slice(&[width, 0, 0]);
        bytes.extend_from_slice(&0x0204_7e22_5cc0_6d67u64.to_le_bytes());
        let record_len = 2 + 8 + usize::from(width) + 4;
        let mut body = body.to_vec();
        if mode & 2 == 2 {
            for record in body.chunks_exact_mut(record_len) {
                let crc = CRC32C.checksum(&record[..record_len - 4]);
                record[record_len - 4..].copy_from_slice(&crc.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&body);
        bytes
    } else {
        rest.to_vec()
    };
    let Ok(reader) = ArchiveReader::from_reader(Cursor::new(&bytes), Path::new("fuzz.llca")) else {
        return;
    };
    let width = reader.width;
    let (records, scan) = read_all(reader);
    let record_len = 2 + 8 + usize::from(width) + 4;
    let body = bytes.len() - HEADER_LEN;
    assert_eq!(scan.records, records.len() as u64);
    assert_eq!((scan.records + scan.corrupt) as usize, body / record_len);
    assert_eq!(scan.torn_tail_bytes as usize, body % record_len);
    if mode & 4 == 0 {
        return;
    }

    // Reopening for append cuts the torn tail and nothing else.
    let path = path();
    std::fs::write(path, &bytes).expect("the temporary file is writable");
    let model_id = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    drop(ArchiveWriter::open(path, model_id, width).expect("a valid archive reopens"));
    let reopened = std::fs::metadata(path).expect("still there").len() as usize;
    assert_eq!(reopened, bytes.len() - body % record_len);
    let (again, scan_again) = read_all(ArchiveReader::open(path).expect("still an archive"));
    assert_eq!(again, records);
    assert_eq!(
        (scan_again.corrupt, scan_again.torn_tail_bytes),
        (scan.corrupt, 0)
    );
});
