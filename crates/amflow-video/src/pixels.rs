//! Per-channel normalisation of 8-bit pixels, [`PixelNorm`]: what a dataset asks the model side
//! to do with the `u8` clips it produces. Clips and batches stay 8-bit on the host (a quarter of
//! the memory and of the host-to-device transfer of `f32`); the float values are made where the
//! model runs, normally on the device (`amflow::pixels`).
//!
//! The value of pixel `v` in channel `c` is `v * scale[c] - shift[c]` with
//! `scale = 1 / (255 std)` and `shift = mean / std` computed in `f32` ([`PixelNorm::scale`],
//! [`PixelNorm::shift`]): `(v / 255 - mean) / std` up to rounding, and the exact arithmetic the
//! pipeline has always used, so that the host reference ([`PixelNorm::normalize`]) and a device
//! doing the same two `f32` operations agree bit for bit.

use serde::{Deserialize, Serialize};

/// Per-channel (RGB) mean and standard deviation, applied after scaling pixels to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelNorm {
    /// Per-channel mean (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

impl Default for PixelNorm {
    fn default() -> Self {
        PixelNorm::UNIT
    }
}

impl PixelNorm {
    /// Plain `[0, 1]` values (mean 0, std 1).
    pub const UNIT: PixelNorm = PixelNorm {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Per-channel factor `1 / (255 std)`.
    pub fn scale(&self) -> [f32; 3] {
        std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]))
    }

    /// Per-channel offset `mean / std`.
    pub fn shift(&self) -> [f32; 3] {
        std::array::from_fn(|c| self.mean[c] / self.std[c])
    }

    /// The normalised `f32` values of planar RGB data (`[..., 3, plane]` row-major, `plane`
    /// pixels per channel plane): the host reference of the device path.
    ///
    /// # Panics
    /// When `data` is not a whole number of `3 x plane` blocks.
    pub fn normalize(&self, data: &[u8], plane: usize) -> Vec<f32> {
        assert!(
            plane > 0 && data.len().is_multiple_of(3 * plane),
            "{} values are not a whole number of 3 x {plane} blocks",
            data.len()
        );
        let (scale, shift) = (self.scale(), self.shift());
        let mut out = Vec::with_capacity(data.len());
        for block in data.chunks_exact(3 * plane) {
            for (c, channel) in block.chunks_exact(plane).enumerate() {
                out.extend(channel.iter().map(|&v| v as f32 * scale[c] - shift[c]));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_v_over_255_minus_mean_over_std_per_plane() {
        let norm = PixelNorm {
            mean: [0.5, 0.0, 0.25],
            std: [0.5, 1.0, 0.25],
        };
        // Two blocks (frames) of 3 planes of 2 pixels.
        let data = [255, 0, 51, 51, 255, 0, 0, 255, 0, 0, 51, 255];
        let got = norm.normalize(&data, 2);
        let want: Vec<f32> = data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / 2) % 3;
                (v as f32 / 255.0 - norm.mean[c]) / norm.std[c]
            })
            .collect();
        assert_eq!(got.len(), 12);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        assert_eq!(got[0], 1.0);
        assert_eq!(got[1], -1.0);
        assert_eq!(PixelNorm::UNIT.normalize(&[255, 0, 0], 1), [1.0, 0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "whole number")]
    fn normalize_rejects_partial_blocks() {
        PixelNorm::UNIT.normalize(&[1, 2, 3, 4], 1);
    }
}
