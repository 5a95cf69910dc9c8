//! The synthetic motion dataset (the project's embedded default data): clips whose
//! action classes differ only by how the main object (or the camera) moves, while
//! every appearance factor (shape, texture, colours, background, distractors) is random
//! and shared by all classes. Optional camera motion (pan + jitter of the textured
//! background) makes the motion relative to the scene, which is what a frame-aligning
//! encoder must recover. The main object's shape is a separate appearance label for
//! pretraining an image model on single frames ([`SyntheticAppearanceDataset`]).
//!
//! Everything is rendered procedurally in memory from `(seed, index)`: the same
//! configuration always yields bit-identical clips. Reference: this follows the idea of
//! motion-only synthetic benchmarks (e.g. "Moving MNIST", Srivastava et al., 2015) but
//! with class definitions of our own, listed in [`MotionClass`].

use serde::{Deserialize, Serialize};

use crate::dataset::VideoDataset;
use crate::error::{DataError, Result};
use crate::frame::{Clip, RgbFrame};
use crate::rng::{derive_seed, SeedRng};
use crate::transform::{FlipPolicy, Normalization};

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
    fn contains(self, u: f32, v: f32) -> bool {
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

/// At most this many values (`num_frames x size x size x 3`, 1 GiB of f32) in a synthetic
/// clip.
pub const MAX_SYNTHETIC_CLIP_VALUES: usize = 1 << 28;

/// Two-colour pattern in a shape's own coordinates (so it turns with the object and
/// makes rotation visible).
#[derive(Debug, Clone, Copy)]
enum Texture {
    Halves,
    Stripes { freq: f32 },
    Checker { freq: f32 },
}

#[derive(Debug, Clone, Copy)]
enum Background {
    Checker { cell: f32 },
    Stripes { freq: f32, dir: (f32, f32) },
    Waves { k: [(f32, f32, f32); 3] },
}

#[derive(Debug, Clone, Copy)]
struct Object {
    shape: ShapeKind,
    texture: Texture,
    colors: [[f32; 3]; 2],
    /// Centre at t = 0 and velocity per frame (world pixels).
    pos: (f32, f32),
    vel: (f32, f32),
    radius: f32,
    /// Radius factor per frame (approach / leave).
    growth: f32,
    angle: f32,
    spin: f32,
}

impl Object {
    fn color_at(&self, t: f32, wx: f32, wy: f32) -> Option<[f32; 3]> {
        let r = self.radius * self.growth.powf(t);
        let (dx, dy) = (
            wx - self.pos.0 - self.vel.0 * t,
            wy - self.pos.1 - self.vel.1 * t,
        );
        if dx.abs() > r * 1.05 || dy.abs() > r * 1.05 {
            return None;
        }
        let a = self.angle + self.spin * t;
        let (s, c) = a.sin_cos();
        let u = (c * dx + s * dy) / r;
        let v = (-s * dx + c * dy) / r;
        if !self.shape.contains(u, v) {
            return None;
        }
        let second = match self.texture {
            Texture::Halves => u > 0.0,
            Texture::Stripes { freq } => ((u + 1.0) * freq).floor() as i32 % 2 == 0,
            Texture::Checker { freq } => {
                (((u + 1.0) * freq).floor() as i32 + ((v + 1.0) * freq).floor() as i32) % 2 == 0
            }
        };
        Some(self.colors[usize::from(second)])
    }
}

/// Everything random about one clip, drawn from its seed.
#[derive(Debug, Clone)]
struct Scene {
    background: Background,
    bg_colors: [[f32; 3]; 2],
    objects: Vec<Object>,
    /// Camera offset per frame (pan + jitter), world pixels.
    camera: Vec<(f32, f32)>,
    /// Camera zoom factor per frame.
    zoom: Vec<f32>,
    noise_seed: u64,
}

fn random_color(rng: &mut SeedRng, lo: f32, hi: f32) -> [f32; 3] {
    [
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
    ]
}

/// Bright object colours: at least one channel far above the dark background range.
fn object_colors(rng: &mut SeedRng) -> [[f32; 3]; 2] {
    let mut a = random_color(rng, 0.0, 255.0);
    let k = rng.below(3);
    a[k] = rng.uniform(190.0, 255.0);
    let mut b = random_color(rng, 0.0, 255.0);
    b[(k + 1) % 3] = rng.uniform(190.0, 255.0);
    b[k] = 255.0 - a[k] * 0.8;
    [a, b]
}

fn random_texture(rng: &mut SeedRng) -> Texture {
    match rng.below(3) {
        0 => Texture::Halves,
        1 => Texture::Stripes {
            freq: rng.uniform(1.0, 2.5),
        },
        _ => Texture::Checker {
            freq: rng.uniform(1.0, 2.0),
        },
    }
}

fn build_scene(
    cfg: &SyntheticMotionConfig,
    class: MotionClass,
    shape: ShapeKind,
    rng: &mut SeedRng,
) -> Scene {
    let size = cfg.size as f32;
    let t_last = (cfg.num_frames - 1) as f32;
    let background = match rng.below(3) {
        0 => Background::Checker {
            cell: rng.uniform(0.08, 0.2) * size,
        },
        1 => {
            let a = rng.uniform(0.0, std::f32::consts::PI);
            Background::Stripes {
                freq: rng.uniform(3.0, 8.0) / size,
                dir: (a.cos(), a.sin()),
            }
        }
        _ => Background::Waves {
            k: std::array::from_fn(|_| {
                let a = rng.uniform(0.0, std::f32::consts::TAU);
                let f = rng.uniform(2.0, 7.0) * std::f32::consts::TAU / size;
                (
                    f * a.cos(),
                    f * a.sin(),
                    rng.uniform(0.0, std::f32::consts::TAU),
                )
            }),
        },
    };
    let bg_colors = [
        random_color(rng, 0.0, 110.0),
        random_color(rng, 20.0, 150.0),
    ];

    let mut objects = Vec::new();
    let n_distractors = rng.below(cfg.max_distractors + 1);
    for _ in 0..n_distractors {
        let speed = rng.uniform(0.0, cfg.travel[0] * 0.5) * size / t_last;
        let a = rng.uniform(0.0, std::f32::consts::TAU);
        objects.push(Object {
            shape: ShapeKind::ALL[rng.below(ShapeKind::ALL.len())],
            texture: random_texture(rng),
            colors: object_colors(rng),
            pos: (rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size),
            vel: (speed * a.cos(), speed * a.sin()),
            radius: rng.uniform(0.05, 0.09) * size,
            growth: 1.0,
            angle: rng.uniform(0.0, std::f32::consts::TAU),
            spin: 0.0,
        });
    }

    // Main object, placed so that its motion stays inside the frame.
    let travel = rng.uniform(cfg.travel[0], cfg.travel[1]) * size;
    let speed = travel / t_last;
    let scale = rng.uniform(cfg.scale_change[0], cfg.scale_change[1]);
    let mut radius = rng.uniform(0.14, 0.2) * size;
    let centre = (size / 2.0, size / 2.0);
    let jitter_pos =
        |rng: &mut SeedRng, k: f32| (rng.uniform(-k, k) * size, rng.uniform(-k, k) * size);
    let (jx, jy) = jitter_pos(rng, 0.08);
    let (mut pos, mut vel, mut growth, mut spin) =
        ((centre.0 + jx, centre.1 + jy), (0.0, 0.0), 1.0, 0.0);
    let dir = match class {
        MotionClass::Left => Some((-1.0, 0.0)),
        MotionClass::Right => Some((1.0, 0.0)),
        MotionClass::Up => Some((0.0, -1.0)),
        MotionClass::Down => Some((0.0, 1.0)),
        _ => None,
    };
    if let Some((dx, dy)) = dir {
        pos = (
            centre.0 - dx * travel / 2.0 + dy * jx,
            centre.1 - dy * travel / 2.0 + dx * jy,
        );
        vel = (dx * speed, dy * speed);
    }
    let omega = rng
        .uniform(cfg.rotation_deg[0], cfg.rotation_deg[1])
        .to_radians();
    match class {
        MotionClass::RotateCw => spin = omega,
        MotionClass::RotateCcw => spin = -omega,
        MotionClass::Approach => {
            radius *= 0.75;
            growth = scale.powf(1.0 / t_last);
        }
        MotionClass::Leave => {
            radius *= 0.75 * scale;
            growth = scale.powf(-1.0 / t_last);
        }
        _ => {}
    }
    objects.push(Object {
        shape,
        texture: random_texture(rng),
        colors: object_colors(rng),
        pos,
        vel,
        radius,
        growth,
        angle: rng.uniform(0.0, std::f32::consts::TAU),
        spin,
    });

    let zoom: Vec<f32> = (0..cfg.num_frames)
        .map(|t| {
            let s = t as f32 / t_last;
            match class {
                MotionClass::ZoomIn => scale.powf(s),
                MotionClass::ZoomOut => scale.powf(1.0 - s),
                _ => 1.0,
            }
        })
        .collect();
    let pan_speed = rng.uniform(0.0, cfg.camera.pan) * size;
    let pan_dir = rng.uniform(0.0, std::f32::consts::TAU);
    let camera = (0..cfg.num_frames)
        .map(|t| {
            let j = cfg.camera.jitter * size;
            (
                pan_speed * pan_dir.cos() * t as f32 + rng.uniform(-j, j),
                pan_speed * pan_dir.sin() * t as f32 + rng.uniform(-j, j),
            )
        })
        .collect();
    Scene {
        background,
        bg_colors,
        objects,
        camera,
        zoom,
        noise_seed: rng.next_u64(),
    }
}

impl Scene {
    fn background_at(&self, x: f32, y: f32) -> [f32; 3] {
        let w = match self.background {
            Background::Checker { cell } => {
                (((x / cell).floor() as i64 + (y / cell).floor() as i64).rem_euclid(2)) as f32
            }
            Background::Stripes { freq, dir } => {
                let p = (x * dir.0 + y * dir.1) * freq;
                if p - p.floor() < 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Background::Waves { k } => {
                let s: f32 = k
                    .iter()
                    .map(|&(kx, ky, ph)| (kx * x + ky * y + ph).sin())
                    .sum();
                0.5 + s / 6.0
            }
        };
        let [a, b] = self.bg_colors;
        std::array::from_fn(|c| a[c] * (1.0 - w) + b[c] * w)
    }

    fn render(&self, size: usize, t: usize, noise: f32) -> RgbFrame {
        let mut rng = SeedRng::new(derive_seed(self.noise_seed, &[t as u64]));
        let c = size as f32 / 2.0;
        let (ox, oy) = self.camera[t];
        let z = self.zoom[t];
        let tf = t as f32;
        let mut data = Vec::with_capacity(size * size * 3);
        for y in 0..size {
            for x in 0..size {
                let wx = (x as f32 + 0.5 - c) / z + c + ox;
                let wy = (y as f32 + 0.5 - c) / z + c + oy;
                let mut col = self.background_at(wx, wy);
                for o in &self.objects {
                    if let Some(oc) = o.color_at(tf, wx, wy) {
                        col = oc;
                    }
                }
                for v in col {
                    let n = if noise > 0.0 {
                        rng.uniform(-noise, noise)
                    } else {
                        0.0
                    };
                    data.push((v + n).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        RgbFrame {
            width: size,
            height: size,
            data,
        }
    }
}

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
    fn draw(&self, index: usize, call_seed: Option<u64>) -> Result<(usize, usize, SeedRng)> {
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
        let mut rng = SeedRng::new(seed);
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
        let (mean, std) = self.config.normalization.mean_std();
        let (data, shape4) = Clip::from_frames(&frames, mean, std)?;
        Ok(Clip {
            data,
            shape: shape4,
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
        let (mean, std) = self.inner.config.normalization.mean_std();
        let (data, shape4) = Clip::from_frames(&frames, mean, std)?;
        Ok(Clip {
            data,
            shape: shape4,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz-harness finding (dataset_config): `size` and `num_frames` were unbounded, so a
    /// config's numbers sized each rendered clip (`size = 10^9`: 3 x 10^18 values) and
    /// `num_samples x num_frames` overflowed the appearance dataset's `len()`.
    #[test]
    fn clip_sizes_past_the_limit_are_config_errors() {
        let base = SyntheticMotionConfig::default();
        for c in [
            SyntheticMotionConfig {
                size: 1_000_000_000,
                ..base.clone()
            },
            SyntheticMotionConfig {
                num_frames: usize::MAX / 2,
                ..base.clone()
            },
            SyntheticMotionConfig {
                num_samples: usize::MAX,
                ..base.clone()
            },
        ] {
            let e = SyntheticMotionDataset::new(c).unwrap_err();
            assert!(matches!(e, DataError::Config(_)), "{e:?}");
        }
        // 5 x 4096 x 4096 x 3 is just under 2^28 values, 6 frames are over.
        let edge = SyntheticMotionConfig {
            num_frames: 5,
            size: 4096,
            ..base
        };
        assert!(SyntheticMotionDataset::new(edge.clone()).is_ok());
        let over = SyntheticMotionConfig {
            num_frames: 6,
            ..edge
        };
        assert!(SyntheticMotionDataset::new(over).is_err());
    }

    fn small(classes: Vec<MotionClass>) -> SyntheticMotionDataset {
        SyntheticMotionDataset::new(SyntheticMotionConfig {
            num_samples: 64,
            classes,
            noise: 0.0,
            max_distractors: 0,
            ..SyntheticMotionConfig::default()
        })
        .unwrap()
    }

    /// Centroid of pixels that differ from frame 0's background estimate: we instead
    /// track the main object through its colour mask (pixels equal to one of its colours).
    fn object_centroid(ds: &SyntheticMotionDataset, index: usize, t: usize) -> (f32, f32, f32) {
        let mut rng = SeedRng::new(derive_seed(ds.config.seed, &[index as u64]));
        let shape = ShapeKind::ALL[rng.below(ShapeKind::ALL.len())];
        let (label, _) = ds.labels(index).unwrap();
        let scene = build_scene(&ds.config, ds.config.classes[label], shape, &mut rng);
        let size = ds.config.size;
        let obj = scene.objects.last().copied().unwrap();
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        let c = size as f32 / 2.0;
        for y in 0..size {
            for x in 0..size {
                let wx = (x as f32 + 0.5 - c) / scene.zoom[t] + c + scene.camera[t].0;
                let wy = (y as f32 + 0.5 - c) / scene.zoom[t] + c + scene.camera[t].1;
                if obj.color_at(t as f32, wx, wy).is_some() {
                    sx += x as f32;
                    sy += y as f32;
                    n += 1.0;
                }
            }
        }
        (sx / n, sy / n, n)
    }

    #[test]
    fn translation_classes_move_the_object_the_right_way() {
        let ds = small(vec![
            MotionClass::Left,
            MotionClass::Right,
            MotionClass::Up,
            MotionClass::Down,
        ]);
        for i in 0..16 {
            let (x0, y0, _) = object_centroid(&ds, i, 0);
            let (x1, y1, _) = object_centroid(&ds, i, 7);
            let (dx, dy) = (x1 - x0, y1 - y0);
            match i % 4 {
                0 => assert!(dx < -8.0 && dy.abs() < 3.0, "left {dx} {dy}"),
                1 => assert!(dx > 8.0 && dy.abs() < 3.0, "right {dx} {dy}"),
                2 => assert!(dy < -8.0 && dx.abs() < 3.0, "up {dx} {dy}"),
                _ => assert!(dy > 8.0 && dx.abs() < 3.0, "down {dx} {dy}"),
            }
        }
    }

    #[test]
    fn approach_grows_and_leave_shrinks() {
        let ds = small(vec![MotionClass::Approach, MotionClass::Leave]);
        for i in 0..8 {
            let (_, _, a0) = object_centroid(&ds, i, 0);
            let (_, _, a1) = object_centroid(&ds, i, 7);
            if i % 2 == 0 {
                assert!(a1 > a0 * 2.0, "approach {a0} -> {a1}");
            } else {
                assert!(a0 > a1 * 2.0, "leave {a0} -> {a1}");
            }
        }
    }

    #[test]
    fn static_frames_are_identical_without_noise_and_camera() {
        let ds = small(vec![MotionClass::Static]);
        let f = ds.render(3).unwrap();
        assert!(f.iter().all(|x| *x == f[0]));
        let ds = small(vec![MotionClass::RotateCw]);
        let f = ds.render(3).unwrap();
        assert_ne!(f[0], f[1]);
    }

    #[test]
    fn deterministic_per_seed_and_varied_across_samples() {
        let ds = small(MotionClass::ALL.to_vec());
        let a = ds.get(5, 0).unwrap();
        let b = ds.get(5, 99).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shape, [8, 3, 56, 56]);
        assert_ne!(ds.get(16, 0).unwrap().data, a.data);
        let other = SyntheticMotionDataset::new(SyntheticMotionConfig {
            seed: 1,
            ..ds.config.clone()
        })
        .unwrap();
        assert_ne!(other.get(5, 0).unwrap().data, a.data);
        assert!(ds.get(64, 0).is_err());
        // Labels are balanced and appearance labels cover every shape.
        let shapes: std::collections::BTreeSet<usize> =
            (0..64).map(|i| ds.labels(i).unwrap().1).collect();
        assert_eq!(shapes.len(), 6);
    }

    #[test]
    fn fresh_each_call_varies_with_the_seed_but_keeps_the_label() {
        let mut cfg = small(MotionClass::ALL.to_vec()).config.clone();
        cfg.fresh_each_call = true;
        let ds = SyntheticMotionDataset::new(cfg).unwrap();
        let a = ds.get(7, 1).unwrap();
        assert_eq!(a, ds.get(7, 1).unwrap());
        let b = ds.get(7, 2).unwrap();
        assert_ne!(a.data, b.data);
        assert_eq!((a.label, b.label), (7, 7));
    }

    #[test]
    fn camera_pan_moves_the_background() {
        let mut cfg = small(vec![MotionClass::Static]).config.clone();
        cfg.camera = CameraMotion {
            pan: 0.03,
            jitter: 0.01,
        };
        let ds = SyntheticMotionDataset::new(cfg).unwrap();
        let moved = (0..8).filter(|&i| {
            let f = ds.render(i).unwrap();
            f[0] != f[7]
        });
        assert!(moved.count() >= 6);
    }

    #[test]
    fn flip_policy_pairs_mirrored_classes_and_config_is_checked() {
        let ds = small(MotionClass::ALL.to_vec());
        assert_eq!(
            ds.flip_policy(),
            FlipPolicy::SwapLabels {
                pairs: vec![[1, 2], [5, 6]]
            }
        );
        let bad = SyntheticMotionConfig {
            num_frames: 1,
            ..SyntheticMotionConfig::default()
        };
        assert!(SyntheticMotionDataset::new(bad).is_err());
        let bad = SyntheticMotionConfig {
            classes: vec![MotionClass::Left, MotionClass::Left],
            ..SyntheticMotionConfig::default()
        };
        assert!(SyntheticMotionDataset::new(bad).is_err());
        let cfg: SyntheticMotionConfig = toml::from_str(
            "num_frames = 4\nsize = 32\nclasses = [\"left\", \"right\"]\n[camera]\npan = 0.02\n",
        )
        .unwrap();
        assert_eq!(cfg.classes, vec![MotionClass::Left, MotionClass::Right]);
    }

    #[test]
    fn appearance_dataset_yields_single_labelled_frames() {
        let cfg = SyntheticMotionConfig {
            num_samples: 4,
            ..SyntheticMotionConfig::default()
        };
        let motion = SyntheticMotionDataset::new(cfg.clone()).unwrap();
        let app = SyntheticAppearanceDataset::new(cfg).unwrap();
        assert_eq!(app.len(), 32);
        assert_eq!(app.class_names().len(), 6);
        let clip = app.get(8 + 3, 0).unwrap();
        assert_eq!(clip.shape, [1, 3, 56, 56]);
        let full = motion.get(1, 0).unwrap();
        assert_eq!(clip.label, full.appearance_label.unwrap());
        let plane = 3 * 56 * 56;
        assert_eq!(&clip.data[..], &full.data[3 * plane..4 * plane]);
    }
}
