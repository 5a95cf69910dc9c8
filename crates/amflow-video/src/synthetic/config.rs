//! The synthetic data's settings: the motion classes, the main object's shapes, the camera
//! motion and the dataset's configuration.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::transform::Normalization;

/// At most this many values (`num_frames x size x size x 3`, 1 GiB of f32) in a synthetic
/// clip.
pub const MAX_SYNTHETIC_CLIP_VALUES: usize = 1 << 28;

/// The motion classes. Directions are in image coordinates of the scene (x right,
/// y down), relative to the background, so camera motion does not change the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionClass {
    /// The object does not move relative to the background.
    Static,
    /// Translates to the left.
    Left,
    /// Translates to the right.
    Right,
    /// Translates up.
    Up,
    /// Translates down.
    Down,
    /// Rotates clockwise (as seen on screen) about its centre.
    RotateCw,
    /// Rotates counter-clockwise.
    RotateCcw,
    /// The whole scene is magnified over time (camera zooms in).
    ZoomIn,
    /// The whole scene shrinks over time (camera zooms out).
    ZoomOut,
    /// Only the object grows (it comes towards the camera); the background keeps its scale.
    Approach,
    /// Only the object shrinks (it moves away).
    Leave,
}

impl MotionClass {
    /// All classes in their default label order.
    pub const ALL: [MotionClass; 11] = [
        MotionClass::Static,
        MotionClass::Left,
        MotionClass::Right,
        MotionClass::Up,
        MotionClass::Down,
        MotionClass::RotateCw,
        MotionClass::RotateCcw,
        MotionClass::ZoomIn,
        MotionClass::ZoomOut,
        MotionClass::Approach,
        MotionClass::Leave,
    ];

    /// snake_case name, as in configs.
    pub fn name(self) -> &'static str {
        match self {
            MotionClass::Static => "static",
            MotionClass::Left => "left",
            MotionClass::Right => "right",
            MotionClass::Up => "up",
            MotionClass::Down => "down",
            MotionClass::RotateCw => "rotate_cw",
            MotionClass::RotateCcw => "rotate_ccw",
            MotionClass::ZoomIn => "zoom_in",
            MotionClass::ZoomOut => "zoom_out",
            MotionClass::Approach => "approach",
            MotionClass::Leave => "leave",
        }
    }

    /// The class a horizontal mirror turns this one into.
    pub fn mirrored(self) -> MotionClass {
        match self {
            MotionClass::Left => MotionClass::Right,
            MotionClass::Right => MotionClass::Left,
            MotionClass::RotateCw => MotionClass::RotateCcw,
            MotionClass::RotateCcw => MotionClass::RotateCw,
            c => c,
        }
    }
}

/// Shapes of the objects; the main object's shape is the appearance label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeKind {
    /// Disc.
    Circle,
    /// Square.
    Square,
    /// Equilateral triangle.
    Triangle,
    /// Plus sign.
    Cross,
    /// Annulus.
    Ring,
    /// Square turned 45 degrees.
    Diamond,
}

impl ShapeKind {
    /// All shapes in appearance-label order.
    pub const ALL: [ShapeKind; 6] = [
        ShapeKind::Circle,
        ShapeKind::Square,
        ShapeKind::Triangle,
        ShapeKind::Cross,
        ShapeKind::Ring,
        ShapeKind::Diamond,
    ];

    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Cross => "cross",
            ShapeKind::Ring => "ring",
            ShapeKind::Diamond => "diamond",
        }
    }

    /// Whether the local point (`u`, `v`), in units of the object radius, is inside.
    pub(super) fn contains(self, u: f32, v: f32) -> bool {
        match self {
            ShapeKind::Circle => u * u + v * v <= 1.0,
            ShapeKind::Square => u.abs().max(v.abs()) <= 0.8,
            ShapeKind::Triangle => v <= 0.5 && 1.732 * u - v <= 1.0 && -1.732 * u - v <= 1.0,
            ShapeKind::Cross => {
                (u.abs() <= 0.32 && v.abs() <= 1.0) || (v.abs() <= 0.32 && u.abs() <= 1.0)
            }
            ShapeKind::Ring => {
                let r2 = u * u + v * v;
                (0.3..=1.0).contains(&r2)
            }
            ShapeKind::Diamond => u.abs() + v.abs() <= 1.0,
        }
    }
}

