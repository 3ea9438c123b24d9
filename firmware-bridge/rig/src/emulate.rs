//! The device emulator: the runtime's int8 [`Encoder`] on the host, exactly as firmware runs
//! it, sending wire frames over a link, with faults injected on request.
//!
//! Faults act on whole frames, one fault at most per frame, drawn from a seeded generator,
//! and never on the first frame or the last two (a receiver only knows where a stream
//! starts and ends from frames it receives):
//!
//! - **drop**: the frame is not sent (its events are lost);
//! - **flip**: one bit of the codes or checksum is flipped (rejected: CRC);
//! - **truncate**: the frame is cut short after its header (rejected: malformed);
//! - **duplicate**: the frame is sent twice;
//! - **reorder**: the frame is held back and sent after the next one;
//! - **garbage**: a burst of random bytes (a short datagram on UDP) goes before the frame
//!   (rejected: malformed; no events).
//!
//! [`FaultLog`] records what was injected, so tests compare the bridge's counters with it.
//!
//! Like a front-end, each run of the emulator has its own boot nonce ([`new_boot_nonce`]),
//! and seals its frames with the deployment's key when it has one. On a byte stream it writes
//! frames as the firmware does, compact where it can (the runtime's [`StreamFramer`]); faults
//! act on the frame as written, after its own header, full or compact.

use std::thread::sleep;
use std::time::{Duration, Instant};

use latentlink_runtime::wire::{
    COMPACT_HEADER_LEN, COMPACT_VERSION, FrameError, FrameKey, FrameRepr, HEADER_LEN,
    MAX_ENCODED_LEN, MAX_FRAME_LEN, StreamFramer, raw_len,
};
use latentlink_runtime::{BlobError, EncodeError, Model};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use latentlink_bridge::link::Sender;

/// Fault rates, each the probability per frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Frames not sent.
    pub drop: f64,
    /// Frames with one flipped bit in the codes or checksum.
    pub flip: f64,
    /// Frames cut short.
    pub truncate: f64,
    /// Frames sent twice.
    pub duplicate: f64,
    /// Frames sent after the next one.
    pub reorder: f64,
    /// Bursts of garbage before a frame.
    pub garbage: f64,
}

/// A fault list (`drop=0.01,flip=0.01,...`) could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    /// An item is not `name=rate`.
    #[error("fault {0:?} is not name=rate")]
    NotNameRate(String),
    /// A rate is not a number in [0, 1].
    #[error("fault rate {0:?} is not a probability in [0, 1]")]
    NotProbability(String),
    /// The fault name is not known.
    #[error("unknown fault {0:?}; known: {known}", known = Faults::NAMES.join(", "))]
    Unknown(String),
    /// The rates add up to more than 1.
    #[error("fault rates add up to {0}, more than 1")]
    TooLikely(f64),
}

impl Faults {
    /// The fault names [`FromStr`](std::str::FromStr) accepts.
    pub const NAMES: [&str; 6] = [
        "drop",
        "flip",
        "truncate",
        "duplicate",
        "reorder",
        "garbage",
    ];
}

impl std::str::FromStr for Faults {
    type Err = FaultsError;

    /// Parses `drop=0.01,flip=0.01,...` (any subset).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut faults = Self::default();
        for item in text.split(',').filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| FaultsError::NotNameRate(item.to_owned()))?;
            let rate: f64 = value
                .parse()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| FaultsError::NotProbability(value.to_owned()))?;
            let slot = match name {
                "drop" => &mut faults.drop,
                "flip" => &mut faults.flip,
                "truncate" => &mut faults.truncate,
                "duplicate" => &mut faults.duplicate,
                "reorder" => &mut faults.reorder,
                "garbage" => &mut faults.garbage,
                _ => return Err(FaultsError::Unknown(name.to_owned())),
            };
            *slot = rate;
        }
        let total = faults.drop
            + faults.flip
            + faults.truncate
            + faults.duplicate
            + faults.reorder
            + faults.garbage;
        if total > 1.0 {
            return Err(FaultsError::TooLikely(total));
        }
        Ok(faults)
    }
}

