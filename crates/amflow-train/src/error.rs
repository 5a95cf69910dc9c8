//! Errors of training and evaluation.

use std::path::PathBuf;

/// The result type of amflow-train.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The model library failed (config, weights, checkpoint, input).
    #[error(transparent)]
    Model(#[from] amflow::AmflowError),
    /// The data pipeline failed (under the `fail` bad-input policy, or a broken manifest).
    #[error(transparent)]
    Data(#[from] amflow_video::DataError),
    /// A device cannot be named or started (unknown name, backend not built, driver missing).
    #[error("{0}")]
    Device(String),
    /// The training config is invalid.
    #[error("invalid training config: {0}")]
    Config(String),
    /// A file of the run directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A run directory cannot be resumed (missing or inconsistent state).
    #[error("cannot resume {path}: {reason}")]
    Resume {
        /// The run directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Training was stopped by its observer (e.g. Ctrl-C); resume from the run directory.
    #[error("training interrupted after step {step}; resume with --resume")]
    Interrupted {
        /// The last optimizer step taken.
        step: u64,
    },
    /// A label is outside the model's classes (a manifest with more classes than the model).
    #[error("label {label} is outside the model's {classes} classes")]
    Label {
        /// The label.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// The loss became NaN or infinite.
    #[error("the loss is not finite at step {step}")]
    NonFiniteLoss {
        /// The optimizer step.
        step: u64,
    },
}

impl TrainError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
