//! The model's input from the loader's 8-bit batches: pixels go to the device as `u8` and are
//! normalised there with the statistics the batch carries ([`amflow::pixels`]), a quarter of
//! the host memory and host-to-device transfer of `f32` batches. On the CPU device the values
//! equal the host's ([`amflow_video::PixelNorm::normalize`]) bit for bit.

use std::ops::Range;

use amflow::pixels::normalized_pixels;
use amflow_video::{Batch, PixelNorm};
use burn::prelude::*;

use crate::error::Result;

/// 8-bit clips `[B, T, 3, H, W]` (row-major `data`) and the normalisation they want: a view of
/// a [`Batch`]'s pixels, or of some of its clips.
#[derive(Debug, Clone, Copy)]
pub struct Pixels<'a> {
    /// `B * T * 3 * H * W` pixel values.
    pub data: &'a [u8],
    /// `[B, T, 3, H, W]`.
    pub shape: [usize; 5],
    /// Per-channel statistics.
    pub norm: &'a PixelNorm,
}

impl<'a> Pixels<'a> {
    /// The pixels of `batch`.
    pub fn of(batch: &'a Batch) -> Self {
        Pixels {
            data: &batch.data,
            shape: batch.shape,
            norm: &batch.norm,
        }
    }

    /// Clips `range` (clamped to the clips there are).
    pub fn clips(&self, range: Range<usize>) -> Self {
        let per: usize = self.shape[1..].iter().product();
        let end = range.end.min(self.shape[0]);
        let start = range.start.min(end);
        let mut shape = self.shape;
        shape[0] = end - start;
        Pixels {
            data: &self.data[start * per..end * per],
            shape,
            norm: self.norm,
        }
    }

    /// The clips on `device`, normalised there.
    ///
    /// # Errors
    /// As [`pixels_on`].
    pub fn to_device(&self, device: &Device) -> Result<Tensor<5>> {
        pixels_on(self.data.to_vec(), self.shape, self.norm, device)
    }
}

