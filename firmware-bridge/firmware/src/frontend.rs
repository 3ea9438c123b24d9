//! The front-end loop: event packets in, code frames out, over any `embedded-io` link.
//!
//! Bytes go through the runtime's [`Accumulator`] and [`EventPacket`] / [`EventRepr`]; each event is
//! encoded by the runtime's [`Encoder`] and its code queued; a frame of up to
//! [`CODES_PER_FRAME`] consecutive codes is sent when full, when the next event id does not
//! follow on, and at the end of the stream. Frames go compact where they can (the runtime's
//! [`StreamFramer`]: a full frame first and every 64 frames, 26 header bytes fewer in the
//! others). A packet that fails its checks is counted and skipped: the host sees its event as
//! lost.
//!
//! Frames are sealed with the deployment's key when the image was built with one
//! (`LATENTLINK_KEY_FILE`), and carry this run's boot nonce, so the host tells a rebooted
//! board's new run from duplicates. The QEMU board has no random number generator: the
//! nonce is the timer's count when the first byte arrives from the host, which depends on
//! when the host connects. A production board takes it from its hardware RNG (the STM32F4's
//! RNG peripheral) or from a boot counter kept in flash.

use embedded_io::{Read, Write};
use heapless::Vec;
use latentlink_runtime::Encoder;
use latentlink_runtime::wire::event::{EventPacket, EventRepr};
use latentlink_runtime::wire::{Accumulator, FeedResult, FrameKey, FrameRepr, StreamFramer};

use crate::model::{
    CODE_BYTES, CODES_PER_FRAME, FRAME_BYTES, FRAME_KEY, INPUT_LEN, MODEL_ID, RECEIVE_BYTES,
};
use crate::timer::Timer;

/// Stream id of this front-end's frames.
pub const STREAM_ID: u16 = 1;

/// What the loop did; sent to the host's log at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Events encoded and sent.
    pub events: u64,
    /// Packets dropped: not COBS, failed checks, or wrong sample count.
    pub rejected: u64,
    /// Frames sent.
    pub frames: u64,
    /// Timer ticks spent in the encoder, in total, and the least and most for one event.
    pub ticks_total: u64,
    /// See [`Stats::ticks_total`].
    pub ticks_min: u32,
    /// See [`Stats::ticks_total`].
    pub ticks_max: u32,
    /// Timer ticks spent building frames (header, tag, CRC, COBS), in total.
    pub frame_ticks: u64,
    /// The boot nonce of this run.
    pub boot: u32,
}

/// The buffers the loop works in, all fixed size (statics in `main`).
#[derive(Debug)]
pub struct Buffers {
    /// Reassembles event packets.
    pub accumulator: Accumulator<RECEIVE_BYTES>,
    /// The samples of the event being encoded.
    pub samples: [f32; INPUT_LEN],
}

/// Codes waiting to be framed, all of consecutive events.
struct Pending {
    first_event: u64,
    codes: Vec<u8, { CODES_PER_FRAME * CODE_BYTES }>,
    sequence: u32,
    key: Option<FrameKey>,
    framer: StreamFramer,
}

impl Pending {
    fn count(&self) -> usize {
        self.codes.len() / CODE_BYTES
    }

    /// Sends the pending codes as one frame, if any.
    fn flush<L: Write>(
        &mut self,
        link: &mut L,
        stats: &mut Stats,
        timer: &Timer,
    ) -> Result<(), L::Error> {
        let count = self.count();
        if count == 0 {
            return Ok(());
        }
        let repr = FrameRepr {
            model_id: MODEL_ID,
            stream_id: STREAM_ID,
            sequence: self.sequence,
            first_event: self.first_event,
            code_bytes: CODE_BYTES as u8,
            code_count: count as u16,
            boot: stats.boot,
        };
        let mut wire = [0u8; FRAME_BYTES];
        let start = timer.now();
        let encoded = self
            .framer
            .encode(&repr, &self.codes, self.key.as_ref(), &mut wire);
        stats.frame_ticks += u64::from(timer.since(start));
        // Cannot fail: the frame is sized at build time from these constants.
        if let Ok(len) = encoded {
            link.write_all(wire.get(..len).unwrap_or(&[]))?;
            stats.frames += 1;
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.first_event += count as u64;
        self.codes.clear();
        Ok(())
    }
}

/// Serves event packets from `link` until an end-of-stream packet, then returns the stats.
///
/// # Errors
/// The link's error, as soon as a read or write fails.
pub fn run<L: Read + Write>(
    link: &mut L,
    encoder: &mut Encoder<'_, '_>,
    buffers: &mut Buffers,
    timer: &Timer,
) -> Result<Stats, L::Error> {
    let mut stats = Stats {
        ticks_min: u32::MAX,
        ..Stats::default()
    };
    let mut pending = Pending {
        first_event: 0,
        codes: Vec::new(),
        sequence: 0,
        key: FRAME_KEY.as_ref().map(FrameKey::from_bytes),
        framer: StreamFramer::new(),
    };
    // A delimiter first: the host drops whatever half frame an earlier run left behind.
    link.write_all(&[0])?;
    let mut chunk = [0u8; 64];
    loop {
        let n = link.read(&mut chunk)?;
        if stats.boot == 0 {
            // 0 means "no nonce" on the wire: never send it.
            stats.boot = timer.now().max(1);
        }
        let mut input = chunk.get(..n).unwrap_or(&[]);
        while !input.is_empty() {
            let packet = match buffers.accumulator.feed(input) {
                FeedResult::Consumed => break,
                FeedResult::Error { remaining, .. } => {
                    stats.rejected += 1;
                    input = remaining;
                    continue;
                }
                FeedResult::Frame { frame, remaining } => {
                    input = remaining;
                    EventPacket::new_checked(frame)
                        .and_then(|packet| EventRepr::parse(&packet).map(|repr| (packet, repr)))
                }
            };
            match packet {
                Ok((packet, EventRepr::Event { id, .. })) => {
                    if !packet.read_samples(&mut buffers.samples) {
                        stats.rejected += 1;
                        continue;
                    }
                    if pending.count() > 0 && id != pending.first_event + pending.count() as u64 {
                        pending.flush(link, &mut stats, timer)?;
                    }
                    if pending.count() == 0 {
                        pending.first_event = id;
                    }
                    let mut code = [0u8; CODE_BYTES];
                    let start = timer.now();
                    let encoded = encoder.encode_into(&buffers.samples, &mut code);
                    let ticks = timer.since(start);
                    if encoded.is_err() {
                        // Non-finite samples: nothing to send for this event.
                        stats.rejected += 1;
                        pending.flush(link, &mut stats, timer)?;
                        continue;
                    }
                    stats.events += 1;
                    stats.ticks_total += u64::from(ticks);
                    stats.ticks_min = stats.ticks_min.min(ticks);
                    stats.ticks_max = stats.ticks_max.max(ticks);
                    // Cannot fail: a full batch was flushed below before this push.
                    let _ = pending.codes.extend_from_slice(&code);
                    if pending.count() == CODES_PER_FRAME {
                        pending.flush(link, &mut stats, timer)?;
                    }
                }
                Ok((_, EventRepr::EndOfStream { .. })) => {
                    pending.flush(link, &mut stats, timer)?;
                    link.flush()?;
                    return Ok(stats);
                }
                Err(_) => stats.rejected += 1,
            }
        }
    }
}
