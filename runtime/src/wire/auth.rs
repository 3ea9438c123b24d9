//! Frame authentication: a per-deployment 128-bit key and a SipHash-2-4 tag over every byte
//! of a frame before the tag.
//!
//! A CRC only catches accidents: anyone who can reach a listener's port can write a frame
//! with a valid CRC. With a [`FrameKey`] shared by the front-ends and the host, each frame
//! carries a 64-bit SipHash-2-4 tag ([`TAG_LEN`] bytes); a frame without the key's tag is
//! refused before it can touch the accounting. SipHash is a pseudo-random function built for
//! short messages, so a tag forged without the key is right with probability 2^-64 per try,
//! and it is cheap on a 32-bit microcontroller (a few thousand instructions per frame on a
//! Cortex-M4; BENCHMARKS.md has the measured figure).
//!
//! What the tag does not do: hide the codes (there is no encryption), or tell a replayed
//! frame from the original. Replays are caught by the receiver's accounting instead: a
//! frame of the current run is a duplicate, one of an earlier run (an older boot nonce) is
//! stale.
//!
//! # Key text
//!
//! A key is written as 32 hexadecimal digits (16 bytes, first byte first), optionally
//! surrounded by whitespace; [`FrameKey::from_hex`] reads that form, which is what key files
//! hold.

use core::fmt;

use siphasher::sip::SipHasher24;

/// Bytes of the tag an authenticated frame carries.
pub const TAG_LEN: usize = 8;

/// Bytes of a key.
pub const KEY_LEN: usize = 16;

/// A deployment's frame key: 128 bits shared by its front-ends and its host.
///
/// `Debug` and `Display` never show the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameKey {
    bytes: [u8; KEY_LEN],
}

impl FrameKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self { bytes: *bytes }
    }

    /// The key's bytes (to write a key file).
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    /// Reads the text form: 32 hexadecimal digits, whitespace around them ignored.
    ///
    /// # Errors
    /// [`KeyError`] naming what is wrong (length or a non-hex character); never the key.
    pub fn from_hex(text: &[u8]) -> Result<Self, KeyError> {
        let digits = text.trim_ascii();
        if digits.len() != 2 * KEY_LEN {
            return Err(KeyError::Length {
                digits: digits.len(),
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(high), Some(low)) = (
                pair.first().copied().and_then(nibble),
                pair.get(1).copied().and_then(nibble),
            ) else {
                return Err(KeyError::NotHex);
            };
            *byte = high << 4 | low;
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn siphash(&self, bytes: &[u8]) -> u64 {
        SipHasher24::new_with_key(&self.bytes).hash(bytes)
    }

    /// The tag of `bytes`: SipHash-2-4 under this key, little-endian.
    pub fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        self.siphash(bytes).to_le_bytes()
    }

    /// Whether `tag` is the tag of `bytes`. The comparison is of two `u64`s, one instruction
    /// whatever the bytes, so its time says nothing about how much of a guess was right.
    pub fn verify(&self, bytes: &[u8], tag: [u8; TAG_LEN]) -> bool {
        self.siphash(bytes) == u64::from_le_bytes(tag)
    }
}

impl fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameKey(<secret>)")
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Why text is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 32 hexadecimal digits.
    Length {
        /// Characters found (whitespace around them not counted).
        digits: usize,
    },
    /// A character that is not a hexadecimal digit.
    NotHex,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Length { digits } => write!(
                f,
                "a frame key is {} hexadecimal digits, this has {digits} characters",
                2 * KEY_LEN
            ),
            Self::NotHex => f.write_str("a frame key holds only hexadecimal digits (0-9, a-f)"),
        }
    }
}

impl core::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_known_answer() {
        // The SipHash paper's test vector (Aumasson and Bernstein, 2012, appendix A): key
        // 00..0f, message 00..0e, SipHash-2-4 = 0xa129ca6149be45e5.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let message: [u8; 15] = core::array::from_fn(|i| i as u8);
        let key = FrameKey::from_bytes(&key);
        assert_eq!(key.tag(&message), 0xa129_ca61_49be_45e5u64.to_le_bytes());
        assert!(key.verify(&message, 0xa129_ca61_49be_45e5u64.to_le_bytes()));
        assert!(!key.verify(&message[..14], 0xa129_ca61_49be_45e5u64.to_le_bytes()));
    }

    #[test]
    fn hex_text() {
        let key = FrameKey::from_hex(b"  000102030405060708090a0B0c0d0e0F\n").unwrap();
        assert_eq!(key.to_bytes(), core::array::from_fn(|i| i as u8));
        assert_eq!(
            FrameKey::from_hex(b"0001"),
            Err(KeyError::Length { digits: 4 })
        );
        assert_eq!(
            FrameKey::from_hex(b"000102030405060708090a0b0c0d0e0g"),
            Err(KeyError::NotHex)
        );
        assert_eq!(std::format!("{key:?}"), "FrameKey(<secret>)");
    }
}
