//! [`DatasetConfig`]: one serde-tagged choice of where clips come from (the synthetic
//! motion data or a manifest of stored files), so a TOML file or CLI can build any
//! dataset with [`DatasetConfig::build`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::files::{FileDatasetConfig, FileVideoDataset};
use super::manifest::ManifestSpec;
use super::VideoDataset;
use crate::error::Result;
use crate::synthetic::{SyntheticMotionConfig, SyntheticMotionDataset};

/// Where clips come from (TOML: `source = "synthetic"` or `source = "files"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum DatasetConfig {
    /// The in-memory synthetic motion data.
    Synthetic {
        /// Its configuration.
        #[serde(default)]
        synthetic: SyntheticMotionConfig,
    },
    /// Stored videos or frame folders listed by a manifest.
    Files {
        /// The annotations.
        manifest: ManifestSpec,
        /// Sampling, transforms, split.
        #[serde(default)]
        dataset: FileDatasetConfig,
    },
}

impl DatasetConfig {
    /// Builds the dataset (loading the manifest for `files`).
    ///
    /// # Errors
    /// Manifest loading errors and [`DataError::Config`](crate::DataError::Config).
    pub fn build(&self) -> Result<Arc<dyn VideoDataset>> {
        Ok(match self {
            DatasetConfig::Synthetic { synthetic } => {
                Arc::new(SyntheticMotionDataset::new(synthetic.clone())?)
            }
            DatasetConfig::Files { manifest, dataset } => {
                Arc::new(FileVideoDataset::from_spec(manifest, dataset.clone())?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Resize;
    use crate::sampling::Sampler;
    use crate::transform::{FlipPolicy, Normalization, Stage};

    #[test]
    fn full_toml_configs_parse() {
        let synthetic: DatasetConfig = toml::from_str(
            r#"
source = "synthetic"
[synthetic]
num_samples = 64
num_frames = 8
size = 56
classes = ["left", "right", "rotate_cw", "rotate_ccw"]
camera = { pan = 0.02, jitter = 0.005 }
"#,
        )
        .unwrap();
        let ds = synthetic.build().unwrap();
        assert_eq!(ds.len(), 64);
        assert_eq!(ds.class_names()[2], "rotate_cw");

        let files: DatasetConfig = toml::from_str(
            r#"
source = "files"
[manifest]
format = "something_something_v2"
labels = "labels.json"
annotations = "train.json"
root = "videos"
[dataset]
split = "train"
flip = { kind = "forbid" }
[dataset.read]
sampler = { kind = "segment", num_segments = 8 }
short_video = "loop"
resize = { short_side = 128 }
decode = { threads = 1, max_corrupt = 2 }
[dataset.transform]
normalization = "clip"
stages = [
  { op = "multi_scale_crop", size = 112 },
  { op = "horizontal_flip", p = 0.5 },
  { op = "rand_augment", num_ops = 2, magnitude = 9.0 },
]
"#,
        )
        .unwrap();
        let DatasetConfig::Files { dataset, .. } = &files else {
            panic!("files expected")
        };
        assert_eq!(dataset.read.sampler, Sampler::Segment { num_segments: 8 });
        assert_eq!(dataset.read.resize, Resize::ShortSide(128));
        assert_eq!(dataset.read.decode.max_corrupt, 2);
        assert_eq!(dataset.flip, FlipPolicy::Forbid);
        assert_eq!(dataset.transform.normalization, Normalization::Clip);
        assert!(matches!(
            dataset.transform.stages[0],
            Stage::MultiScaleCrop { size: 112, .. }
        ));
        // Unknown keys are rejected, not ignored.
        let typo = toml::from_str::<FileDatasetConfig>("splitt = \"train\"");
        assert!(typo.is_err());
    }
}
