#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks, like tests, stop at the first failure
//! Wire: frame encoding and decoding at 1, 16 and 64 codes per frame, unsealed and sealed
//! with a SipHash-2-4 tag (the cost of authentication is the ratio of the two), the stream
//! accumulator's throughput, and codes per second over UDP on loopback through the bridge's
//! own receive path (socket → `Receiver` → `Ingest`, sealed frames checked against the key).
//! Compact frames (version 3, byte streams) beside full ones: written by the `StreamFramer`,
//! read back by `StreamContext::expand` and the same checks. Payload efficiency is printed,
//! not timed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latentlink_bridge::ingest::Ingest;
use latentlink_bridge::link::{LinkSpec, Received, Receiver, Sender};
use latentlink_runtime::wire::{
    Accumulator, FULL_FRAME_INTERVAL, FeedResult, Frame, FrameKey, FrameRepr, MAX_ENCODED_LEN,
    MAX_FRAME_LEN, StreamContext, StreamFramer, compact_stream_len, encode_frame, stream_len,
};

const CODE_BYTES: usize = 16;

fn repr(count: usize, sequence: u32) -> FrameRepr {
    FrameRepr {
        model_id: 0x0204_7e22_5cc0_6d67,
        stream_id: 1,
        sequence,
        first_event: u64::from(sequence) * count as u64,
        code_bytes: CODE_BYTES as u8,
        code_count: count as u16,
        boot: 0x1234_5678,
    }
}

fn key() -> FrameKey {
    FrameKey::from_bytes(&[0x5c; 16])
}

/// Pseudo-random code bytes (zeros included, so COBS has work to do).
fn codes(count: usize) -> Vec<u8> {
    (0..count * CODE_BYTES)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] & 0xf7)
        .collect()
}

fn wire(c: &mut Criterion) {
    let key = key();
    for count in [1usize, 16, 64] {
        for sealed in [false, true] {
            let raw = repr(count, 0).buffer_len(sealed);
            let stream = stream_len(count, CODE_BYTES, sealed);
            let compact = compact_stream_len(count, CODE_BYTES, sealed);
            let interval = FULL_FRAME_INTERVAL as usize;
            let mean = (stream + (interval - 1) * compact) as f64 / interval as f64;
            let payload = (count * CODE_BYTES) as f64;
            eprintln!(
                "payload efficiency at {count} codes per frame{}: {:.1} % on a byte stream ({stream} B), {:.1} % per datagram ({raw} B); compact on a byte stream {:.1} % ({compact} B), {:.1} % with a full frame every {interval}",
                if sealed { ", sealed" } else { "" },
                100.0 * payload / stream as f64,
                100.0 * payload / raw as f64,
                100.0 * payload / compact as f64,
                100.0 * payload / mean,
            );
        }
        let payload = codes(count);
        let mut group = c.benchmark_group(format!("wire/{count}_codes_per_frame"));
        group.throughput(Throughput::Elements(count as u64));
        let mut out = [0u8; MAX_ENCODED_LEN];
        for (name, key) in [("encode_frame", None), ("encode_frame_sealed", Some(&key))] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    black_box(encode_frame(
                        &repr(count, 7),
                        black_box(&payload),
                        key,
                        &mut out,
                    ))
                })
            });
        }
        group.bench_function("encode_compact", |b| {
            // A framer that goes on writing one stream: compact but for one frame in 64.
            let mut framer = StreamFramer::new();
            let mut sequence = 0u32;
            b.iter(|| {
                sequence = sequence.wrapping_add(1);
                black_box(framer.encode(
                    &repr(count, sequence),
                    black_box(&payload),
                    None,
                    &mut out,
                ))
            })
        });
        for (name, key) in [
            ("accumulate_and_check", None),
            ("accumulate_check_and_verify", Some(&key)),
        ] {
            let n = encode_frame(&repr(count, 7), &payload, key, &mut out).expect("fits");
            let encoded = out[..n].to_vec();
            group.bench_function(name, |b| {
                let mut accumulator = Accumulator::<MAX_ENCODED_LEN>::new();
                b.iter(|| match accumulator.feed(black_box(&encoded)) {
                    FeedResult::Frame { frame, .. } => {
                        let frame = Frame::new_checked(frame).expect("valid");
                        frame
                            .check_authentication(key)
                            .expect("sealed with the key");
                        black_box(FrameRepr::parse(&frame).expect("valid"))
                    }
                    _ => panic!("no frame"),
                })
            });
        }
        // The compact frame that follows a full one, read in the context the full one set.
        let mut framer = StreamFramer::new();
        let full = framer.encode(&repr(count, 7), &payload, None, &mut out);
        let n = framer
            .encode(&repr(count, 8), &payload, None, &mut out)
            .expect("fits");
        assert!(full.expect("fits") > n, "the second frame goes compact");
        let encoded = out[..n].to_vec();
        let context = StreamContext::of(&repr(count, 7), false);
        group.bench_function("accumulate_expand_and_check", |b| {
            let mut accumulator = Accumulator::<MAX_ENCODED_LEN>::new();
            let mut full = [0u8; MAX_FRAME_LEN];
            b.iter(|| match accumulator.feed(black_box(&encoded)) {
                FeedResult::Frame { frame, .. } => {
                    let len = context.expand(frame, &mut full).expect("expands");
                    let frame = Frame::new_checked(&full[..len]).expect("valid");
                    black_box(FrameRepr::parse(&frame).expect("valid"))
                }
                _ => panic!("no frame"),
            })
        });
        group.finish();
    }

    // The accumulator over a long stream of 16-code frames, fed in 4 KiB reads.
    let mut stream = Vec::new();
    let payload = codes(16);
    let mut out = [0u8; MAX_ENCODED_LEN];
    for sequence in 0..4096 {
        let n = encode_frame(&repr(16, sequence), &payload, None, &mut out).expect("fits");
        stream.extend_from_slice(&out[..n]);
    }
    let mut group = c.benchmark_group("wire/accumulator");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("stream_of_16_code_frames", |b| {
        let mut accumulator = Accumulator::<MAX_ENCODED_LEN>::new();
        b.iter(|| {
            let mut frames = 0usize;
            for chunk in stream.chunks(4096) {
                let mut input = chunk;
                loop {
                    match accumulator.feed(input) {
                        FeedResult::Consumed => break,
                        FeedResult::Frame { remaining, .. } => {
                            frames += 1;
                            input = remaining;
                        }
                        FeedResult::Error { remaining, .. } => input = remaining,
                    }
                }
            }
            black_box(frames)
        })
    });
    group.finish();

    udp(c);
}

