//! The wire format: codes in checksummed frames, COBS-delimited on byte streams.
//!
//! # Contract (docs/ARCHITECTURE.md, contract 4)
//!
//! A frame carries `code_count` consecutive events of one stream, starting at `first_event`.
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, currently [`VERSION`] |
//! | 1 | 1 | code width in bytes (1..=255; 16 for 128-bit codes) |
//! | 2 | 2 | code count u16 (≥ 1) |
//! | 4 | 8 | model id u64 (hash of the model package; a code is only decoded by its own decoder) |
//! | 12 | 2 | stream id u16 (one per front-end or channel) |
//! | 14 | 4 | sequence number u32 (per stream, +1 per frame, wraps) |
//! | 18 | 8 | first event id u64 (event `i` of the frame is `first_event + i`) |
//! | 26 | `count·width` | the codes, each laid out as in [`crate::code`] |
//! | end − 4 | 4 | CRC-32C (Castagnoli) of every byte before it |
//!
//! A raw frame is at most [`MAX_FRAME_LEN`] = 1472 bytes, the UDP payload of one unfragmented
//! Ethernet datagram, so 90 codes of 128 bits fit in one frame. Every future version keeps
//! the version byte first and the CRC last, so a receiver can always tell corruption from an
//! unknown version.
//!
//! **On byte streams** (serial, TCP) each raw frame is COBS-encoded and followed by one `0x00`
//! delimiter; [`encode_frame`] writes this form and the [`Accumulator`] reads it, resyncing at
//! the next delimiter after garbage, truncation or an oversize frame. **On datagrams** (UDP)
//! each datagram carries one raw frame, without COBS.
//!
//! # Payload efficiency (128-bit codes)
//!
//! Code bytes over bytes on the link, with the worst-case COBS overhead:
//!
//! | codes per frame | raw frame | on a byte stream | stream efficiency | datagram efficiency |
//! |---|---|---|---|---|
//! | 1 | 46 B | 48 B | 33.3 % | 34.8 % |
//! | 16 | 286 B | 289 B | 88.6 % | 89.5 % |
//! | 64 | 1054 B | 1060 B | 96.6 % | 97.2 % |
//!
//! (A test recomputes this table from [`FrameRepr::buffer_len`] and [`stream_len`].)
//!
//! **Towards a front-end**, raw events travel as [event packets](event), framed the same way.

mod accumulator;
pub mod event;
mod frame;

pub use accumulator::{Accumulator, AccumulatorError, FeedResult};
pub use frame::{
    CRC_LEN, Frame, FrameError, FrameRepr, HEADER_LEN, MAX_ENCODED_LEN, MAX_FRAME_LEN, VERSION,
    encode_frame, stream_len,
};
