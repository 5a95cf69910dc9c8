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

/// The number of classes of the training data of `config` (what a model config that leaves
/// `num_classes` out gets).
pub fn train_class_count(config: &DataConfig) -> Result<usize> {
    Ok(match config {
        DataConfig::Synthetic { train, .. } => train.classes.len(),
        DataConfig::Files { train, .. } => train.load()?.class_names.len(),
    })
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
            let train = FileVideoDataset::from_spec(train, train_clips)?;
            let val = FileVideoDataset::from_spec(val, val_clips.clone())?;
            if train.class_names().len() != model.num_classes {
                return Err(TrainError::Config(format!(
                    "the training manifest has {} classes, the model {}",
                    train.class_names().len(),
                    model.num_classes
                )));
            }
            same_classes(train.class_names(), val.class_names())?;
            Ok(Datasets {
                train: Arc::new(train),
                val: Arc::new(val),
            })
        }
    }
}

/// Checks that the validation manifest names the training manifest's classes in the same
/// order: each manifest numbers its own classes, so any difference would shift labels.
///
/// # Errors
/// [`TrainError::Config`] naming the first class that differs.
pub fn same_classes(train: &[String], val: &[String]) -> Result<()> {
    if let Some((i, (t, v))) = train.iter().zip(val).enumerate().find(|(_, (t, v))| t != v) {
        return Err(TrainError::Config(format!(
            "the validation manifest's class {i} is `{v}`, the training manifest's is `{t}`: \
             both must list the same classes in the same order"
        )));
    }
    if train.len() != val.len() {
        let (longer, name, extra) = if train.len() > val.len() {
            ("training", &train[val.len()], val.len())
        } else {
            ("validation", &val[train.len()], train.len())
        };
        return Err(TrainError::Config(format!(
            "the {longer} manifest has {} more classes, from class {extra} `{name}` on: both \
             must list the same classes",
            train.len().abs_diff(val.len())
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::same_classes;

    #[test]
    fn class_lists_must_agree_and_the_first_difference_is_named() {
        let names = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(same_classes(&names("a b c"), &names("a b c")).is_ok());
        let e = same_classes(&names("a b c"), &names("a c b"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("class 1 is `c`") && e.contains("is `b`"), "{e}");
        let e = same_classes(&names("a b c"), &names("a b"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("training manifest has 1 more") && e.contains("`c`"),
            "{e}"
        );
        let e = same_classes(&names("a"), &names("a z"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("validation manifest has 1 more") && e.contains("`z`"),
            "{e}"
        );
    }
}