/// `data` (row-major `shape`, channel axis third from the end) on `device`, normalised with
/// `norm`.
///
/// # Errors
/// [`TrainError::Model`](crate::TrainError::Model) when `shape` does not fit `data`.
pub fn pixels_on<const D: usize>(
    data: Vec<u8>,
    shape: [usize; D],
    norm: &PixelNorm,
    device: &Device,
) -> Result<Tensor<D>> {
    Ok(normalized_pixels(
        data,
        shape,
        norm.scale(),
        norm.shift(),
        device,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amflow_video::transform::Normalization;
    use amflow_video::{Clip, RgbFrame, SplitMix64};

    /// Today's device path against the host path it replaced (`Clip::from_frames` of
    /// amflow-video before clips became 8-bit, copied here verbatim) and against
    /// `(v / 255 - mean) / std` in f64, for every preset and a custom normalisation, on
    /// frames that hold every byte value in every channel.
    #[test]
    fn device_normalisation_equals_the_host_f32_clip() {
        let (t, w, h) = (3, 16, 16);
        let mut rng = SplitMix64::new(11);
        let frames: Vec<RgbFrame> = (0..t)
            .map(|k| RgbFrame {
                width: w,
                height: h,
                data: (0..w * h * 3)
                    .map(|i| {
                        if k == 0 {
                            (i / 3) as u8
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect(),
            })
            .collect();
        let (data, shape) = Clip::from_frames(&frames).unwrap();
        let device = Device::flex();
        let presets = [
            ("imagenet", Normalization::ImageNet),
            ("clip", Normalization::Clip),
            ("unit", Normalization::Unit),
            (
                "custom",
                Normalization::Custom {
                    mean: [0.3, 0.5, 0.7],
                    std: [0.1, 0.9, 0.33],
                },
            ),
        ];
        for (name, n) in presets {
            let (mean, std) = n.mean_std();
            let old = old_host_clip(&frames, mean, std);
            let norm = n.pixel_norm();
            let batch_shape = [1, shape[0], shape[1], shape[2], shape[3]];
            let tensor = pixels_on(data.clone(), batch_shape, &norm, &device).unwrap();
            assert_eq!(tensor.dims(), batch_shape);
            let got = amflow::read_values(tensor);
            let host = norm.normalize(&data, w * h);
            // Largest absolute difference to the old path, largest relative one to exact.
            let (mut vs_old, mut vs_exact) = (0f32, 0f64);
            for (i, (&g, &o)) in got.iter().zip(&old).enumerate() {
                let c = (i / (w * h)) % 3;
                let v = f64::from(data[i]);
                let exact = (v / 255.0 - f64::from(mean[c])) / f64::from(std[c]);
                vs_old = vs_old.max((g - o).abs());
                vs_exact = vs_exact.max((f64::from(g) - exact).abs() / exact.abs().max(1.0));
            }
            println!(
                "{name}: max |device - old host f32| = {vs_old:e}, \
                 max |device - exact| / max(1, |exact|) = {vs_exact:e}"
            );
            assert_eq!(got.len(), old.len());
            assert!(vs_old <= 1e-6, "{name}: {vs_old}");
            // A few f32 roundings from the exact value.
            assert!(vs_exact <= 1e-6, "{name}: {vs_exact}");
            // The CPU device does the host's two f32 operations: identical values.
            assert_eq!(got, host, "{name}");
            assert_eq!(host, old, "{name}");
        }
    }

    /// The host normalisation of `Clip::from_frames` before clips became 8-bit.
    fn old_host_clip(frames: &[RgbFrame], mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
        let (w, h) = (frames[0].width, frames[0].height);
        let plane = w * h;
        let mut data = vec![0f32; frames.len() * 3 * plane];
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| mean[c] / std[c]);
        for (t, f) in frames.iter().enumerate() {
            let base = t * 3 * plane;
            for (p, px) in f.data.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[base + c * plane + p] = px[c] as f32 * scale[c] - shift[c];
                }
            }
        }
        data
    }

    #[test]
    fn clip_ranges_cut_the_batch_and_clamp() {
        let data: Vec<u8> = (0..24).collect();
        let norm = PixelNorm::UNIT;
        let all = Pixels {
            data: &data,
            shape: [4, 1, 3, 2, 1],
            norm: &norm,
        };
        let mid = all.clips(1..3);
        assert_eq!((mid.shape, mid.data), ([2, 1, 3, 2, 1], &data[6..18]));
        let tail = all.clips(3..9);
        assert_eq!((tail.shape[0], tail.data), (1, &data[18..]));
        assert_eq!(all.clips(5..9).shape[0], 0);
        let t = mid.to_device(&Device::flex()).unwrap();
        assert_eq!(amflow::read_values(t), norm.normalize(&data[6..18], 2));
    }

    #[test]
    fn a_loader_batch_goes_to_the_device_normalised_as_on_the_host() {
        use amflow_video::{Loader, LoaderConfig, SyntheticMotionConfig, SyntheticMotionDataset};
        use std::sync::Arc;
        let data = SyntheticMotionDataset::new(SyntheticMotionConfig {
            num_samples: 3,
            num_frames: 2,
            size: 8,
            normalization: Normalization::Clip,
            ..SyntheticMotionConfig::default()
        })
        .unwrap();
        let loader = Loader::new(
            Arc::new(data),
            LoaderConfig {
                batch_size: 3,
                workers: 1,
                ..LoaderConfig::default()
            },
        )
        .unwrap();
        let batch = loader.epoch(0).next().unwrap().unwrap();
        assert_eq!(batch.norm, Normalization::Clip.pixel_norm());
        let host = batch.normalized();
        let clip = pixels_on(batch.data, batch.shape, &batch.norm, &Device::flex()).unwrap();
        let got = amflow::read_values(clip);
        assert_eq!(got, host);
    }
}
