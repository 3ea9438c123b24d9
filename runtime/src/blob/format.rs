//! The blob header's layout: its constants and field offsets (the table in [`super`]).

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"LLEB";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Bytes in the blob header.
pub const HEADER_LEN: usize = 32;
/// Bytes in a layer record header.
pub const RECORD_HEADER_LEN: usize = 8;
/// Bytes of the trailing checksum.
pub const CHECKSUM_LEN: usize = crate::checksum::CHECKSUM_LEN;
/// Most layers a blob may hold.
pub const MAX_LAYERS: u16 = 64;

/// Byte offsets of the header fields.
pub(crate) mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: Range<usize> = 4..6;
    pub const LAYER_COUNT: Range<usize> = 6..8;
    pub const TOTAL_LEN: Range<usize> = 8..12;
    pub const INPUT_FEATURES: Range<usize> = 12..16;
    pub const CODE_BITS: Range<usize> = 16..18;
    pub const RESERVED_A: Range<usize> = 18..20;
    pub const SCRATCH_BYTES: Range<usize> = 20..24;
    pub const RESERVED_B: Range<usize> = 24..32;
}
