//! The stream accumulator fed random bytes in random chunk sizes: it must never panic,
//! always make progress, and only hand out frames within its capacity.
#![no_main]

use latentlink_runtime::wire::{Accumulator, FeedResult, Frame, FrameRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk % 64) + 1;
    let mut accumulator = Accumulator::<256>::new();
    for piece in rest.chunks(chunk) {
        let mut input = piece;
        loop {
            let before = input.len();
            match accumulator.feed(input) {
                FeedResult::Consumed => break,
                FeedResult::Frame { frame, remaining } => {
                    assert!(frame.len() <= 256);
                    if let Ok(checked) = Frame::new_checked(frame) {
                        let _ = FrameRepr::parse(&checked);
                    }
                    assert!(remaining.len() < before, "feed must consume its delimiter");
                    input = remaining;
                }
                FeedResult::Error { remaining, .. } => {
                    assert!(remaining.len() < before, "feed must consume its delimiter");
                    input = remaining;
                }
            }
        }
        assert!(accumulator.pending() <= rest.len());
    }
});
