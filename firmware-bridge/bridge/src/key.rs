//! Key files: where a deployment's frame key lives on a host.
//!
//! A key file holds the 128-bit [`FrameKey`] as 32 hexadecimal digits and a newline
//! ([`latentlink_runtime::wire::auth`] has the format). The key is secret: it is only ever
//! read from a file, never taken on a command line (where `ps` and shell histories show it),
//! and, as ssh does with private keys, a file that other users can read is refused.
//! [`generate`] writes a new key from the operating system's random source, readable by its
//! owner only, and never over an existing file.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use latentlink_runtime::wire::{FrameKey, KeyError, auth::KEY_LEN};

/// Longest key file read: the digits, whitespace and a comment-free margin.
const MAX_KEY_FILE: u64 = 256;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "key file {path} is accessible to other users (mode {mode:o}); restrict it with `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a key.
    #[error(
        "key file {path} does not hold a key: {source}; make one with `latentlink keygen --out FILE`"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeyError,
    },
    /// The file would be overwritten.
    #[error(
        "{path} exists; a key file is never overwritten (remove it first, or choose another path)"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
}

/// Reads the key in `path`.
///
/// # Errors
/// [`KeyFileError`]: unreadable, readable by others, or not a key.
pub fn read(path: &Path) -> Result<FrameKey, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    check_private(path, &file)?;
    let mut text = Vec::new();
    file.take(MAX_KEY_FILE).read_to_end(&mut text).map_err(io)?;
    FrameKey::from_hex(&text).map_err(|source| KeyFileError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new random key to `path` (which must not exist), readable by its owner only,
/// and returns it.
///
/// # Errors
/// [`KeyFileError::Exists`], [`KeyFileError::Random`] or [`KeyFileError::Io`].
pub fn generate(path: &Path) -> Result<FrameKey, KeyFileError> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(|e| KeyFileError::Random(e.to_string()))?;
    let key = FrameKey::from_bytes(&bytes);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(key)
}

#[cfg(unix)]
fn check_private(path: &Path, file: &std::fs::File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &std::fs::File) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.key");
        let key = generate(&path).unwrap();
        assert_eq!(read(&path).unwrap(), key);
        assert!(matches!(generate(&path), Err(KeyFileError::Exists { .. })));
        assert_eq!(read(&path).unwrap(), key, "the first key is intact");
        let other = generate(&dir.path().join("other.key")).unwrap();
        assert_ne!(other, key, "keys come from a random source");
    }

    #[cfg(unix)]
    #[test]
    fn keys_others_can_read_and_files_without_a_key_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open.key");
        std::fs::write(&path, "000102030405060708090a0b0c0d0e0f\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read(&path).unwrap_err();
        assert!(matches!(
            error,
            KeyFileError::Permissions { mode: 0o644, .. }
        ));
        assert!(error.to_string().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read(&path).unwrap().to_bytes(),
            core::array::from_fn(|i| i as u8)
        );
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::Format { .. })));
    }
}
