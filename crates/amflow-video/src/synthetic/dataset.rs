//! The synthetic datasets: motion-labelled clips ([`SyntheticMotionDataset`]) and single frames
//! labelled by the main object's shape ([`SyntheticAppearanceDataset`]), both rendered in memory
//! from `(seed, index)`.

use amflow_rng::{derive_seed, SplitMix64};

use super::config::{ShapeKind, SyntheticMotionConfig};
use super::scene::build_scene;
use crate::dataset::VideoDataset;
use crate::error::{DataError, Result};
use crate::frame::{Clip, RgbFrame};
use crate::transform::FlipPolicy;

/// Clips of the synthetic motion dataset, by index.
#[derive(Debug, Clone)]
pub struct SyntheticMotionDataset {
    config: SyntheticMotionConfig,
    class_names: Vec<String>,
}

impl SyntheticMotionDataset {
    /// A dataset for `config`.
    ///
    /// # Errors
    /// [`DataError::Config`] when the configuration is invalid.
    pub fn new(config: SyntheticMotionConfig) -> Result<Self> {
        config.validate()?;
        let class_names = config
            .classes
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        Ok(SyntheticMotionDataset {
            config,
            class_names,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticMotionConfig {
        &self.config
    }

    /// Names of the appearance classes (shapes), indexing [`Clip::appearance_label`].
    pub fn appearance_class_names() -> Vec<String> {
        ShapeKind::ALL
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    }

    /// The flip policy that keeps labels right: mirrored clips swap left/right and
    /// clockwise/counter-clockwise (for the classes present).
    pub fn flip_policy(&self) -> FlipPolicy {
        let mut pairs = Vec::new();
        for (i, c) in self.config.classes.iter().enumerate() {
            if let Some(j) = self.config.classes.iter().position(|d| *d == c.mirrored()) {
                if i < j {
                    pairs.push([i, j]);
                }
            }
        }
        FlipPolicy::SwapLabels { pairs }
    }

    /// `(motion class index, shape index)` of sample `index`'s fixed scene, without
    /// rendering it.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`].
    pub fn labels(&self, index: usize) -> Result<(usize, usize)> {
        self.draw(index, None)
            .map(|(label, shape, _)| (label, shape))
    }

    /// Label, shape and the generator positioned after the shape draw, for the fixed
    /// scene (`call_seed` None) or a per-call one.
    fn draw(&self, index: usize, call_seed: Option<u64>) -> Result<(usize, usize, SplitMix64)> {
        if index >= self.config.num_samples {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.config.num_samples,
            });
        }
        let label = index % self.config.classes.len();
        let seed = match call_seed {
            Some(s) if self.config.fresh_each_call => {
                derive_seed(self.config.seed, &[index as u64, s])
            }
            _ => derive_seed(self.config.seed, &[index as u64]),
        };
        let mut rng = SplitMix64::new(seed);
        let shape = rng.below(ShapeKind::ALL.len());
        Ok((label, shape, rng))
    }

    /// The RGB frames of sample `index` (what [`VideoDataset::get`] normalises).
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`].
    pub fn render(&self, index: usize) -> Result<Vec<RgbFrame>> {
        self.render_frames(index, None, None)
            .map(|(frames, _)| frames)
    }

    /// Frames (all, or only frame `only`) and the shape label.
    fn render_frames(
        &self,
        index: usize,
        only: Option<usize>,
        call_seed: Option<u64>,
    ) -> Result<(Vec<RgbFrame>, usize)> {
        let (label, shape_index, mut rng) = self.draw(index, call_seed)?;
        let shape = ShapeKind::ALL[shape_index];
        let scene = build_scene(&self.config, self.config.classes[label], shape, &mut rng);
        let frames = match only {
            Some(t) => vec![t],
            None => (0..self.config.num_frames).collect(),
        };
        let frames = frames
            .into_iter()
            .map(|t| scene.render(self.config.size, t, self.config.noise))
            .collect();
        Ok((frames, shape_index))
    }
}

impl VideoDataset for SyntheticMotionDataset {
    fn len(&self) -> usize {
        self.config.num_samples
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The clip of sample `index`. The content depends only on the configuration's seed
    /// and `index`, unless [`SyntheticMotionConfig::fresh_each_call`] makes it depend on
    /// `seed` too.
    fn get(&self, index: usize, seed: u64) -> Result<Clip> {
        let label = index % self.config.classes.len().max(1);
        let (frames, shape) = self.render_frames(index, None, Some(seed))?;
        let (data, shape4) = Clip::from_frames(&frames)?;
        Ok(Clip {
            data,
            shape: shape4,
            norm: self.config.normalization.pixel_norm(),
            label,
            appearance_label: Some(shape),
            sample: index,
            view: 0,
        })
    }

    fn describe(&self, index: usize) -> String {
        format!(
            "synthetic motion sample {index} (seed {})",
            self.config.seed
        )
    }
}

/// Single frames of the synthetic data labelled by the main object's shape, for
/// pretraining an image model: index `i` is frame `i % T` of clip `i / T`; clips have
/// `T = 1` and `label` = the shape class.
#[derive(Debug, Clone)]
pub struct SyntheticAppearanceDataset {
    inner: SyntheticMotionDataset,
    class_names: Vec<String>,
}

impl SyntheticAppearanceDataset {
    /// Frames of the motion dataset built from `config`.
    ///
    /// # Errors
    /// [`DataError::Config`] when the configuration is invalid.
    pub fn new(config: SyntheticMotionConfig) -> Result<Self> {
        Ok(SyntheticAppearanceDataset {
            inner: SyntheticMotionDataset::new(config)?,
            class_names: SyntheticMotionDataset::appearance_class_names(),
        })
    }
}

impl VideoDataset for SyntheticAppearanceDataset {
    fn len(&self) -> usize {
        self.inner.len() * self.inner.config.num_frames
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn get(&self, index: usize, seed: u64) -> Result<Clip> {
        if index >= self.len() {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        let t = self.inner.config.num_frames;
        let motion = (index / t) % self.inner.config.classes.len().max(1);
        let (frames, shape) = self
            .inner
            .render_frames(index / t, Some(index % t), Some(seed))?;
        let (data, shape4) = Clip::from_frames(&frames)?;
        Ok(Clip {
            data,
            shape: shape4,
            norm: self.inner.config.normalization.pixel_norm(),
            label: shape,
            appearance_label: Some(motion),
            sample: index / t,
            view: index % t,
        })
    }

    fn describe(&self, index: usize) -> String {
        let t = self.inner.config.num_frames;
        format!("{} frame {}", self.inner.describe(index / t), index % t)
    }
}
