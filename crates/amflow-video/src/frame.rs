//! In-memory image and clip types: [`RgbFrame`] (8-bit interleaved RGB, row-major
//! `H x W x 3`) as produced by the decoders and consumed by the transforms, and
//! [`Clip`] (8-bit planar `T x 3 x H x W` with the [`PixelNorm`] to apply) as handed to the
//! model side, which makes the normalised `f32` values where it runs.
//! Also the basic pixel operations every stage needs (bilinear resize, crop, flip),
//! following the usual half-pixel-centre convention of OpenCV/PIL bilinear resizing.

use serde::{Deserialize, Serialize};

use crate::pixels::PixelNorm;

/// One decoded frame: 8-bit RGB, interleaved, row-major (`height` rows of `width * 3` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbFrame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbFrame {
    /// A frame filled with one colour.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&rgb);
        }
        RgbFrame {
            width,
            height,
            data,
        }
    }

    /// The pixel at (`x`, `y`).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let o = (y * self.width + x) * 3;
        [self.data[o], self.data[o + 1], self.data[o + 2]]
    }

    /// Bilinear resize to `width x height` (half-pixel centres, edge clamped).
    pub fn resize(&self, width: usize, height: usize) -> RgbFrame {
        if (width == self.width && height == self.height) || self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let width = width.max(1);
        let height = height.max(1);
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        let xs: Vec<(usize, usize, f32)> = (0..width)
            .map(|x| axis_weights(x, sx, self.width))
            .collect();
        let mut data = vec![0u8; width * height * 3];
        for y in 0..height {
            let (y0, y1, fy) = axis_weights(y, sy, self.height);
            let r0 = &self.data[y0 * self.width * 3..(y0 + 1) * self.width * 3];
            let r1 = &self.data[y1 * self.width * 3..(y1 + 1) * self.width * 3];
            let out = &mut data[y * width * 3..(y + 1) * width * 3];
            for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let a = r0[x0 * 3 + c] as f32 * (1.0 - fx) + r0[x1 * 3 + c] as f32 * fx;
                    let b = r1[x0 * 3 + c] as f32 * (1.0 - fx) + r1[x1 * 3 + c] as f32 * fx;
                    out[x * 3 + c] = (a * (1.0 - fy) + b * fy + 0.5) as u8;
                }
            }
        }
        RgbFrame {
            width,
            height,
            data,
        }
    }

    /// The sub-image at (`x`, `y`) of size `width x height`, clamped to the frame.
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> RgbFrame {
        if self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let x = x.min(self.width.saturating_sub(1));
        let y = y.min(self.height.saturating_sub(1));
        let width = width.min(self.width - x).max(1);
        let height = height.min(self.height - y).max(1);
        let mut data = Vec::with_capacity(width * height * 3);
        for row in y..y + height {
            let o = (row * self.width + x) * 3;
            data.extend_from_slice(&self.data[o..o + width * 3]);
        }
        RgbFrame {
            width,
            height,
            data,
        }
    }

    /// Mirror left-right.
    pub fn flip_horizontal(&self) -> RgbFrame {
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks_exact(self.width * 3) {
            for px in row.chunks_exact(3).rev() {
                data.extend_from_slice(px);
            }
        }
        RgbFrame {
            width: self.width,
            height: self.height,
            data,
        }
    }
}

/// Source index pair and weight of output coordinate `o` along one axis.
fn axis_weights(o: usize, scale: f32, len: usize) -> (usize, usize, f32) {
    let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(len - 1);
    let i1 = (i0 + 1).min(len - 1);
    (i0, i1, src - i0 as f32)
}

/// Target size of a decode-time or transform-time resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Keep the source size.
    #[default]
    None,
    /// Scale so that the shorter side equals this many pixels, keeping the aspect ratio.
    ShortSide(usize),
    /// Scale to exactly this size, ignoring the aspect ratio.
    Exact {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
}

impl Resize {
    /// The output size for a `width x height` input.
    pub fn target(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Resize::None => (width, height),
            Resize::ShortSide(s) => {
                let s = s.max(1);
                if width <= height {
                    (
                        s,
                        ((height * s) as f64 / width.max(1) as f64).round().max(1.0) as usize,
                    )
                } else {
                    (
                        ((width * s) as f64 / height.max(1) as f64).round().max(1.0) as usize,
                        s,
                    )
                }
            }
            Resize::Exact { width, height } => (width.max(1), height.max(1)),
        }
    }
}

