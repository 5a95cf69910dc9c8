//! Errors of the amflow library.
//!
//! One error type, [`AmflowError`], with one variant per kind of failure a caller may want to
//! tell apart. Weight-loading errors always name the first offending tensor, so that a weight
//! file that does not match the configuration is never applied silently.

use std::path::PathBuf;

/// The result type of the amflow library.
pub type Result<T, E = AmflowError> = std::result::Result<T, E>;

/// Everything that can go wrong in the amflow library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmflowError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not a valid safetensors file.
    #[error("{path}: not a valid safetensors file: {reason}")]
    SafeTensors {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// A tensor has a dtype that amflow cannot convert to f32.
    #[error("tensor `{name}`: unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The tensor's name.
        name: String,
        /// The dtype found in the file.
        dtype: String,
    },
    /// A tensor the model needs is not in the weight file or checkpoint.
    #[error("missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },
    /// A weight file or checkpoint holds a tensor the model has no place for.
    #[error("unexpected tensor `{name}` with shape {shape:?}: the model has no such parameter")]
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// A tensor exists but its shape does not match the model's.
    #[error("tensor `{name}` has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape found in the file.
        found: Vec<usize>,
    },
    /// A configuration is invalid (inconsistent sizes, unknown block index, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A configuration file could not be parsed.
    #[error("{path}: {reason}")]
    ConfigParse {
        /// The file (or `<string>` for in-memory input).
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// A model input has the wrong shape or size.
    #[error("invalid input: {0}")]
    Input(String),
    /// A checkpoint is malformed (no configuration, unreadable metadata, ...).
    #[error("{path}: invalid checkpoint: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Fetching weights by Hub name failed.
    #[error(transparent)]
    Hub(#[from] Box<amflow_hub::HubError>),
    /// A Hub repository's `config.json` disagrees with the configured architecture.
    #[error(
        "backbone.arch.{field} = {configured} disagrees with {repo}'s config.json ({hub}); \
         leave `backbone.arch` out to read it from config.json"
    )]
    HubArchitecture {
        /// The repository.
        repo: String,
        /// The differing field of `backbone.arch`.
        field: &'static str,
        /// Its configured value.
        configured: String,
        /// config.json's key and value.
        hub: String,
    },
}

impl AmflowError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
