//! Frame parse → emit → parse round trip. Half the inputs get a valid CRC first, so the
//! fuzzer explores the checks behind it; a checked frame is then held against a key, and a
//! sealed one must re-emit byte for byte only when its tag verifies. The same bytes also go
//! through the hex parsers of codes and keys (both arrive as text in logs and files).
#![no_main]

use latentlink_runtime::Code128;
use latentlink_runtime::wire::{
    Frame, FrameKey, FrameRepr, MAX_ENCODED_LEN, MAX_FRAME_LEN, encode_frame,
};
use libfuzzer_sys::fuzz_target;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if let Ok(Ok(code)) = core::str::from_utf8(rest).map(str::parse::<Code128>) {
        assert_eq!(code.to_string().parse::<Code128>(), Ok(code));
    }
    if let Ok(key) = FrameKey::from_hex(rest) {
        let text: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(FrameKey::from_hex(text.as_bytes()), Ok(key));
    }
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= 4 {
        let n = bytes.len();
        let crc = CRC32C.checksum(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(frame) = Frame::new_checked(&bytes[..]) else {
        return;
    };
    let repr = FrameRepr::parse(&frame).expect("a checked frame parses");
    let sealed = frame.is_authenticated();
    assert_eq!(repr.buffer_len(sealed), bytes.len());
    let key = FrameKey::from_bytes(&[mode >> 1; 16]);
    let verified = frame.check_authentication(Some(&key)).is_ok();
    assert!(!verified || sealed, "only a sealed frame verifies");

    let mut raw = [0u8; MAX_FRAME_LEN];
    let len = repr
        .emit_with_codes(frame.codes(), sealed.then_some(&key), &mut raw)
        .expect("re-emit fits");
    assert_eq!(len, bytes.len());
    if !sealed || verified {
        assert_eq!(&raw[..len], &bytes[..], "emit reproduces the parsed frame");
    }
    let again = Frame::new_checked(&raw[..len]).expect("emitted frame is valid");
    assert_eq!(FrameRepr::parse(&again), Ok(repr));
    assert_eq!(again.check_authentication(sealed.then_some(&key)), Ok(()));

    let mut stream = [0u8; MAX_ENCODED_LEN];
    let n = encode_frame(&repr, frame.codes(), sealed.then_some(&key), &mut stream)
        .expect("stream form fits");
    assert_eq!(stream[n - 1], 0);
    assert!(!stream[..n - 1].contains(&0));
});
