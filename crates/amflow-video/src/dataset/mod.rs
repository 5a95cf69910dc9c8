//! Datasets: the [`VideoDataset`] trait the loader consumes, the [`Manifest`] (a list of
//! stored samples with labels) and its parsers for the annotation formats of
//! Kinetics-400, Something-Something v2, Toyota Smarthome and generic `path label`
//! lists, and [`FileVideoDataset`] which reads a manifest's files as clips.

mod config;
mod files;
mod kinetics;
mod list;
mod manifest;
mod smarthome;
mod ssv2;

pub use config::DatasetConfig;
pub use files::{FileDatasetConfig, FileVideoDataset, Split, MAX_CLIP_FRAMES};
pub use kinetics::KineticsLayout;
pub use manifest::{Manifest, ManifestEntry, ManifestSpec};
pub use smarthome::{
    SmarthomeSplit, SMARTHOME_CLASSES, SMARTHOME_CV1_TRAIN_CAMERAS, SMARTHOME_CV2_TRAIN_CAMERAS,
    SMARTHOME_CV_CLASSES, SMARTHOME_CV_TEST_CAMERAS, SMARTHOME_CV_VALIDATION_CAMERAS,
    SMARTHOME_TEST_SUBJECTS, SMARTHOME_TRAIN_SUBJECTS,
};

use crate::error::Result;
use crate::frame::Clip;

/// A labelled collection of clips addressable by index; what the [`Loader`](crate::Loader)
/// batches. Implementations must be deterministic: the same `(index, seed)` gives the
/// same clip.
pub trait VideoDataset: Send + Sync {
    /// Number of clips (test views count separately).
    fn len(&self) -> usize;

    /// Whether there is no clip.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Names of the action classes; labels index into it.
    fn class_names(&self) -> &[String];

    /// Clip `index`, with every random choice (temporal offset, crop, flip, augmentation)
    /// drawn from `seed`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`](crate::DataError::IndexOutOfRange), or any
    /// bad-input kind for a sample whose file cannot be used.
    fn get(&self, index: usize, seed: u64) -> Result<Clip>;

    /// A human-readable name of the sample behind `index` (its file path), for warnings.
    fn describe(&self, index: usize) -> String;
}
