//! Frame parse → emit → parse round trip. Half the inputs get a valid CRC first, so the
//! fuzzer explores the checks behind it. The same bytes also go through the hex parser of
//! codes (codes arrive as text in logs and command lines).
#![no_main]

use latentlink_runtime::Code128;
use latentlink_runtime::wire::{Frame, FrameRepr, MAX_ENCODED_LEN, MAX_FRAME_LEN, encode_frame};
use libfuzzer_sys::fuzz_target;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if let Ok(Ok(code)) = core::str::from_utf8(rest).map(str::parse::<Code128>) {
        assert_eq!(code.to_string().parse::<Code128>(), Ok(code));
    }
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= 4 {
        let n = bytes.len();
        let crc = CRC32C.checksum(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(frame) = Frame::new_checked(&bytes[..]) else { return };
    let repr = FrameRepr::parse(&frame).expect("a checked frame parses");
    assert_eq!(repr.buffer_len(), bytes.len());

    let mut raw = [0u8; MAX_FRAME_LEN];
    let len = repr.emit_with_codes(frame.codes(), &mut raw).expect("re-emit fits");
    assert_eq!(&raw[..len], &bytes[..], "emit reproduces the parsed frame");
    let again = Frame::new_checked(&raw[..len]).expect("emitted frame is valid");
    assert_eq!(FrameRepr::parse(&again), Ok(repr));

    let mut stream = [0u8; MAX_ENCODED_LEN];
    let n = encode_frame(&repr, frame.codes(), &mut stream).expect("stream form fits");
    assert_eq!(stream[n - 1], 0);
    assert!(!stream[..n - 1].contains(&0));
});
