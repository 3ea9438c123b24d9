//! The one checksum of the runtime's formats: CRC-32C (Castagnoli), little-endian on the
//! wire and in blobs. Blobs ([`crate::blob`]), wire frames and event packets ([`crate::wire`])
//! all compute their checksums here, so a change of polynomial or byte order
//! happens in one place and the known-answer test below catches it.

/// The CRC-32C algorithm (the iSCSI polynomial, reflected, init and xor-out `0xFFFF_FFFF`).
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Bytes of a stored checksum.
pub const CHECKSUM_LEN: usize = 4;

/// The CRC-32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // The standard check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
