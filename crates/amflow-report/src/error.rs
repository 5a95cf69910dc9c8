//! Error type shared by every writer and renderer in this crate.
//!
//! Bad input (empty series, mismatched lengths, non-square matrices, zero
//! sizes) is reported as [`ReportError::InvalidInput`]; nothing in this crate
//! panics on caller data.

use std::path::PathBuf;

/// Errors produced while building or writing a report artefact.
///
/// New kinds may be added, so matches need a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file or directory could not be created, written or read.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path that was being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The PNG encoder rejected the image.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    /// The caller passed data the function cannot work with.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A file being read back (an event file) is truncated or fails its checksums.
    #[error("corrupt file {path}: {msg}")]
    Corrupt {
        /// The file being read.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        ReportError::InvalidInput(msg.into())
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
