//! The wire format: codes in checksummed frames, COBS-delimited on byte streams.
//!
//! # Contract (docs/ARCHITECTURE.md, contract 4)
//!
//! A frame carries `code_count` consecutive events of one stream, starting at `first_event`.
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, currently [`VERSION`] (2) |
//! | 1 | 1 | code width in bytes (1..=255; 16 for 128-bit codes) |
//! | 2 | 2 | code count u16 (≥ 1) |
//! | 4 | 8 | model id u64 (hash of the model package; a code is only decoded by its own decoder) |
//! | 12 | 2 | stream id u16 (one per front-end or channel) |
//! | 14 | 4 | sequence number u32 (per stream, +1 per frame, wraps) |
//! | 18 | 8 | first event id u64 (event `i` of the frame is `first_event + i`) |
//! | 26 | 4 | boot nonce u32: a new value each time the front-end starts a run (0: it has none) |
//! | 30 | 1 | authentication: [`AUTH_NONE`] (0) or [`AUTH_SIPHASH24`] (1) |
//! | 31 | `count·width` | the codes, each laid out as in [`crate::code`] |
//! | end − 12 | 8 | only if authenticated: SipHash-2-4 tag of every byte before it ([`auth`]) |
//! | end − 4 | 4 | CRC-32C (Castagnoli) of every byte before it |
//!
//! A raw frame is at most [`MAX_FRAME_LEN`] = 1472 bytes, the UDP payload of one unfragmented
//! Ethernet datagram, so 89 codes of 128 bits fit in one frame, with or without a tag. Every
//! version keeps the version byte first and the CRC last, so a receiver can always tell
//! corruption from an unknown version. (Version 1 had neither boot nonce nor authentication
//! byte; this runtime refuses it as an unsupported version.)
//!
//! **Authentication.** The CRC tells corruption; the tag tells who sent the frame. A receiver
//! holding the deployment's [`FrameKey`] refuses frames without its tag
//! ([`Frame::check_authentication`]); one without a key refuses tagged frames rather than
//! pass them unchecked.
//!
//! **Boot nonce.** A front-end that starts again (power cycle, reflash, restart of the
//! emulator) numbers its frames and events from 0 again; the new nonce tells the receiver
//! that this is a new run of the stream, not a flood of duplicates, and frames carrying an
//! earlier run's nonce are then stale, not new.
//!
//! **On byte streams** (serial, TCP) each raw frame is COBS-encoded and followed by one `0x00`
//! delimiter; [`encode_frame`] writes this form and the [`Accumulator`] reads it, resyncing at
//! the next delimiter after garbage, truncation or an oversize frame. A sender on a byte
//! stream writes most frames [compact](#compact-frames-version-3) with a [`StreamFramer`].
//! **On datagrams** (UDP) each datagram carries one raw full frame, without COBS.
//!
//! # Compact frames (version 3)
//!
//! On a byte stream the receiver sees every frame of the link in order, so most of a header
//! repeats what it already knows. A compact frame leaves out what the last full frame on the
//! link said and keeps the low bits of what changes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, [`COMPACT_VERSION`] (3) |
//! | 1 | 1 | code count u8 (≥ 1) |
//! | 2 | 1 | sequence number, low 8 bits |
//! | 3 | 2 | first event id, low 16 bits |
//! | 5 | `count·width` | the codes |
//! | end − 12 | 8 | only if the stream is authenticated: the full frame's tag |
//! | end − 4 | 4 | the full frame's CRC-32C |
//!
//! It is the full frame it stands for, with the 26 header bytes the receiver restores taken
//! out; the tag and CRC are the full frame's, computed over the full header. The receiver
//! ([`StreamContext::expand`]) writes the full header back from its context (model id, stream
//! id, boot nonce, code width and authentication of the link's last full frame; where the
//! stream stood at its newest frame) and extends the low bits to the sequence number and event
//! id nearest past the ones it expects, trying a few wraps either side (a duplicate or a late
//! frame behind, long losses ahead). It takes the first reading under which the full frame's
//! CRC holds. So the same CRC-32C that guards every full frame also proves each restored
//! field: a frame read under the wrong context or the wrong wrap fails it, as does a
//! corrupted byte. After the expansion a compact frame is a full frame to everything else.
//!
//! Rules for the sender ([`StreamFramer`]): the first frame on a link is full; a frame goes
//! compact only if it is the next frame of the same stream as the one before (same model,
//! stream, boot nonce, code width, authentication; sequence number +1; first event id at most
//! 2^16 − 1 past the end of the frame before; at most 255 codes); and at least every
//! [`FULL_FRAME_INTERVAL`] (64) frames one is full, so a receiver that starts listening
//! mid-stream, or lost the last full frame, reads the stream again within 64 frames. Compact
//! frames before any full frame on a link cannot be read: the bridge counts them as rejected
//! (`no_context`). A receiver reads compact frames after losses of fewer than 1024 frames and
//! 2^18 events in a row; past that, they fail their CRC until the next full frame.
//!
//! # Payload efficiency (128-bit codes)
//!
//! Code bytes over bytes on the link, with the worst-case COBS overhead:
//!
//! | codes per frame | tag | raw frame | on a byte stream | stream efficiency | datagram efficiency |
//! |---|---|---|---|---|---|
//! | 1 | no | 51 B | 53 B | 30.2 % | 31.4 % |
//! | 16 | no | 291 B | 294 B | 87.1 % | 88.0 % |
//! | 64 | no | 1059 B | 1065 B | 96.2 % | 96.7 % |
//! | 1 | yes | 59 B | 61 B | 26.2 % | 27.1 % |
//! | 16 | yes | 299 B | 302 B | 84.8 % | 85.6 % |
//! | 64 | yes | 1067 B | 1073 B | 95.4 % | 96.0 % |
//!
//! (A test recomputes this table from [`FrameRepr::buffer_len`] and [`stream_len`].)
//!
//! Compact, on a byte stream, at 16 codes per frame: 268 B (95.5 %) without a tag, 276 B
//! (92.8 %) with one; with the full frame every 64 frames, on average 268.4 B, **95.4 %**,
//! without a tag and 276.4 B, 92.6 %, with one (tested in
//! `compact::tests::payload_efficiency_at_16_codes`).
//!
//! **Towards a front-end**, raw events travel as [event packets](event), framed the same way.

mod accumulator;
pub mod auth;
mod compact;
pub mod event;
mod frame;

pub use accumulator::{Accumulator, AccumulatorError, FeedResult};
pub use auth::{FrameKey, KeyError, TAG_LEN};
pub use compact::{
    COMPACT_HEADER_LEN, COMPACT_VERSION, FULL_FRAME_INTERVAL, StreamContext, StreamFramer,
    compact_len, compact_stream_len,
};
pub use frame::{
    AUTH_NONE, AUTH_SIPHASH24, CRC_LEN, Frame, FrameError, FrameRepr, HEADER_LEN, MAX_ENCODED_LEN,
    MAX_FRAME_LEN, VERSION, encode_frame, raw_len, stream_len,
};
