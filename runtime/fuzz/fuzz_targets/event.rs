//! Event packets (host → front-end): parse → rewrite → parse round trip. Half the inputs get a
//! valid CRC first, so the fuzzer explores the field checks behind it.
#![no_main]

use latentlink_runtime::wire::event::{
    EventPacket, event_packet_len, parse_event_packet, samples, write_event_packet,
};
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
    let Ok(packet) = parse_event_packet(&bytes) else { return };
    let (id, values) = match packet {
        EventPacket::Event { id, samples: raw } => {
            let mut values = vec![0f32; raw.len() / 4];
            assert!(samples(raw, &mut values), "a parsed event's samples decode");
            (id, Some(values))
        }
        EventPacket::EndOfStream { next_id } => (next_id, None),
    };
    let mut out = vec![0u8; event_packet_len(values.as_ref().map_or(0, Vec::len))];
    let len = write_event_packet(id, values.as_deref(), &mut out).expect("rewrite fits");
    assert_eq!(&out[..len], &bytes[..], "writing reproduces the parsed packet");
});
