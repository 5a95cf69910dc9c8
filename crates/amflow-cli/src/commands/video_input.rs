//! Turning a video file (or frame folder) into the clip a model expects: `T` frames sampled at
//! the centre of `T` equal segments, short side resized to the model's input and centre-cropped,
//! normalised with the ImageNet statistics (DINOv2) or CLIP's, through amflow-video.

use std::path::Path;

use amflow::backbone::BackboneFamily;
use amflow::{HostTensor, ModelConfig};
use amflow_video::dataset::{FileDatasetConfig, FileVideoDataset, Split};
use amflow_video::frame::Resize;
use amflow_video::sampling::Sampler;
use amflow_video::source::{ClipReadConfig, MediaKind};
use amflow_video::transform::{Normalization, Stage, TransformConfig};
use amflow_video::{Manifest, ManifestEntry, VideoDataset};
use anyhow::{bail, Result};

/// The normalisation a model's backbone family expects.
pub fn normalization_for(config: &ModelConfig) -> Normalization {
    match config.backbone.arch.family {
        BackboneFamily::Dinov2 => Normalization::ImageNet,
        BackboneFamily::Clip => Normalization::Clip,
    }
}

/// The test-view clip of `path` for `config`, `[1, T, 3, H, W]`, normalised with `norm`.
pub fn read_clip(path: &Path, config: &ModelConfig, norm: Normalization) -> Result<HostTensor> {
    let [h, w] = config.image_size;
    if h != w {
        bail!("video input needs a square model input, the model expects {h}x{w}");
    }
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
    let dataset = FileVideoDataset::new(
        manifest,
        FileDatasetConfig {
            read: ClipReadConfig {
                sampler: Sampler::Segment {
                    num_segments: config.num_frames,
                },
                resize: Resize::ShortSide(h),
                ..ClipReadConfig::default()
            },
            transform: TransformConfig {
                stages: vec![Stage::CenterCrop { size: h }],
                normalization: norm,
            },
            split: Split::Test,
            temporal_views: 1,
            ..FileDatasetConfig::default()
        },
    )?;
    // Every file error of amflow-video names the file already.
    let clip = dataset.get(0, 0)?;
    let [t, c, ch, cw] = clip.shape;
    Ok(HostTensor::new(vec![1, t, c, ch, cw], clip.data)?)
}
