//! Spatial and colour transforms as typed stages ([`Stage`]) applied to the frames of a
//! clip, every random parameter drawn once per clip so all frames get the same crop,
//! flip and augmentation. Follows the conventions of torchvision
//! (`RandomResizedCrop`: scale/ratio sampling with 10 attempts then a centre fallback),
//! TSN (`MultiScaleCrop`: crop sides from a scale list relative to the short side) and
//! RandAugment (Cubuk et al., 2020: `num_ops` ops drawn uniformly, one global magnitude
//! on a 0-10 scale). Normalisation presets live in [`Normalization`].

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::frame::{Resize, RgbFrame};
use crate::pixels::PixelNorm;
use amflow_rng::SplitMix64;

/// Per-channel mean/std applied after scaling pixels to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// ImageNet statistics (mean 0.485/0.456/0.406, std 0.229/0.224/0.225), as used by DINOv2.
    #[default]
    ImageNet,
    /// Same statistics as [`Normalization::ImageNet`]; named for configs that say DINOv2.
    Dinov2,
    /// OpenAI CLIP statistics (mean 0.4815/0.4578/0.4082, std 0.2686/0.2613/0.2758).
    Clip,
    /// Plain `[0, 1]` values.
    Unit,
    /// Explicit statistics.
    Custom {
        /// Per-channel mean (RGB).
        mean: [f32; 3],
        /// Per-channel standard deviation (RGB).
        std: [f32; 3],
    },
}

impl Normalization {
    /// `(mean, std)` per RGB channel.
    pub fn mean_std(&self) -> ([f32; 3], [f32; 3]) {
        match *self {
            Normalization::ImageNet | Normalization::Dinov2 => {
                ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
            }
            Normalization::Clip => (
                [0.481_454_66, 0.457_827_5, 0.408_210_73],
                [0.268_629_54, 0.261_302_6, 0.275_777_1],
            ),
            Normalization::Unit => ([0.0; 3], [1.0; 3]),
            Normalization::Custom { mean, std } => (mean, std),
        }
    }

    /// The statistics as the [`PixelNorm`] a clip carries.
    pub fn pixel_norm(&self) -> PixelNorm {
        let (mean, std) = self.mean_std();
        PixelNorm { mean, std }
    }
}

/// Whether a dataset's classes survive a horizontal flip.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlipPolicy {
    /// Flipping keeps the label (Kinetics, Smarthome).
    #[default]
    Allow,
    /// Never flip, whatever the stages say (Something-Something v2: "left to right" classes).
    Forbid,
    /// Flip and swap these label pairs (e.g. the synthetic data's left/right motions).
    SwapLabels {
        /// Pairs of classes that a flip exchanges.
        pairs: Vec<[usize; 2]>,
    },
}

impl FlipPolicy {
    fn flipped_label(&self, label: usize) -> usize {
        match self {
            FlipPolicy::SwapLabels { pairs } => pairs
                .iter()
                .find_map(|&[a, b]| {
                    if a == label {
                        Some(b)
                    } else if b == label {
                        Some(a)
                    } else {
                        None
                    }
                })
                .unwrap_or(label),
            _ => label,
        }
    }
}

fn default_scale() -> [f32; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f32; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}
fn default_scales() -> Vec<f32> {
    vec![1.0, 0.875, 0.75, 0.66]
}
fn default_distort() -> usize {
    1
}

