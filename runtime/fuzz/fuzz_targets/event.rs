//! Event packets (host → front-end): check → parse → rewrite → check round trip. Half the
//! inputs get a valid CRC first, so the fuzzer explores the field checks behind it.
#![no_main]

use latentlink_runtime::wire::event::{EventPacket, EventRepr};
use libfuzzer_sys::fuzz_target;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= 4 {
        let n = bytes.len();
        let crc = CRC32C.checksum(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    // Parsing an unchecked view must never panic either.
    let _ = EventRepr::parse(&EventPacket::new_unchecked(&bytes[..]));
    let Ok(packet) = EventPacket::new_checked(&bytes[..]) else { return };
    let repr = EventRepr::parse(&packet).expect("a checked packet parses");
    let mut values = vec![0f32; repr.sample_count()];
    assert!(packet.read_samples(&mut values), "a checked event's samples decode");
    let mut out = vec![0u8; repr.buffer_len()];
    let len = repr.emit_with_samples(&values, &mut out).expect("rewrite fits");
    assert_eq!(&out[..len], &bytes[..], "writing reproduces the checked packet");
    let again = EventPacket::new_checked(&out[..len]).expect("emitted packet is valid");
    assert_eq!(EventRepr::parse(&again), Ok(repr));
});
