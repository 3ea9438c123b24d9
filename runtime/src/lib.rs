//! # latentlink runtime
//!
//! The part of latentlink that runs next to the sensor: it turns one detector event into a
//! short binary code with an int8 network, in fixed memory, with no heap, and frames codes
//! for a serial or network link. `#![no_std]`, no `alloc`, no floating point needed for
//! integer (ADC) input, and no panic reachable from untrusted bytes.
//!
//! ## Tour
//!
//! | module | what |
//! |---|---|
//! | [`code`] | [`Code<BYTES>`] / [`Code128`]: the bits that travel (contract 1) |
//! | [`quant`] | fixed-point requantisation: int32 accumulators to int8 without a float unit |
//! | [`layers`] | the int8 layers' byte formats: each a zero-copy, validated view over its blob bytes |
//! | `kernels` | the layers' arithmetic: portable loops (the oracle), x86 and Cortex-M DSP fast paths |
//! | `records` | byte layouts of the per-channel and per-feature records, shared by layers and kernels |
//! | [`blob`] | the versioned, checksummed model blob and its validation into a [`Model`] (contract 3) |
//! | `checksum` | CRC-32C, the one checksum of blobs, frames and event packets |
//! | [`encoder`] | [`Encoder`]: runs a [`Model`] on an event with caller-provided [`Scratch`] |
//! | `host` | `std` only: [`host::encode_events`], many events to codes with the host fast paths |
//! | [`wire`] | frames of codes (full, and compact on byte streams), COBS framing, CRC-32C, and the stream [`wire::Accumulator`] (contract 4) |
//!
//! ## Data flow
//!
//! ```text
//! blob bytes ─ Model::from_bytes (validate once) ─▶ Model
//! event (f32 | i16 | u16) ─ Encoder::encode ─▶ input quantisation ─▶ int8 layers ─▶ binary head ─▶ Code
//! codes ─ FrameRepr::emit_with_codes ─▶ raw frame (UDP) ─ encode_frame ─▶ COBS + 0x00 (serial, TCP)
//! codes ─ StreamFramer::encode ─▶ full or compact frame, COBS + 0x00 (serial, TCP)
//! bytes ─ Accumulator::feed ─▶ raw frame ─ Frame::new_checked (CRC once) ─ FrameRepr::parse ─▶ header + codes
//! compact frame ─ StreamContext::expand (CRC once per reading) ─▶ full frame ─ FrameRepr::parse
//! ```
//!
//! ## Features
//!
//! - `std` (off by default): the blob writer ([`blob::write`]) and the quantisation helpers
//!   ([`quantize`]) that the trainer uses, so the formats live in this crate only. On x86-64
//!   it also lets dense layers use AVX2 when the CPU has it (detected at run time).
//! - `dsp` (off by default): dense layers on the Cortex-M4/M7 DSP extension (`SMLAD`), for
//!   `thumbv7em` targets; the firmware turns it on.
//!
//! Both fast paths are bit-exact with the portable loop, which stays the reference; their
//! `unsafe` (inline assembly, intrinsics) is confined to `kernels/dsp.rs` and `kernels/x86/`.
//!
//! Dependencies between the modules point one way, with no circles:
//! `checksum`, `records`, `quant` ← `kernels` ← `layers` ← `blob` ← `encoder`; `wire` uses
//! `checksum` and `code` only.
#![no_std]
#![deny(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod blob;
mod checksum;
pub mod code;
pub mod encoder;
#[cfg(feature = "std")]
pub mod host;
mod kernels;
pub mod layers;
pub mod quant;
#[cfg(any(test, feature = "std"))]
pub mod quantize;
mod records;
mod scratch;
pub mod wire;

pub use blob::{BlobError, Model};
pub use code::{Code, Code128};
pub use encoder::{EncodeError, Encoder, Scratch};
