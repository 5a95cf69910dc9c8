//! Checkpoints written by training, with their whole input contract: what `predict`, `eval`
//! and `flow` need to feed a model the clips it was trained on, stored next to the weights.
//!
//! On top of [`amflow::checkpoint`] (trained tensors + model config, which fixes frames per
//! clip and input size), training adds metadata:
//! - `classes`: the class names, JSON list, in label order;
//! - `input`: the [`InputContract`] as TOML: the validation clip pipeline (sampler, short-video
//!   rule, decode-time resize, spatial stages, normalisation mean/std, test views);
//! - `epoch`, `step`: where the run stood.
//!
//! This module is the one place that writes and reads them (`docs/checkpoint-format.md`).

use std::collections::BTreeMap;
use std::path::Path;

use amflow::checkpoint::{self as model_checkpoint, Loaded};
use amflow::{AmFlowModel, ModelConfig};
use amflow_video::dataset::{FileDatasetConfig, Split};
use amflow_video::frame::Resize;
use amflow_video::sampling::Sampler;
use amflow_video::source::ClipReadConfig;
use amflow_video::transform::{Stage, TransformConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::DataConfig;
use crate::error::{Result, TrainError};

/// Metadata key of the class names.
pub const CLASSES_KEY: &str = "classes";
/// Metadata key of the input contract.
pub const INPUT_KEY: &str = "input";

/// How a model's input clips are made from a video: the validation pipeline of its training
/// run, and the names of its classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputContract {
    /// Frame sampling, short-video rule, decode-time resize and decoder settings, spatial
    /// stages, normalisation (mean and std), test views.
    pub clips: FileDatasetConfig,
}

impl InputContract {
    /// The contract of a run on `data` for `model`: for video files, the validation clip
    /// settings; for the synthetic data (rendered at the model's size), `T` segment-centre
    /// frames, short side resized to the input and centre-cropped, with the synthetic data's
    /// normalisation.
    pub fn of_run(data: &DataConfig, model: &ModelConfig) -> Self {
        let clips = match data {
            DataConfig::Files { val_clips, .. } => val_clips.clone(),
            DataConfig::Synthetic { train, .. } => {
                let size = model.image_size[0].min(model.image_size[1]);
                FileDatasetConfig {
                    read: ClipReadConfig {
                        sampler: Sampler::Segment {
                            num_segments: model.num_frames,
                        },
                        resize: Resize::ShortSide(size),
                        ..ClipReadConfig::default()
                    },
                    transform: TransformConfig {
                        stages: vec![Stage::CenterCrop { size }],
                        normalization: train.normalization,
                    },
                    split: Split::Test,
                    temporal_views: 1,
                    ..FileDatasetConfig::default()
                }
            }
        };
        Self { clips }
    }

    /// The contract as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("an input contract serialises to TOML")
    }

    /// Parses a contract (a checkpoint's, or an explicit override file's).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            TrainError::Config(format!(
                "input contract: {}",
                e.message().replace('\n', " ")
            ))
        })
    }
}

/// Where a training run stood when it wrote a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Epochs finished.
    pub epoch: u64,
    /// Optimizer steps taken.
    pub step: u64,
}

/// Writes `model` with its class names and input contract to `path` (atomically).
pub fn save(
    model: &AmFlowModel,
    path: &Path,
    classes: &[String],
    input: &InputContract,
    at: Position,
) -> Result<()> {
    let meta = BTreeMap::from([
        ("epoch".to_string(), at.epoch.to_string()),
        ("step".to_string(), at.step.to_string()),
        (
            CLASSES_KEY.to_string(),
            serde_json::to_string(classes).expect("serialisable"),
        ),
        (INPUT_KEY.to_string(), input.to_toml()),
    ]);
    Ok(model_checkpoint::save(model, path, &meta)?)
}

/// A checkpoint with what training stored beside the weights.
#[derive(Debug)]
pub struct Trained {
    /// The model.
    pub model: AmFlowModel,
    /// Class names in label order (numbers when the checkpoint names none).
    pub classes: Vec<String>,
    /// The input contract, when the checkpoint has one (`amflow init` writes none).
    pub input: Option<InputContract>,
    /// All metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Trained {
    /// The input contract, or an error saying how to give one.
    pub fn input_contract(&self, path: &Path) -> Result<&InputContract> {
        self.input.as_ref().ok_or_else(|| {
            TrainError::Config(format!(
                "{} has no input contract (it was not written by `amflow train`); give one \
                 with --input FILE (a TOML `[clips]` table: sampler, resize, stages, \
                 normalization)",
                path.display()
            ))
        })
    }
}

/// Loads a checkpoint and its training metadata. A `classes` entry whose length differs from
/// the model's classes, or an unreadable `input`, is an error naming the file.
pub fn load(path: &Path, device: &Device) -> Result<Trained> {
    let Loaded {
        model, metadata, ..
    } = model_checkpoint::load(path, device)?;
    let bad = |reason: String| {
        TrainError::Model(amflow::AmflowError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        })
    };
    let n = model.config.num_classes;
    let classes = match metadata.get(CLASSES_KEY) {
        Some(text) => {
            let names: Vec<String> = serde_json::from_str(text)
                .map_err(|e| bad(format!("`{CLASSES_KEY}` metadata: {e}")))?;
            if names.len() != n {
                return Err(bad(format!(
                    "{} class names for a model of {n} classes",
                    names.len()
                )));
            }
            names
        }
        None => (0..n).map(|k| k.to_string()).collect(),
    };
    let input = metadata
        .get(INPUT_KEY)
        .map(|text| InputContract::from_toml(text).map_err(|e| bad(e.to_string())))
        .transpose()?;
    Ok(Trained {
        model,
        classes,
        input,
        metadata,
    })
}