/// What the emulator sent and injected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultLog {
    /// Frames made (before faults).
    pub frames: u64,
    /// Events encoded and framed.
    pub events: u64,
    /// Frames dropped, and their events.
    pub dropped: [u64; 2],
    /// Frames with a flipped bit, and their events.
    pub flipped: [u64; 2],
    /// Frames truncated, and their events.
    pub truncated: [u64; 2],
    /// Frames duplicated, and their events.
    pub duplicated: [u64; 2],
    /// Frames reordered, and their events.
    pub reordered: [u64; 2],
    /// Garbage bursts.
    pub garbage: u64,
    /// Bytes put on the link.
    pub bytes_sent: u64,
}

impl FaultLog {
    /// The faults of this run and `other` together (two runs of one front-end).
    pub fn merged(&self, other: &Self) -> Self {
        let add = |a: [u64; 2], b: [u64; 2]| [a[0] + b[0], a[1] + b[1]];
        Self {
            frames: self.frames + other.frames,
            events: self.events + other.events,
            dropped: add(self.dropped, other.dropped),
            flipped: add(self.flipped, other.flipped),
            truncated: add(self.truncated, other.truncated),
            duplicated: add(self.duplicated, other.duplicated),
            reordered: add(self.reordered, other.reordered),
            garbage: self.garbage + other.garbage,
            bytes_sent: self.bytes_sent + other.bytes_sent,
        }
    }
}

