//! # latentlink bridge
//!
//! The host side: it listens on the links front-ends stream codes over, checks every frame,
//! knows which events arrived, were lost or were rejected, decodes codes back into events in
//! batches, and stores both. It also holds the device emulator, which runs the runtime's int8
//! encoder on the host exactly as firmware would.
//!
//! | module | what |
//! |---|---|
//! | [`link`] | link specs; serial, TCP and UDP receivers (reconnecting) and senders |
//! | [`ingest`] | bytes → runtime accumulator and frame parser → model check → accepted codes |
//! | [`accounting`] | per-stream counts: decoded, lost, rejected, duplicated, late |
//! | [`decode`] | decoders: burn (flex CPU, ndarray, wgpu) and tract on `decoder.onnx` |
//! | [`archive`] | the append-only, crash-safe code archive |
//! | [`sink`] | reconstructions in `.npy` chunks with their event ids |
//! | [`listen`] | the main loop: receive, account, archive, batch, decode, write, status file |
//! | [`emulate`] | the device emulator with fault injection |
//! | [`demo`] | the whole path in one command, over loopback TCP and a pseudo-terminal |
//! | [`feed`] | raw events to a front-end (board or QEMU), its codes checked against the host |
//! | [`qemu`] | the Cortex-M4 firmware on QEMU's mps2-an386: run, cost per event, footprint |
//!
//! Data flow: [`link::Receiver`] → [`ingest::Ingest`] → [`archive::ArchiveWriter`] and
//! batches → [`decode::Decoder`] → [`sink::ReconstructionSink`].

pub mod accounting;
pub mod archive;
pub mod decode;
pub mod demo;
pub mod emulate;
pub mod feed;
pub mod ingest;
pub mod link;
pub mod listen;
pub mod qemu;
pub mod sink;
