//! The model id: the first 8 bytes (little-endian `u64`) of SHA-256 over the runtime blob
//! followed by `model.bpk`. It travels in every wire frame, so a code is never decoded by a
//! decoder it was not made for; change either file and the id changes. Written as 16
//! lowercase hex digits in manifests, logs and archives.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A model id (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub u64);

impl ModelId {
    /// The id of a blob and a model record.
    pub fn of(blob: &[u8], record: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(blob)
            .chain_update(record)
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(first))
    }

    /// The id as the `u64` frames carry.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why text is not a model id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a model id: expected 16 hex digits, as in a package's manifest.toml")]
pub struct ModelIdError {
    /// The text given.
    pub text: String,
}

impl FromStr for ModelId {
    type Err = ModelIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ModelIdError {
            text: text.to_owned(),
        };
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error());
        }
        u64::from_str_radix(text, 16).map(Self).map_err(|_| error())
    }
}

impl serde::Serialize for ModelId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ModelId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_both_files() {
        let id = ModelId::of(b"blob", b"record");
        assert_eq!(id, ModelId::of(b"blob", b"record"));
        assert_ne!(id, ModelId::of(b"blob!", b"record"));
        assert_ne!(id, ModelId::of(b"blob", b"record!"));
    }

    #[test]
    fn hex_round_trip_and_refusals() {
        let id = ModelId(0x0204_7e22_5cc0_6d67);
        assert_eq!(id.to_string(), "02047e225cc06d67");
        assert_eq!("02047e225cc06d67".parse(), Ok(id));
        for bad in [
            "",
            "2047e225cc06d67",
            "02047e225cc06d6g",
            "+2047e225cc06d67",
            "02047e225cc06d670",
        ] {
            assert!(bad.parse::<ModelId>().is_err(), "{bad}");
        }
    }
}