/// One transform stage (TOML: `[[transform.stages]] op = "center_crop"  size = 112`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Stage {
    /// Scale so the shorter side is `size`.
    ShortSideResize {
        /// Target short side.
        size: usize,
    },
    /// Scale to exactly `width x height`.
    Resize {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
    },
    /// torchvision-style random area/aspect crop, resized to `size x size`.
    RandomResizedCrop {
        /// Output side.
        size: usize,
        /// Range of the crop's area relative to the frame.
        #[serde(default = "default_scale")]
        scale: [f32; 2],
        /// Range of the crop's aspect ratio (w/h), sampled log-uniformly.
        #[serde(default = "default_ratio")]
        ratio: [f32; 2],
    },
    /// TSN multi-scale crop: width and height each `short_side * s` for `s` in `scales`
    /// (the two scale indices at most `max_distort` apart), at a random position, resized
    /// to `size x size`.
    MultiScaleCrop {
        /// Output side.
        size: usize,
        /// Crop sides relative to the short side.
        #[serde(default = "default_scales")]
        scales: Vec<f32>,
        /// Largest index difference between the width and height scales.
        #[serde(default = "default_distort")]
        max_distort: usize,
    },
    /// Centre `size x size` crop.
    CenterCrop {
        /// Crop side.
        size: usize,
    },
    /// Test-time three-crop: `size x size` crops at the start, centre and end of the
    /// longer side; spatial view `v` of a test sample takes crop `v % 3`.
    ThreeCrop {
        /// Crop side.
        size: usize,
    },
    /// Mirror left-right with probability `p`, as the dataset's [`FlipPolicy`] allows.
    HorizontalFlip {
        /// Probability.
        p: f32,
    },
    /// RandAugment: `num_ops` ops drawn uniformly from [`RandOp`], at `magnitude` (0-10).
    RandAugment {
        /// Ops per clip.
        num_ops: usize,
        /// Strength on the 0-10 scale.
        magnitude: f32,
    },
    /// Random erasing ([`crate::erasing`]): with probability `p`, a box of `area` (fraction of
    /// the frame, default 0.02..1/3) and aspect `ratio` (default 0.3..3.3) filled with noise;
    /// the same box on every frame unless `per_frame`.
    RandomErasing {
        /// Probability per clip.
        p: f32,
        /// Range of the box's area relative to the frame.
        #[serde(default = "default_erasing_area")]
        area: [f32; 2],
        /// Range of the box's aspect ratio (w/h), sampled log-uniformly.
        #[serde(default = "default_erasing_ratio")]
        ratio: [f32; 2],
        /// A new box per frame.
        #[serde(default)]
        per_frame: bool,
    },
}

fn default_erasing_area() -> [f32; 2] {
    [0.02, 1.0 / 3.0]
}

fn default_erasing_ratio() -> [f32; 2] {
    [0.3, 3.3]
}

/// The operations RandAugment draws from; each is applied identically to every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RandOp {
    /// No change.
    Identity,
    /// Stretch each channel to the full range (range measured on the first frame).
    AutoContrast,
    /// Scale brightness by `1 +- 0.9 m/10`.
    Brightness,
    /// Scale contrast around the first frame's mean grey by `1 +- 0.9 m/10`.
    Contrast,
    /// Scale saturation by `1 +- 0.9 m/10`.
    Color,
    /// Keep `8 - 4 m/10` bits per channel.
    Posterize,
    /// Invert values above `256 (1 - m/10)`.
    Solarize,
    /// Rotate by `+-30 m/10` degrees around the centre.
    Rotate,
    /// Shear along x by `+-0.3 m/10`.
    ShearX,
    /// Shear along y by `+-0.3 m/10`.
    ShearY,
    /// Translate along x by `+-0.45 m/10` of the width.
    TranslateX,
    /// Translate along y by `+-0.45 m/10` of the height.
    TranslateY,
}

/// All RandAugment ops.
pub const RAND_OPS: [RandOp; 12] = [
    RandOp::Identity,
    RandOp::AutoContrast,
    RandOp::Brightness,
    RandOp::Contrast,
    RandOp::Color,
    RandOp::Posterize,
    RandOp::Solarize,
    RandOp::Rotate,
    RandOp::ShearX,
    RandOp::ShearY,
    RandOp::TranslateX,
    RandOp::TranslateY,
];

/// The transform of a dataset: ordered stages, then normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// Applied in order.
    pub stages: Vec<Stage>,
    /// Applied when the clip is converted to `f32` (on the model's device; clips stay 8-bit).
    pub normalization: Normalization,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig::test(112)
    }
}

impl TransformConfig {
    /// Common training preset: short side to `size * 8/7`, multi-scale crop to `size`,
    /// flip with p = 0.5 (subject to the dataset's flip policy), ImageNet statistics.
    pub fn train(size: usize) -> Self {
        TransformConfig {
            stages: vec![
                Stage::ShortSideResize { size: size * 8 / 7 },
                Stage::MultiScaleCrop {
                    size,
                    scales: default_scales(),
                    max_distort: 1,
                },
                Stage::HorizontalFlip { p: 0.5 },
            ],
            normalization: Normalization::ImageNet,
        }
    }

    /// Common test preset: short side to `size`, centre crop `size`, ImageNet statistics.
    pub fn test(size: usize) -> Self {
        TransformConfig {
            stages: vec![Stage::ShortSideResize { size }, Stage::CenterCrop { size }],
            normalization: Normalization::ImageNet,
        }
    }