/// Camera motion applied to the whole scene (background and objects alike).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraMotion {
    /// Largest pan speed, as a fraction of the frame side per frame (random direction
    /// and speed up to this). 0 disables panning.
    pub pan: f32,
    /// Per-frame random shake, as a fraction of the frame side. 0 disables it.
    pub jitter: f32,
}

impl Default for CameraMotion {
    fn default() -> Self {
        CameraMotion {
            pan: 0.0,
            jitter: 0.0,
        }
    }
}

/// Configuration of the synthetic motion dataset (TOML-friendly; every field has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticMotionConfig {
    /// Number of clips.
    pub num_samples: usize,
    /// Frames per clip (`T`).
    pub num_frames: usize,
    /// Frame side in pixels (frames are square).
    pub size: usize,
    /// Classes, in label order (labels balanced: sample `i` has label `i % classes.len()`).
    pub classes: Vec<MotionClass>,
    /// Seed of the whole dataset.
    pub seed: u64,
    /// Camera motion.
    pub camera: CameraMotion,
    /// Largest number of distractor objects (drawn per clip from `0..=max_distractors`).
    pub max_distractors: usize,
    /// Object translation over the whole clip, as a fraction of the frame side
    /// (range `[min, max]`).
    pub travel: [f32; 2],
    /// Rotation per frame in degrees (range `[min, max]`).
    pub rotation_deg: [f32; 2],
    /// Scale change over the clip for zoom/approach/leave (final/initial, range `[min, max]`, > 1).
    pub scale_change: [f32; 2],
    /// Uniform per-pixel noise amplitude (0-255 scale).
    pub noise: f32,
    /// Normalisation of the output clips.
    pub normalization: Normalization,
    /// Draw a new scene (appearance, speeds, camera) for every
    /// [`VideoDataset::get`] call from its `seed` argument, for an endless training
    /// stream: the loader passes a different seed each epoch. The label still follows
    /// the index. Off: every index is one fixed clip.
    pub fresh_each_call: bool,
}

impl Default for SyntheticMotionConfig {
    fn default() -> Self {
        SyntheticMotionConfig {
            num_samples: 1024,
            num_frames: 8,
            size: 56,
            classes: MotionClass::ALL.to_vec(),
            seed: 0,
            camera: CameraMotion::default(),
            max_distractors: 2,
            travel: [0.3, 0.5],
            rotation_deg: [8.0, 20.0],
            scale_change: [1.6, 2.2],
            noise: 4.0,
            normalization: Normalization::ImageNet,
            fresh_each_call: false,
        }
    }
}

impl SyntheticMotionConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`DataError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(DataError::Config(format!("synthetic: {m}")));
        if self.num_frames < 2 {
            return fail("num_frames must be at least 2 (motion needs two frames)");
        }
        if self.size < 8 {
            return fail("size must be at least 8 pixels");
        }
        // The config's numbers size every clip buffer (and the appearance dataset's length).
        let values = self
            .num_frames
            .checked_mul(self.size)
            .and_then(|v| v.checked_mul(self.size))
            .and_then(|v| v.checked_mul(3));
        if values.is_none_or(|v| v > MAX_SYNTHETIC_CLIP_VALUES) {
            return fail(&format!(
                "num_frames x size x size x 3 must be at most {MAX_SYNTHETIC_CLIP_VALUES} values \
                 (got {} frames of {s}x{s})",
                self.num_frames,
                s = self.size
            ));
        }
        if self.num_samples.checked_mul(self.num_frames).is_none() {
            return fail("num_samples x num_frames does not fit in a usize");
        }
        if self.classes.is_empty() {
            return fail("classes is empty");
        }
        for (i, c) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(c) {
                return fail(&format!("class {} listed twice", c.name()));
            }
        }
        let range_ok =
            |r: [f32; 2]| r[0].is_finite() && r[1].is_finite() && 0.0 <= r[0] && r[0] <= r[1];
        if !range_ok(self.travel) || !range_ok(self.rotation_deg) || !range_ok(self.scale_change) {
            return fail("travel, rotation_deg and scale_change must be ranges [min <= max] of non-negative numbers");
        }
        if self.scale_change[0] <= 1.0 {
            return fail("scale_change must be above 1");
        }
        if !(self.noise >= 0.0 && self.camera.pan >= 0.0 && self.camera.jitter >= 0.0) {
            return fail("noise, camera.pan and camera.jitter must be non-negative");
        }
        Ok(())
    }
}
