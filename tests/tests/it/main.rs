//! Workspace integration tests, in one binary (burn, tract and every decoder backend are
//! linked once): the shipped model's consistency, every link end to end, the optional
//! decoders, the whole path from training to decoding, and the firmware on QEMU.

mod firmware;
mod gpu_decoders;
mod links;
mod shipped_model;
mod whole_path;