    /// Spatial test views the stages produce (3 with a [`Stage::ThreeCrop`], else 1).
    pub fn spatial_views(&self) -> usize {
        if self
            .stages
            .iter()
            .any(|s| matches!(s, Stage::ThreeCrop { .. }))
        {
            3
        } else {
            1
        }
    }

    /// Checks sizes and ranges.
    ///
    /// # Errors
    /// [`DataError::Config`] naming the offending stage.
    pub fn validate(&self) -> Result<()> {
        for s in &self.stages {
            let ok = match s {
                Stage::ShortSideResize { size }
                | Stage::CenterCrop { size }
                | Stage::ThreeCrop { size } => *size > 0,
                Stage::Resize { width, height } => *width > 0 && *height > 0,
                Stage::RandomResizedCrop { size, scale, ratio } => {
                    *size > 0
                        && 0.0 < scale[0]
                        && scale[0] <= scale[1]
                        && scale[1] <= 1.0
                        && 0.0 < ratio[0]
                        && ratio[0] <= ratio[1]
                }
                Stage::MultiScaleCrop { size, scales, .. } => {
                    *size > 0 && !scales.is_empty() && scales.iter().all(|&s| s > 0.0 && s <= 1.0)
                }
                Stage::HorizontalFlip { p } => (0.0..=1.0).contains(p),
                Stage::RandAugment { magnitude, .. } => (0.0..=30.0).contains(magnitude),
                Stage::RandomErasing { p, area, ratio, .. } => {
                    (0.0..=1.0).contains(p)
                        && 0.0 < area[0]
                        && area[0] <= area[1]
                        && area[1] < 1.0
                        && 0.0 < ratio[0]
                        && ratio[0] <= ratio[1]
                }
            };
            if !ok {
                return Err(DataError::Config(format!("invalid transform stage {s:?}")));
            }
        }
        Ok(())
    }

    /// Applies the stages to a clip's frames; returns the frames and the (possibly
    /// flip-swapped) label. `spatial_view` selects the [`Stage::ThreeCrop`] crop.
    ///
    /// # Errors
    /// [`DataError::Config`] when the frames are empty.
    pub fn apply(
        &self,
        mut frames: Vec<RgbFrame>,
        mut label: usize,
        flip: &FlipPolicy,
        spatial_view: usize,
        rng: &mut SplitMix64,
    ) -> Result<(Vec<RgbFrame>, usize)> {
        if frames.is_empty() {
            return Err(DataError::Config("clip has no frames".into()));
        }
        for stage in &self.stages {
            let (w, h) = (frames[0].width, frames[0].height);
            match stage {
                Stage::ShortSideResize { size } => {
                    let (tw, th) = Resize::ShortSide(*size).target(w, h);
                    frames = frames.iter().map(|f| f.resize(tw, th)).collect();
                }
                Stage::Resize { width, height } => {
                    frames = frames.iter().map(|f| f.resize(*width, *height)).collect();
                }
                Stage::RandomResizedCrop { size, scale, ratio } => {
                    let (x, y, cw, ch) = random_resized_box(w, h, *scale, *ratio, rng);
                    frames = crop_resize(&frames, (x, y, cw, ch), *size);
                }
                Stage::MultiScaleCrop {
                    size,
                    scales,
                    max_distort,
                } => {
                    let base = w.min(h) as f32;
                    let pairs: Vec<(usize, usize)> = (0..scales.len())
                        .flat_map(|i| (0..scales.len()).map(move |j| (i, j)))
                        .filter(|(i, j)| i.abs_diff(*j) <= *max_distort)
                        .collect();
                    let Some(&(i, j)) = pairs.get(rng.below(pairs.len())) else {
                        return Err(DataError::Config("multi_scale_crop has no scales".into()));
                    };
                    let cw = ((base * scales[i]) as usize).clamp(1, w);
                    let ch = ((base * scales[j]) as usize).clamp(1, h);
                    let x = rng.below(w - cw + 1);
                    let y = rng.below(h - ch + 1);
                    frames = crop_resize(&frames, (x, y, cw, ch), *size);
                }
                Stage::CenterCrop { size } => {
                    let (cw, ch) = ((*size).min(w), (*size).min(h));
                    let b = ((w - cw) / 2, (h - ch) / 2, cw, ch);
                    frames = crop_resize(&frames, b, *size);
                }
                Stage::ThreeCrop { size } => {
                    let (cw, ch) = ((*size).min(w), (*size).min(h));
                    let k = spatial_view % 3;
                    let b = if w >= h {
                        ((w - cw) * k / 2, (h - ch) / 2, cw, ch)
                    } else {
                        ((w - cw) / 2, (h - ch) * k / 2, cw, ch)
                    };
                    frames = crop_resize(&frames, b, *size);
                }
                Stage::HorizontalFlip { p } => {
                    // Draw whatever the policy, so the policy does not shift later draws.
                    let flip_now = rng.chance(*p);
                    if flip_now && *flip != FlipPolicy::Forbid {
                        frames = frames.iter().map(RgbFrame::flip_horizontal).collect();
                        label = flip.flipped_label(label);
                    }
                }
                Stage::RandAugment { num_ops, magnitude } => {
                    for _ in 0..*num_ops {
                        let op = RAND_OPS[rng.below(RAND_OPS.len())];
                        let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
                        frames = apply_op(op, *magnitude / 10.0 * sign, frames);
                    }
                }
                Stage::RandomErasing {
                    p,
                    area,
                    ratio,
                    per_frame,
                } => {
                    crate::erasing::random_erasing(&mut frames, *p, *area, *ratio, *per_frame, rng)
                }
            }
        }
        Ok((frames, label))
    }
}

