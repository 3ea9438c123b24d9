//! Byte layouts of the fixed-size records inside layer bodies, shared by the layer views
//! ([`crate::layers`], which parse and validate them) and the vector kernels
//! ([`crate::kernels`], which load them directly). A leaf module, so that neither side
//! imports the other for a length.

/// Bytes of one output channel's record: bias `i32`, requantisation multiplier `i32` and
/// shift `i32`, little-endian (see [`crate::layers::ChannelParams`]).
pub const CHANNEL_RECORD_LEN: usize = 12;

/// Bytes of one input feature's record (see [`crate::layers::input`]).
pub const FEATURE_RECORD_LEN: usize = 20;
