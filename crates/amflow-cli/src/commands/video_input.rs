//! Turning a video file (or frame folder) into the clips a model expects, as its checkpoint's
//! input contract says ([`amflow_train::checkpoint::InputContract`]: sampler, decode-time
//! resize, spatial stages, normalisation, test views), through amflow-video's test-split
//! pipeline: the same code that made the training run's validation clips.

use std::path::Path;

use amflow::{HostTensor, ModelConfig};
use amflow_train::checkpoint::{InputContract, Trained};
use amflow_video::dataset::{FileDatasetConfig, FileVideoDataset, Split};
use amflow_video::source::MediaKind;
use amflow_video::transform::Normalization;
use amflow_video::{Manifest, ManifestEntry, VideoDataset};
use anyhow::{bail, Context, Result};

/// The contract to use: the one in `file` when given (an explicit override), else the
/// checkpoint's.
pub fn contract(
    trained: &Trained,
    file: Option<&Path>,
    checkpoint: &Path,
) -> Result<InputContract> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(InputContract::from_toml(&text).with_context(|| path.display().to_string())?)
        }
        None => Ok(trained.input_contract(checkpoint)?.clone()),
    }
}

/// Every test view of `path`, each `[1, T, 3, H, W]`, made as `contract` says (in the test
/// split: deterministic views); `normalization` replaces the contract's when given.
pub fn read_views(
    path: &Path,
    model: &ModelConfig,
    contract: &InputContract,
    normalization: Option<Normalization>,
) -> Result<Vec<HostTensor>> {
    let media = if path.is_dir() {
        MediaKind::FrameFolder
    } else {
        MediaKind::Video
    };
    let manifest = Manifest {
        entries: vec![ManifestEntry {
            path: path.to_path_buf(),
            label: 0,
            media,
        }],
        class_names: vec!["?".into()],
    };
    let mut clips: FileDatasetConfig = contract.clips.clone();
    clips.split = Split::Test;
    if let Some(n) = normalization {
        clips.transform.normalization = n;
    }
    let dataset = FileVideoDataset::new(manifest, clips)?;
    let mut views = Vec::with_capacity(dataset.len());
    for view in 0..dataset.len() {
        // Every file error of amflow-video names the file already.
        let clip = dataset.get(view, 0)?;
        let [t, c, h, w] = clip.shape;
        if [h, w] != model.image_size || t != model.num_frames {
            bail!(
                "the input contract makes clips of {t} frames of {h}x{w}, the model takes {} of \
                 {}x{}",
                model.num_frames,
                model.image_size[0],
                model.image_size[1]
            );
        }
        views.push(HostTensor::new(vec![1, t, c, h, w], clip.normalized())?);
    }
    Ok(views)
}