/// Crops every frame to `b` = (x, y, w, h) and resizes to `size x size`.
fn crop_resize(frames: &[RgbFrame], b: (usize, usize, usize, usize), size: usize) -> Vec<RgbFrame> {
    frames
        .iter()
        .map(|f| f.crop(b.0, b.1, b.2, b.3).resize(size, size))
        .collect()
}

fn random_resized_box(
    w: usize,
    h: usize,
    scale: [f32; 2],
    ratio: [f32; 2],
    rng: &mut SplitMix64,
) -> (usize, usize, usize, usize) {
    let area = (w * h) as f32;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let a = area * rng.uniform(scale[0], scale[1]);
        let r = rng.uniform(lr0, lr1).exp();
        let cw = (a * r).sqrt().round() as usize;
        let ch = (a / r).sqrt().round() as usize;
        if cw >= 1 && ch >= 1 && cw <= w && ch <= h {
            return (rng.below(w - cw + 1), rng.below(h - ch + 1), cw, ch);
        }
    }
    // Fallback: the largest centred crop with the ratio clamped into range.
    let r = w as f32 / h as f32;
    let (cw, ch) = if r < ratio[0] {
        (w, ((w as f32 / ratio[0]).round() as usize).clamp(1, h))
    } else if r > ratio[1] {
        (((h as f32 * ratio[1]).round() as usize).clamp(1, w), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

fn map_pixels(frames: Vec<RgbFrame>, f: impl Fn(usize, u8) -> u8) -> Vec<RgbFrame> {
    frames
        .into_iter()
        .map(|mut fr| {
            for (i, v) in fr.data.iter_mut().enumerate() {
                *v = f(i % 3, *v);
            }
            fr
        })
        .collect()
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Applies one RandAugment op; `m` is the signed magnitude in [-3, 3] (1 = "10").
fn apply_op(op: RandOp, m: f32, frames: Vec<RgbFrame>) -> Vec<RgbFrame> {
    let am = m.abs();
    match op {
        RandOp::Identity => frames,
        RandOp::AutoContrast => {
            let mut lo = [255u8; 3];
            let mut hi = [0u8; 3];
            for px in frames[0].data.chunks_exact(3) {
                for c in 0..3 {
                    lo[c] = lo[c].min(px[c]);
                    hi[c] = hi[c].max(px[c]);
                }
            }
            map_pixels(frames, |c, v| {
                if hi[c] > lo[c] {
                    clamp_u8((v.saturating_sub(lo[c])) as f32 * 255.0 / (hi[c] - lo[c]) as f32)
                } else {
                    v
                }
            })
        }
        RandOp::Brightness => {
            let k = (1.0 + 0.9 * m).max(0.0);
            map_pixels(frames, |_, v| clamp_u8(v as f32 * k))
        }
        RandOp::Contrast => {
            let k = (1.0 + 0.9 * m).max(0.0);
            let f0 = &frames[0];
            let mean = f0
                .data
                .chunks_exact(3)
                .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
                .sum::<f32>()
                / (f0.width * f0.height) as f32;
            map_pixels(frames, |_, v| clamp_u8(mean + (v as f32 - mean) * k))
        }
        RandOp::Color => {
            let k = (1.0 + 0.9 * m).max(0.0);
            frames
                .into_iter()
                .map(|mut fr| {
                    for p in fr.data.chunks_exact_mut(3) {
                        let g = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
                        for v in p.iter_mut() {
                            *v = clamp_u8(g + (*v as f32 - g) * k);
                        }
                    }
                    fr
                })
                .collect()
        }
        RandOp::Posterize => {
            let bits = (8.0 - 4.0 * am.min(1.0)).round().clamp(1.0, 8.0) as u32;
            let mask = (0xFFu32 << (8 - bits)) as u8;
            map_pixels(frames, |_, v| v & mask)
        }
        RandOp::Solarize => {
            let t = (256.0 * (1.0 - am.min(1.0))) as u32;
            map_pixels(frames, |_, v| if v as u32 >= t { 255 - v } else { v })
        }
        RandOp::Rotate => {
            let a = (30.0 * m).to_radians();
            affine(frames, [a.cos(), -a.sin(), a.sin(), a.cos()], [0.0, 0.0])
        }
        RandOp::ShearX => affine(frames, [1.0, 0.3 * m, 0.0, 1.0], [0.0, 0.0]),
        RandOp::ShearY => affine(frames, [1.0, 0.0, 0.3 * m, 1.0], [0.0, 0.0]),
        RandOp::TranslateX => {
            let dx = 0.45 * m * frames[0].width as f32;
            affine(frames, [1.0, 0.0, 0.0, 1.0], [dx, 0.0])
        }
        RandOp::TranslateY => {
            let dy = 0.45 * m * frames[0].height as f32;
            affine(frames, [1.0, 0.0, 0.0, 1.0], [0.0, dy])
        }
    }
}

/// Warps every frame by `out = A (in - c) + c + t` (inverse-mapped, bilinear, grey fill).
fn affine(frames: Vec<RgbFrame>, a: [f32; 4], t: [f32; 2]) -> Vec<RgbFrame> {
    let det = a[0] * a[3] - a[1] * a[2];
    if det.abs() < 1e-6 {
        return frames;
    }
    let inv = [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
    frames
        .into_iter()
        .map(|fr| {
            let (w, h) = (fr.width, fr.height);
            let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
            let mut out = RgbFrame::filled(w, h, [128, 128, 128]);
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as f32 + 0.5 - cx - t[0], y as f32 + 0.5 - cy - t[1]);
                    let sx = inv[0] * dx + inv[1] * dy + cx - 0.5;
                    let sy = inv[2] * dx + inv[3] * dy + cy - 0.5;
                    if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
                        continue;
                    }
                    let (x0, y0) = (sx as usize, sy as usize);
                    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                    let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                    let o = (y * w + x) * 3;
                    for c in 0..3 {
                        let p = |xx: usize, yy: usize| fr.data[(yy * w + xx) * 3 + c] as f32;
                        let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                            + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
                        out.data[o + c] = clamp_u8(v);
                    }
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_clip(t: usize, w: usize, h: usize, seed: u64) -> Vec<RgbFrame> {
        let mut r = SplitMix64::new(seed);
        (0..t)
            .map(|_| RgbFrame {
                width: w,
                height: h,
                data: (0..w * h * 3).map(|_| r.next_u64() as u8).collect(),
            })
            .collect()
    }

    #[test]
    fn crops_produce_requested_size_and_are_deterministic() {
        let clip = noise_clip(3, 40, 30, 1);
        for stage in [
            Stage::RandomResizedCrop {
                size: 16,
                scale: default_scale(),
                ratio: default_ratio(),
            },
            Stage::MultiScaleCrop {
                size: 16,
                scales: default_scales(),
                max_distort: 1,
            },
            Stage::CenterCrop { size: 16 },
            Stage::ThreeCrop { size: 16 },
        ] {
            let cfg = TransformConfig {
                stages: vec![stage.clone()],
                normalization: Normalization::Unit,
            };
            cfg.validate().unwrap();
            let (a, _) = cfg
                .apply(
                    clip.clone(),
                    0,
                    &FlipPolicy::Allow,
                    1,
                    &mut SplitMix64::new(9),
                )
                .unwrap();
            let (b, _) = cfg
                .apply(
                    clip.clone(),
                    0,
                    &FlipPolicy::Allow,
                    1,
                    &mut SplitMix64::new(9),
                )
                .unwrap();
            assert!(
                a.iter().all(|f| (f.width, f.height) == (16, 16)),
                "{stage:?}"
            );
            assert_eq!(a, b, "{stage:?}");
        }
    }

    #[test]
    fn center_and_three_crop_positions() {
        let mut f = RgbFrame::filled(30, 10, [0, 0, 0]);
        for x in 0..30 {
            for y in 0..10 {
                f.data[(y * 30 + x) * 3] = x as u8;
            }
        }
        let cfg = |s| TransformConfig {
            stages: vec![s],
            normalization: Normalization::Unit,
        };
        let three = cfg(Stage::ThreeCrop { size: 10 });
        let mut r = SplitMix64::new(0);
        let left = three
            .apply(vec![f.clone()], 0, &FlipPolicy::Allow, 0, &mut r)
            .unwrap()
            .0;
        let right = three
            .apply(vec![f.clone()], 0, &FlipPolicy::Allow, 2, &mut r)
            .unwrap()
            .0;
        let centre = cfg(Stage::CenterCrop { size: 10 })
            .apply(vec![f], 0, &FlipPolicy::Allow, 0, &mut r)
            .unwrap()
            .0;
        assert_eq!(left[0].pixel(0, 0)[0], 0);
        assert_eq!(centre[0].pixel(0, 0)[0], 10);
        assert_eq!(right[0].pixel(9, 0)[0], 29);
        assert_eq!(three.spatial_views(), 3);
    }

    #[test]
    fn flip_policy_swaps_labels_or_is_forbidden() {
        let clip = noise_clip(2, 8, 8, 2);
        let cfg = TransformConfig {
            stages: vec![Stage::HorizontalFlip { p: 1.0 }],
            normalization: Normalization::Unit,
        };
        let swap = FlipPolicy::SwapLabels {
            pairs: vec![[0, 1]],
        };
        let (f, l) = cfg
            .apply(clip.clone(), 0, &swap, 0, &mut SplitMix64::new(0))
            .unwrap();
        assert_eq!(l, 1);
        assert_eq!(f[1], clip[1].flip_horizontal());
        assert_eq!(
            cfg.apply(clip.clone(), 5, &swap, 0, &mut SplitMix64::new(0))
                .unwrap()
                .1,
            5
        );
        let (f, l) = cfg
            .apply(
                clip.clone(),
                0,
                &FlipPolicy::Forbid,
                0,
                &mut SplitMix64::new(0),
            )
            .unwrap();
        assert_eq!((f, l), (clip, 0));
    }

    #[test]
    fn rand_augment_is_identical_across_frames() {
        let one = noise_clip(1, 24, 24, 3).remove(0);
        let clip = vec![one.clone(), one.clone(), one];
        let cfg = TransformConfig {
            stages: vec![Stage::RandAugment {
                num_ops: 3,
                magnitude: 9.0,
            }],
            normalization: Normalization::Unit,
        };
        let mut changed = false;
        for seed in 0..20 {
            let (out, _) = cfg
                .apply(
                    clip.clone(),
                    0,
                    &FlipPolicy::Allow,
                    0,
                    &mut SplitMix64::new(seed),
                )
                .unwrap();
            assert_eq!(out[0], out[1]);
            assert_eq!(out[1], out[2]);
            changed |= out[0] != clip[0];
        }
        assert!(changed);
    }

    #[test]
    fn every_rand_op_keeps_size_and_geometric_ops_move_pixels() {
        let clip = noise_clip(1, 20, 12, 4);
        for op in RAND_OPS {
            let out = apply_op(op, 0.9, clip.clone());
            assert_eq!((out[0].width, out[0].height), (20, 12), "{op:?}");
            if !matches!(op, RandOp::Identity | RandOp::AutoContrast) {
                assert_ne!(out[0], clip[0], "{op:?} changed nothing");
            }
        }
    }

    #[test]
    fn invalid_stage_is_rejected_and_presets_parse_from_toml() {
        let bad = TransformConfig {
            stages: vec![Stage::CenterCrop { size: 0 }],
            normalization: Normalization::Unit,
        };
        assert!(bad.validate().is_err());
        let cfg: TransformConfig = toml::from_str(
            "normalization = \"clip\"\n[[stages]]\nop = \"random_resized_crop\"\nsize = 112\n[[stages]]\nop = \"horizontal_flip\"\np = 0.5\n",
        )
        .unwrap();
        assert_eq!(cfg.stages.len(), 2);
        assert_eq!(cfg.normalization.mean_std().0[0], 0.481_454_66);
    }
}
