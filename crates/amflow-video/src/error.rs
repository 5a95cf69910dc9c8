//! Error type of the video pipeline: one [`DataError`] enum whose variants are the
//! documented failure kinds (missing file, empty file, undecodable file, bad manifest,
//! bad configuration, ...). Every fallible public function of this crate returns it.

use std::path::PathBuf;

/// Everything that can go wrong while reading, sampling or transforming video data.
///
/// The variants that describe a single broken input file ([`DataError::Missing`],
/// [`DataError::Empty`], [`DataError::Open`], [`DataError::NoVideoStream`],
/// [`DataError::Decode`], [`DataError::TooFewFrames`], [`DataError::Corrupt`]) are the ones the loader's
/// [`BadInputPolicy::Skip`](crate::BadInputPolicy::Skip) skips; see
/// [`DataError::is_bad_input`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file does not exist.
    #[error("{path}: file is missing")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but has zero bytes.
    #[error("{path}: file is empty (0 bytes)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// FFmpeg could not open the container (unknown format, corrupt header, random bytes).
    #[error("{path}: cannot open container: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// FFmpeg's message.
        reason: String,
    },
    /// The container has no video stream (e.g. audio only).
    #[error("{path}: no video stream")]
    NoVideoStream {
        /// The file.
        path: PathBuf,
    },
    /// Decoding failed (corrupt or truncated stream, unsupported codec).
    #[error("{path}: cannot decode: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The video decoded to fewer frames than the sampler requires and the
    /// short-video rule is [`ShortVideoRule::Reject`](crate::ShortVideoRule::Reject),
    /// or it decoded to no frame at all.
    #[error("{path}: only {got} decodable frames, {needed} needed")]
    TooFewFrames {
        /// The file (or frame folder).
        path: PathBuf,
        /// Frames available.
        got: usize,
        /// Frames required.
        needed: usize,
    },
    /// A record of a prepared dataset (`amflow data prepare`) is damaged: its shard is
    /// truncated, a checksum does not match, or a stored frame does not decode.
    #[error("{path}: damaged prepared record: {reason}")]
    Corrupt {
        /// The shard file, with the source video the record came from.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A manifest or annotation file could not be parsed.
    #[error("{path}:{line}: bad annotation: {reason}")]
    Manifest {
        /// The annotation file.
        path: PathBuf,
        /// 1-based line number (0 when not line-oriented, e.g. JSON).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A dataset index is past the end of the dataset.
    #[error("index {index} out of range for dataset of length {len}")]
    IndexOutOfRange {
        /// Requested index.
        index: usize,
        /// Dataset length.
        len: usize,
    },
    /// Clips of one batch have different shapes.
    #[error("clip shape {got:?} differs from the batch's {expected:?}")]
    ShapeMismatch {
        /// Shape of the batch so far.
        expected: [usize; 4],
        /// Shape of the offending clip.
        got: [usize; 4],
    },
    /// Encoding (writing synthetic videos) failed.
    #[error("{path}: cannot encode: {reason}")]
    Encode {
        /// The output file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// An I/O error outside FFmpeg (reading a manifest, listing a frame folder).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl DataError {
    /// Whether this error describes one broken or unusable input file (as opposed to
    /// a configuration or programming error). These are the errors that
    /// [`BadInputPolicy::Skip`](crate::BadInputPolicy::Skip) skips.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DataError::Missing { .. }
                | DataError::Empty { .. }
                | DataError::Open { .. }
                | DataError::NoVideoStream { .. }
                | DataError::Decode { .. }
                | DataError::TooFewFrames { .. }
                | DataError::Corrupt { .. }
                | DataError::Io { .. }
        )
    }

    /// A short machine-friendly name of the kind ("missing", "empty", "open", ...),
    /// used in reports and summaries.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DataError::Missing { .. } => "missing",
            DataError::Empty { .. } => "empty",
            DataError::Open { .. } => "unreadable-container",
            DataError::NoVideoStream { .. } => "no-video-stream",
            DataError::Decode { .. } => "undecodable",
            DataError::TooFewFrames { .. } => "too-few-frames",
            DataError::Corrupt { .. } => "damaged-prepared-record",
            DataError::Manifest { .. } => "bad-manifest",
            DataError::Config(_) => "bad-config",
            DataError::IndexOutOfRange { .. } => "index-out-of-range",
            DataError::ShapeMismatch { .. } => "shape-mismatch",
            DataError::Encode { .. } => "encode",
            DataError::Io { .. } => "io",
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
