//! The datasets a training config names: the synthetic motion data (generated in memory) or
//! video files listed by manifests, checked against the model's clip size.

use std::sync::Arc;

use amflow::ModelConfig;
use amflow_video::dataset::{FileVideoDataset, Split};
use amflow_video::synthetic::SyntheticMotionDataset;
use amflow_video::{Loader, LoaderConfig, VideoDataset};

use crate::config::{DataConfig, LoaderSettings};
use crate::error::{Result, TrainError};

/// Training and validation datasets.
pub struct Datasets {
    /// Training clips.
    pub train: Arc<dyn VideoDataset>,
    /// Validation clips (several views per sample for multi-view testing).
    pub val: Arc<dyn VideoDataset>,
}

/// Builds the datasets of `config` for `model`.
pub fn build(config: &DataConfig, model: &ModelConfig) -> Result<Datasets> {
    let [h, w] = model.image_size;
    match config {
        DataConfig::Synthetic { train, val_samples } => {
            if train.size != h || train.size != w || train.num_frames != model.num_frames {
                return Err(TrainError::Config(format!(
                    "synthetic clips are {n} frames of {s}x{s}, the model expects {t} frames of {h}x{w}",
                    n = train.num_frames,
                    s = train.size,
                    t = model.num_frames
                )));
            }
            if train.classes.len() != model.num_classes {
                return Err(TrainError::Config(format!(
                    "synthetic data has {} classes, the model {}",
                    train.classes.len(),
                    model.num_classes
                )));
            }
            let mut val = train.clone();
            val.seed = train.seed.wrapping_add(0x0005_EED0_F5A1);
            val.num_samples = *val_samples;
            Ok(Datasets {
                train: Arc::new(SyntheticMotionDataset::new(train.clone())?),
                val: Arc::new(SyntheticMotionDataset::new(val)?),
            })
        }
        DataConfig::Files {
            train,
            val,
            train_clips,
            val_clips,
        } => {
            let mut train_clips = train_clips.clone();
            train_clips.split = Split::Train;
            let train = FileVideoDataset::new(train.load()?, train_clips)?;
            let val = FileVideoDataset::new(val.load()?, val_clips.clone())?;
            if train.class_names().len() != model.num_classes {
                return Err(TrainError::Config(format!(
                    "the training manifest has {} classes, the model {}",
                    train.class_names().len(),
                    model.num_classes
                )));
            }
            Ok(Datasets {
                train: Arc::new(train),
                val: Arc::new(val),
            })
        }
    }
}

/// A loader called `name` (in the logs) over `dataset` with the run's settings.
pub fn loader(
    name: &str,
    dataset: Arc<dyn VideoDataset>,
    settings: &LoaderSettings,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
) -> Result<Loader> {
    Ok(Loader::new(
        dataset,
        LoaderConfig {
            batch_size,
            workers: settings.workers,
            prefetch: settings.prefetch,
            shuffle,
            drop_last: false,
            seed,
            bad_input: settings.bad_input,
            name: name.into(),
            ..LoaderConfig::default()
        },
    )?)
}