/// How the emulator sends.
#[derive(Debug, Clone)]
pub struct EmulateConfig {
    /// Model id put in every frame.
    pub model_id: u64,
    /// Stream id.
    pub stream: u16,
    /// Codes per frame (1..=89 for 128-bit codes).
    pub codes_per_frame: usize,
    /// Events per second (0: as fast as possible).
    pub rate: f64,
    /// Faults to inject.
    pub faults: Faults,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Boot nonce of this run, put in every frame (0: none, as a sender without a nonce
    /// source).
    pub boot: u32,
    /// The deployment's key, to seal every frame with (none: unauthenticated frames).
    pub key: Option<FrameKey>,
}

impl EmulateConfig {
    /// Frames of `model_id` on stream 0: 16 codes per frame, as fast as possible, no
    /// faults, seed 1, a fresh boot nonce, no key.
    ///
    /// # Errors
    /// [`EmulateError::Random`] if the operating system gives no random bytes.
    pub fn new(model_id: u64) -> Result<Self, EmulateError> {
        Ok(Self {
            model_id,
            stream: 0,
            codes_per_frame: 16,
            rate: 0.0,
            faults: Faults::default(),
            seed: 1,
            boot: new_boot_nonce()?,
            key: None,
        })
    }
}

/// A boot nonce for a new run: random and never 0 (which means "no nonce").
///
/// # Errors
/// [`EmulateError::Random`] if the operating system gives no random bytes.
pub fn new_boot_nonce() -> Result<u32, EmulateError> {
    loop {
        let nonce = getrandom::u32().map_err(|e| EmulateError::Random(e.to_string()))?;
        if nonce != 0 {
            return Ok(nonce);
        }
    }
}

/// Why the emulator stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulateError {
    /// The blob is invalid.
    #[error("the model blob is invalid: {0}")]
    Blob(#[from] BlobError),
    /// An event could not be encoded.
    #[error("the encoder refused an event: {0}")]
    Encode(#[from] EncodeError),
    /// A frame could not be written.
    #[error("cannot write a frame: {0}")]
    Frame(#[from] FrameError),
    /// A frame did not fit its byte-stream buffer (a bug: the buffer is sized for the largest
    /// frame).
    #[error("a frame of {len} B does not fit the byte-stream buffer")]
    StreamBuffer {
        /// Raw frame bytes.
        len: usize,
    },
    /// Too many codes per frame for the largest frame.
    #[error(
        "{codes_per_frame} codes of {code_bytes} B do not fit a frame of at most {MAX_FRAME_LEN} B; use at most {max}"
    )]
    FrameTooLarge {
        /// Codes asked for.
        codes_per_frame: usize,
        /// Bytes per code.
        code_bytes: usize,
        /// The most that fit.
        max: usize,
    },
    /// The event rate is not a finite number of events per second whose pacing a clock can
    /// hold (e.g. negative, NaN, or so small that the next event is due after the clock ends).
    #[error("--rate {0} events/s cannot be paced: give 0 (as fast as possible) or a positive rate")]
    Rate(f64),
    /// The link failed.
    #[error("link: {0}")]
    Link(#[from] std::io::Error),
    /// The operating system gave no random bytes for the boot nonce.
    #[error("no random bytes from the operating system for the boot nonce: {0}")]
    Random(String),
}

/// Encodes each row of `events` with the runtime encoder of `blob`, as a front-end would
/// (through [`latentlink_runtime::host::encode_events`], the host fast path).
///
/// # Errors
/// [`EmulateError::Blob`] if the blob is invalid, [`EmulateError::Encode`] if an event does
/// not fit it.
pub fn encode_events(blob: &[u8], events: &Array2<f32>) -> Result<Vec<u8>, EmulateError> {
    let model = Model::from_bytes(blob)?;
    let samples: Vec<f32> = events.iter().copied().collect();
    Ok(latentlink_runtime::host::encode_events(model, &samples)?)
}

/// Sends `codes` (`code_bytes` each, back to back, events 0, 1, ...) in frames over `sender`.
///
/// # Errors
/// [`EmulateError`] if a frame cannot be built or the link fails.
pub fn send_codes(
    codes: &[u8],
    code_bytes: usize,
    config: &EmulateConfig,
    sender: &mut Sender,
) -> Result<FaultLog, EmulateError> {
    send_codes_from(codes, code_bytes, config, (0, 0), sender)
}

/// As [`send_codes`], continuing a stream: the first frame has sequence number `start.0`
/// and the first code event id `start.1` (a front-end resuming after a reconnect).
///
/// # Errors
/// [`EmulateError`] if a frame cannot be built or the link fails.
pub fn send_codes_from(
    codes: &[u8],
    code_bytes: usize,
    config: &EmulateConfig,
    start: (u32, u64),
    sender: &mut Sender,
) -> Result<FaultLog, EmulateError> {
    // What a frame holds besides its codes comes from the wire's own length formula.
    let overhead = raw_len(0, code_bytes, config.key.is_some());
    let max = (MAX_FRAME_LEN - overhead) / code_bytes.max(1);
    let per_frame = config.codes_per_frame;
    if per_frame == 0 || per_frame > max {
        return Err(EmulateError::FrameTooLarge {
            codes_per_frame: per_frame,
            code_bytes,
            max,
        });
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut log = FaultLog::default();
    if sender.is_stream() {
        // As the firmware does: a leading delimiter ends whatever an earlier sender left
        // unfinished on the line, so that it cannot swallow the first frame.
        sender.send(&[0])?;
        log.bytes_sent += 1;
    }
    let mut held: Option<Vec<u8>> = None;
    let frames: Vec<&[u8]> = codes.chunks(per_frame * code_bytes).collect();
    let began = Instant::now();
    let mut raw = vec![0u8; MAX_FRAME_LEN];
    let mut framer = StreamFramer::new();
    for (index, chunk) in frames.iter().enumerate() {
        let count = chunk.len() / code_bytes;
        let repr = FrameRepr {
            model_id: config.model_id,
            stream_id: config.stream,
            sequence: start.0.wrapping_add(index as u32),
            first_event: start.1 + (index * per_frame) as u64,
            code_bytes: code_bytes as u8,
            code_count: count as u16,
            boot: config.boot,
        };
        let len = if sender.is_stream() {
            framer.emit(&repr, chunk, config.key.as_ref(), &mut raw)?
        } else {
            repr.emit_with_codes(chunk, config.key.as_ref(), &mut raw)?
        };
        let mut frame = raw[..len].to_vec();
        let header_len = if frame[0] == COMPACT_VERSION {
            COMPACT_HEADER_LEN
        } else {
            HEADER_LEN
        };
        log.frames += 1;
        log.events += count as u64;
        let counted = |slot: &mut [u64; 2]| {
            slot[0] += 1;
            slot[1] += count as u64;
        };
        let spared = index == 0 || index + 2 >= frames.len();
        let draw: f64 = if spared { 1.0 } else { rng.random() };
        let f = &config.faults;
        let mut copies = 1;
        let mut hold = false;
        let mut threshold = f.drop;
        if draw < threshold {
            counted(&mut log.dropped);
            copies = 0;
        } else if draw < {
            threshold += f.flip;
            threshold
        } {
            let bit = rng.random_range(header_len * 8..len * 8);
            frame[bit / 8] ^= 1 << (bit % 8);
            counted(&mut log.flipped);
        } else if draw < {
            threshold += f.truncate;
            threshold
        } {
            frame.truncate(rng.random_range(header_len..len));
            counted(&mut log.truncated);
        } else if draw < {
            threshold += f.duplicate;
            threshold
        } {
            copies = 2;
            counted(&mut log.duplicated);
        } else if draw < {
            threshold += f.reorder;
            threshold
        } {
            hold = held.is_none();
            if hold {
                counted(&mut log.reordered);
            }
        } else if draw < threshold + f.garbage {
            let n = rng.random_range(1..HEADER_LEN);
            let burst: Vec<u8> = (0..n).map(|_| rng.random_range(1..=255u8)).collect();
            log.bytes_sent += send_one(sender, &burst, true)?;
            log.garbage += 1;
        }
        if hold {
            held = Some(frame);
            continue;
        }
        for _ in 0..copies {
            log.bytes_sent += send_one(sender, &frame, false)?;
        }
        if let Some(late) = held.take() {
            log.bytes_sent += send_one(sender, &late, false)?;
        }
        if config.rate != 0.0 {
            let due = Duration::try_from_secs_f64(log.events as f64 / config.rate)
                .ok()
                .and_then(|since| began.checked_add(since))
                .ok_or(EmulateError::Rate(config.rate))?;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                sleep(wait);
            }
        }
    }
    sender.flush()?;
    Ok(log)
}

/// Sends one raw frame (or a garbage burst), COBS-encoded with a delimiter on streams.
/// Garbage on a stream goes raw, ended by a delimiter, so it is one bad run.
fn send_one(sender: &mut Sender, raw: &[u8], garbage: bool) -> Result<u64, EmulateError> {
    if !sender.is_stream() {
        sender.send(raw)?;
        return Ok(raw.len() as u64);
    }
    let mut out = vec![0u8; MAX_ENCODED_LEN];
    let n = if garbage {
        out[..raw.len()].copy_from_slice(raw);
        raw.len()
    } else {
        cobs::try_encode(raw, &mut out)
            .map_err(|_| EmulateError::StreamBuffer { len: raw.len() })?
    };
    out[n] = 0;
    sender.send(&out[..=n])?;
    Ok(n as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_are_checked() {
        let f: Faults = "drop=0.1,flip=0.05".parse().unwrap();
        assert_eq!((f.drop, f.flip, f.garbage), (0.1, 0.05, 0.0));
        assert!("drop=2".parse::<Faults>().is_err());
        assert!(
            "melt=0.1"
                .parse::<Faults>()
                .unwrap_err()
                .to_string()
                .contains("known: drop, flip")
        );
        assert!("drop=0.6,flip=0.6".parse::<Faults>().is_err());
    }
}
