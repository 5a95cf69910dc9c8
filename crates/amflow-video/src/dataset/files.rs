//! [`FileVideoDataset`]: a [`Manifest`] of stored videos or frame folders read as clips
//! (sample, decode, transform, normalise), with multi-view test expansion: in the test
//! split each sample yields `temporal_views x spatial_views` clips, index
//! `sample * views + temporal * spatial_views + spatial`.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::manifest::{Manifest, ManifestSpec};
use super::VideoDataset;
use crate::error::{DataError, Result};
use crate::frame::Clip;
use crate::prepared::PreparedStore;
use crate::sampling::SampleMode;
use crate::source::{read_clip_frames, ClipReadConfig};
use crate::transform::{FlipPolicy, TransformConfig};
use amflow_rng::SplitMix64;

/// Training (random sampling and augmentation) or test (deterministic views).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// One randomly sampled clip per sample.
    #[default]
    Train,
    /// `temporal_views x spatial_views` deterministic clips per sample.
    Test,
}

/// How a [`FileVideoDataset`] turns files into clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileDatasetConfig {
    /// Sampling, decode-time resize and decoder settings.
    pub read: ClipReadConfig,
    /// Spatial stages and normalisation.
    pub transform: TransformConfig,
    /// Train or test behaviour.
    pub split: Split,
    /// Temporal clips per sample in the test split (ignored in training).
    pub temporal_views: usize,
    /// What a horizontal flip does to labels (forbid it for Something-Something v2).
    pub flip: FlipPolicy,
}

impl Default for FileDatasetConfig {
    fn default() -> Self {
        FileDatasetConfig {
            read: ClipReadConfig::default(),
            transform: TransformConfig::default(),
            split: Split::Train,
            temporal_views: 1,
            flip: FlipPolicy::Allow,
        }
    }
}

/// At most this many frames per clip: the sampler's frame count sizes the index list and
/// the clip buffers, so a config's number must not (a 224x224 clip this long is 38 GB).
pub const MAX_CLIP_FRAMES: usize = 1 << 16;

/// Clips read from the files of a [`Manifest`].
#[derive(Debug, Clone)]
pub struct FileVideoDataset {
    manifest: Manifest,
    config: FileDatasetConfig,
    /// Where the frames come from when the manifest is a prepared copy.
    prepared: Option<Arc<PreparedStore>>,
}

impl FileVideoDataset {
    /// A dataset over `manifest`.
    ///
    /// # Errors
    /// [`DataError::Config`] for an invalid transform, zero or more than
    /// [`MAX_CLIP_FRAMES`] frames per clip, zero test views or more clips than a `usize`
    /// counts, or a label outside the class list.
    pub fn new(manifest: Manifest, config: FileDatasetConfig) -> Result<Self> {
        config.transform.validate()?;
        if config.read.sampler.num_frames() == 0 {
            return Err(DataError::Config("sampler takes zero frames".into()));
        }
        if config.read.sampler.num_frames() > MAX_CLIP_FRAMES {
            return Err(DataError::Config(format!(
                "sampler takes {} frames per clip, more than {MAX_CLIP_FRAMES}",
                config.read.sampler.num_frames()
            )));
        }
        if config.split == Split::Test && config.temporal_views == 0 {
            return Err(DataError::Config(
                "temporal_views must be at least 1".into(),
            ));
        }
        let clips = config
            .temporal_views
            .checked_mul(config.transform.spatial_views())
            .and_then(|views| views.checked_mul(manifest.entries.len()));
        if config.split == Split::Test && clips.is_none() {
            return Err(DataError::Config(format!(
                "temporal_views {} x {} spatial views x {} samples is too many clips",
                config.temporal_views,
                config.transform.spatial_views(),
                manifest.entries.len()
            )));
        }
        if let Some(e) = manifest
            .entries
            .iter()
            .find(|e| e.label >= manifest.class_names.len())
        {
            return Err(DataError::Config(format!(
                "{}: label {} but only {} classes",
                e.path.display(),
                e.label,
                manifest.class_names.len()
            )));
        }
        Ok(FileVideoDataset {
            manifest,
            config,
            prepared: None,
        })
    }

