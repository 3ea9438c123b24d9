//! # latentlink bridge
//!
//! The receiving side on a host: it listens on the links front-ends stream codes over, checks
//! every frame, knows which events arrived, were lost or were rejected, decodes codes back
//! into events in batches, and stores both. What produces traffic for it (the device
//! emulator, feeding a board, QEMU, the demo) lives in the rig crate, not here.
//!
//! | module | what |
//! |---|---|
//! | [`link`] | link specs; serial, TCP and UDP receivers (reconnecting) and senders |
//! | [`ingest`] | bytes → runtime accumulator and frame parser → key and model checks → accepted codes |
//! | [`key`] | the deployment's frame key in a private key file; `keygen` |
//! | [`accounting`] | per-stream counts: decoded, lost, rejected, duplicated, late |
//! | [`decode`] | decoders: burn (flex CPU, ndarray, wgpu) and tract on `decoder.onnx` |
//! | [`replay`] | codes → bits → decoder → sink, in batches: shared by `listen` and `decode` |
//! | [`archive`] | the append-only, crash-safe code archive (the `latentlink-archive` crate, re-exported) |
//! | [`sink`] | reconstructions in `.npy` or HDF5 chunks with their event ids |
//! | [`codes_h5`] | the codes themselves in HDF5, one growing dataset per run, for Python and h5py |
//! | [`listen`] | the main loop: receive, account, archive, batch, decode, write, status file |
//!
//! Data flow: [`link::Receiver`] → [`ingest::Ingest`] → [`archive::ArchiveWriter`] (and
//! [`codes_h5::CodesH5Writer`]) and batches → [`replay::Replay`] ([`decode::Decoder`] → [`sink::ReconstructionSink`]).

pub mod accounting;
pub use latentlink_archive as archive;
pub mod codes_h5;
pub mod decode;
pub mod ingest;
pub mod key;
pub mod link;
pub mod listen;
pub mod replay;
pub mod sink;
