//! Rendering a scene's frames: world coordinates through the camera, the background pattern,
//! the objects in order, optional pixel noise.

use amflow_rng::{derive_seed, SplitMix64};

use super::scene::{Background, Scene};
use crate::frame::RgbFrame;

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

    pub(super) fn render(&self, size: usize, t: usize, noise: f32) -> RgbFrame {
        let mut rng = SplitMix64::new(derive_seed(self.noise_seed, &[t as u64]));
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