/// 64 datagrams of 16 codes per iteration, sent and received through the bridge's path.
fn udp(c: &mut Criterion) {
    const FRAMES: u32 = 64;
    let spec: LinkSpec = "udp:127.0.0.1:0".parse().expect("spec");
    let mut receiver = Receiver::open(&spec, Duration::from_millis(500)).expect("udp socket");
    let address = receiver.local_addr().expect("bound");
    let peer: LinkSpec = format!("udp:{address}").parse().expect("spec");
    let mut sender = Sender::open(&peer, Duration::from_secs(1)).expect("udp sender");
    let payload = codes(16);
    let mut raw = [0u8; 1472];
    let datagrams: Vec<Vec<u8>> = (0..FRAMES)
        .map(|sequence| {
            let n = repr(16, sequence)
                .emit_with_codes(&payload, Some(&key()), &mut raw)
                .expect("fits");
            raw[..n].to_vec()
        })
        .collect();
    let mut ingest = Ingest::new(0x0204_7e22_5cc0_6d67, CODE_BYTES as u8, Some(key()));
    let mut buffer = vec![0u8; 64 * 1024];
    let mut accepted = Vec::new();
    let mut group = c.benchmark_group("wire/udp_loopback");
    group.throughput(Throughput::Elements(u64::from(FRAMES) * 16));
    group.bench_function("bridge_receive_path", |b| {
        b.iter(|| {
            for datagram in &datagrams {
                sender.send(datagram).expect("sends");
            }
            let mut got = 0;
            while got < FRAMES {
                match receiver.receive(&mut buffer) {
                    Received::Datagram { n, from } => {
                        accepted.clear();
                        ingest.datagram(from, &buffer[..n], &mut accepted);
                        got += 1;
                    }
                    Received::Bytes { .. } | Received::Closed { .. } | Received::Refused { .. } => {
                        unreachable!("UDP gives datagrams")
                    }
                    Received::Idle => panic!("a datagram was lost on loopback"),
                }
            }
            black_box(accepted.len())
        })
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
