//! Compact frames under an arbitrary context. The first 16 bytes make the context (code
//! width, authentication, where the stream stands), the rest is the compact frame. Half the
//! inputs get the CRC of their likeliest reading first, so the fuzzer explores what lies
//! behind it: an expanded frame must then pass every check of a full frame and carry the
//! compact frame's codes.
#![no_main]

use latentlink_runtime::wire::{
    COMPACT_HEADER_LEN, CRC_LEN, Frame, FrameRepr, HEADER_LEN, MAX_FRAME_LEN, StreamContext,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, compact)) = data.split_first_chunk::<16>() else {
        return;
    };
    let mode = head[0];
    let context = StreamContext {
        model_id: 0x0123_4567_89ab_cdef,
        stream_id: 7,
        boot: 1,
        code_bytes: head[1],
        authenticated: mode & 2 != 0,
        sequence: u32::from_le_bytes(head[2..6].try_into().unwrap()),
        next_event: u64::from_le_bytes(head[6..14].try_into().unwrap()),
    };
    let mut bytes = compact.to_vec();
    if mode & 1 == 1
        && bytes.len() >= COMPACT_HEADER_LEN + CRC_LEN
        && let Some(repr) = context.guess(&bytes)
    {
        let body = &bytes[COMPACT_HEADER_LEN..bytes.len() - CRC_LEN];
        let mut full = vec![0u8; HEADER_LEN + body.len() + CRC_LEN];
        full[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
        let mut frame = Frame::new_unchecked(&mut full[..]);
        repr.emit(&mut frame, context.authenticated);
        frame.fill_checksum();
        let crc = frame.checksum().to_le_bytes();
        let n = bytes.len();
        bytes[n - CRC_LEN..].copy_from_slice(&crc);
    }
    let mut out = [0u8; MAX_FRAME_LEN];
    let Ok(len) = context.expand(&bytes, &mut out) else {
        return;
    };
    let frame = Frame::new_checked(&out[..len]).expect("an expanded frame passes every check");
    let repr = FrameRepr::parse(&frame).expect("an expanded frame parses");
    assert_eq!(len, bytes.len() + HEADER_LEN - COMPACT_HEADER_LEN);
    assert_eq!(frame.is_authenticated(), context.authenticated);
    assert!(context.describes(&repr, context.authenticated));
    let codes = usize::from(repr.code_count) * usize::from(repr.code_bytes);
    assert_eq!(frame.codes(), &bytes[COMPACT_HEADER_LEN..COMPACT_HEADER_LEN + codes]);
});