/// A clip ready for the model: 8-bit RGB in planar `T x 3 x H x W` row-major layout, and
/// the normalisation the model side applies ([`Clip::normalized`] on the host).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// `T * 3 * H * W` pixel values.
    pub data: Vec<u8>,
    /// `[T, 3, H, W]`.
    pub shape: [usize; 4],
    /// Per-channel statistics the dataset's transform asks for.
    pub norm: PixelNorm,
    /// Action (motion) class index.
    pub label: usize,
    /// Appearance class (e.g. the synthetic data's shape class), when the dataset has one.
    pub appearance_label: Option<usize>,
    /// Index of the underlying sample (video) in the dataset; several test views share it.
    pub sample: usize,
    /// Which test view (temporal clip x spatial crop) this is; 0 in training.
    pub view: usize,
}

impl Clip {
    /// Lays frames out as planar `T x 3 x H x W` bytes (each frame's R plane, then G, then B).
    ///
    /// # Errors
    /// [`DataError::Config`](crate::DataError::Config) when frames differ in size or the list is empty.
    pub fn from_frames(frames: &[RgbFrame]) -> crate::Result<(Vec<u8>, [usize; 4])> {
        let first = frames
            .first()
            .ok_or_else(|| crate::DataError::Config("clip has no frames".into()))?;
        let (w, h) = (first.width, first.height);
        let plane = w * h;
        let mut data = vec![0u8; frames.len() * 3 * plane];
        for (t, f) in frames.iter().enumerate() {
            if f.width != w || f.height != h {
                return Err(crate::DataError::Config(format!(
                    "frame {t} is {}x{}, first frame is {w}x{h}",
                    f.width, f.height
                )));
            }
            let base = t * 3 * plane;
            for (p, px) in f.data.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[base + c * plane + p] = px[c];
                }
            }
        }
        Ok((data, [frames.len(), 3, h, w]))
    }

    /// The normalised `f32` values (`T * 3 * H * W`), computed on the host.
    ///
    /// # Panics
    /// When `data` does not fill `shape` (as [`PixelNorm::normalize`]).
    pub fn normalized(&self) -> Vec<f32> {
        self.norm
            .normalize(&self.data, (self.shape[2] * self.shape[3]).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> RgbFrame {
        let mut f = RgbFrame::filled(w, h, [0, 0, 0]);
        for y in 0..h {
            for x in 0..w {
                let o = (y * w + x) * 3;
                f.data[o] = (x * 10) as u8;
                f.data[o + 1] = (y * 10) as u8;
                f.data[o + 2] = 7;
            }
        }
        f
    }

    #[test]
    fn crop_flip_and_identity_resize() {
        let f = gradient(6, 4);
        let c = f.crop(2, 1, 3, 2);
        assert_eq!((c.width, c.height), (3, 2));
        assert_eq!(c.pixel(0, 0), [20, 10, 7]);
        let fl = f.flip_horizontal();
        assert_eq!(fl.pixel(0, 0), f.pixel(5, 0));
        assert_eq!(fl.flip_horizontal(), f);
        assert_eq!(f.resize(6, 4), f);
    }

    #[test]
    fn resize_halves_and_keeps_linear_ramps() {
        let f = gradient(8, 8);
        let r = f.resize(4, 4);
        // Output pixel 1 samples source coordinate 2.5: value 25 on the ramp.
        assert_eq!(r.pixel(1, 0)[0], 25);
        assert_eq!(r.pixel(0, 1)[1], 25);
        assert_eq!(r.pixel(3, 3)[2], 7);
    }

    #[test]
    fn short_side_target_keeps_aspect() {
        assert_eq!(Resize::ShortSide(128).target(340, 256), (170, 128));
        assert_eq!(Resize::ShortSide(128).target(256, 340), (128, 170));
        assert_eq!(Resize::None.target(5, 7), (5, 7));
    }

    #[test]
    fn clip_layout_is_t_c_h_w_and_normalised() {
        let a = RgbFrame::filled(2, 1, [255, 0, 51]);
        let b = RgbFrame::filled(2, 1, [0, 255, 0]);
        let (data, shape) = Clip::from_frames(&[a, b.clone()]).unwrap();
        assert_eq!(shape, [2, 3, 1, 2]);
        assert_eq!(data, [255, 255, 0, 0, 51, 51, 0, 0, 255, 255, 0, 0]);
        let clip = Clip {
            data,
            shape,
            norm: PixelNorm::UNIT,
            label: 0,
            appearance_label: None,
            sample: 0,
            view: 0,
        };
        let want = [1.0, 1.0, 0.0, 0.0, 0.2, 0.2, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let got = clip.normalized();
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        assert!(Clip::from_frames(&[]).is_err());
        let wide = RgbFrame::filled(3, 1, [0; 3]);
        assert!(Clip::from_frames(&[b, wide]).is_err());
    }
}