    /// The dataset a manifest spec names: the files it lists, or for
    /// [`ManifestSpec::Prepared`] the prepared copy's records (same sampling, transforms,
    /// views and errors as the source files; the decoder settings do not apply).
    ///
    /// # Errors
    /// Manifest loading errors and those of [`FileVideoDataset::new`].
    pub fn from_spec(spec: &ManifestSpec, config: FileDatasetConfig) -> Result<Self> {
        match spec {
            ManifestSpec::Prepared { dir } => {
                let store = PreparedStore::open(dir)?;
                let mut ds = FileVideoDataset::new(store.manifest().clone(), config)?;
                ds.prepared = Some(Arc::new(store));
                Ok(ds)
            }
            spec => FileVideoDataset::new(spec.load()?, config),
        }
    }

    /// The prepared copy the clips are read from, if any.
    pub fn prepared(&self) -> Option<&PreparedStore> {
        self.prepared.as_deref()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Clips per sample (1 in training).
    pub fn views(&self) -> usize {
        match self.config.split {
            Split::Train => 1,
            Split::Test => self.config.temporal_views * self.config.transform.spatial_views(),
        }
    }
}

impl VideoDataset for FileVideoDataset {
    fn len(&self) -> usize {
        self.manifest.entries.len() * self.views()
    }

    fn class_names(&self) -> &[String] {
        &self.manifest.class_names
    }

    fn get(&self, index: usize, seed: u64) -> Result<Clip> {
        let views = self.views();
        let entry = self
            .manifest
            .entries
            .get(index / views)
            .ok_or(DataError::IndexOutOfRange {
                index,
                len: self.len(),
            })?;
        let view = index % views;
        let spatial = self.config.transform.spatial_views();
        let mode = match self.config.split {
            Split::Train => SampleMode::Train,
            Split::Test => SampleMode::Test {
                view: view / spatial,
                views: self.config.temporal_views,
            },
        };
        let mut rng = SplitMix64::new(seed);
        let frames = match &self.prepared {
            Some(store) => store.read_clip(index / views, &self.config.read, mode, &mut rng)?,
            None => read_clip_frames(&entry.path, entry.media, &self.config.read, mode, &mut rng)?,
        };
        let (frames, label) = self.config.transform.apply(
            frames,
            entry.label,
            &self.config.flip,
            view % spatial,
            &mut rng,
        )?;
        let (data, shape) = Clip::from_frames(&frames)?;
        Ok(Clip {
            data,
            shape,
            norm: self.config.transform.normalization.pixel_norm(),
            label,
            appearance_label: None,
            sample: index / views,
            view,
        })
    }

    fn describe(&self, index: usize) -> String {
        self.manifest
            .entries
            .get(index / self.views().max(1))
            .map(|e| e.path.display().to_string())
            .unwrap_or_else(|| format!("<index {index} out of range>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ManifestEntry;
    use crate::sampling::Sampler;
    use crate::source::MediaKind;

    fn manifest() -> Manifest {
        Manifest {
            entries: vec![
                ManifestEntry {
                    path: "a.mp4".into(),
                    label: 0,
                    media: MediaKind::Video,
                };
                3
            ],
            class_names: vec!["a".into()],
        }
    }

    /// Fuzz-harness crashes (dataset_config): `temporal_views = 2^63 - 1` in the test split
    /// overflowed `samples x views` in `len()`; `num_segments = 10^8` allocated the index
    /// list of a clip (800 MB) from the config's number.
    #[test]
    fn config_numbers_that_cannot_be_clips_are_errors() {
        let views: FileDatasetConfig =
            toml::from_str("split = \"test\"\ntemporal_views = 9223372036854775807").unwrap();
        let e = FileVideoDataset::new(manifest(), views).unwrap_err();
        assert!(e.to_string().contains("too many clips"), "{e}");
        let mut long = FileDatasetConfig::default();
        long.read.sampler = Sampler::Segment {
            num_segments: 100_000_000,
        };
        let e = FileVideoDataset::new(manifest(), long.clone()).unwrap_err();
        assert!(e.to_string().contains("frames per clip"), "{e}");
        long.read.sampler = Sampler::Segment {
            num_segments: MAX_CLIP_FRAMES,
        };
        long.split = Split::Test;
        long.temporal_views = 5;
        let ds = FileVideoDataset::new(manifest(), long).unwrap();
        assert_eq!(ds.len(), 15);
    }
}
