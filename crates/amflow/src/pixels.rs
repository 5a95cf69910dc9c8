//! 8-bit clips to normalised float tensors, on the device.
//!
//! The data pipeline hands over clips as `u8` (a quarter of the host memory and of the
//! host-to-device transfer of `f32`); [`normalized_pixels`] uploads them as such and makes the
//! model's input there: `v * scale[c] - shift[c]` per channel `c`, with `[.., 3, 1, 1]`
//! broadcast tensors. With `scale = 1 / (255 std)` and `shift = mean / std` (as
//! `amflow_video::PixelNorm` computes them) this is `(v / 255 - mean) / std`, with the same two
//! `f32` operations as the host reference, so a CPU device gives the host's values bit for bit.
//!
//! A device that cannot hold `u8` tensors (checked with [`Device::supports_dtype`]) gets the
//! pixel values as `f32` instead, still unnormalised: the same numbers, without the saving.

use burn::prelude::*;
use burn::tensor::DType;

use crate::error::{AmflowError, Result};

/// Uploads pixels `data` (row-major `shape`, the channel axis third from the end:
/// `[.., 3, H, W]`) to `device` as 8-bit values and returns `data * scale - shift` per
/// channel as a float tensor (module docs).
///
/// # Errors
/// [`AmflowError::Input`] when `shape` has fewer than three axes, its channel axis is not 3,
/// or it does not hold `data.len()` values.
pub fn normalized_pixels<const D: usize>(
    data: Vec<u8>,
    shape: [usize; D],
    scale: [f32; 3],
    shift: [f32; 3],
    device: &Device,
) -> Result<Tensor<D>> {
    if D < 3 || shape[D - 3] != 3 {
        return Err(AmflowError::Input(format!(
            "pixels of shape {shape:?}: expected [.., 3, H, W]"
        )));
    }
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(AmflowError::Input(format!(
            "shape {shape:?} holds {n} values, got {}",
            data.len()
        )));
    }
    let values = pixel_values(data, shape, device.supports_dtype(DType::U8), device);
    let mut channel = [1usize; D];
    channel[D - 3] = 3;
    let per_channel =
        |v: [f32; 3]| Tensor::<D>::from_data(TensorData::new(v.to_vec(), channel), device);
    Ok(values * per_channel(scale) - per_channel(shift))
}

/// The pixel values as a float tensor on `device`, uploaded as `u8` (`as_bytes`) or widened to
/// `f32` on the host first; the values are the same.
fn pixel_values<const D: usize>(
    data: Vec<u8>,
    shape: [usize; D],
    as_bytes: bool,
    device: &Device,
) -> Tensor<D> {
    if as_bytes {
        Tensor::<D, Int>::from_data(TensorData::new(data, shape), (device, DType::U8)).float()
    } else {
        let wide: Vec<f32> = data.into_iter().map(f32::from).collect();
        Tensor::<D>::from_data(TensorData::new(wide, shape), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_are_scaled_and_shifted_per_channel() {
        let device = Device::flex();
        // [1, 3, 1, 2]: channel c holds (10 c, 255).
        let data = vec![0, 255, 10, 255, 20, 255];
        let t = normalized_pixels(
            data,
            [1, 3, 1, 2],
            [1.0, 0.5, 0.25],
            [0.0, 1.0, 2.0],
            &device,
        )
        .unwrap();
        let got = crate::read_values(t);
        assert_eq!(got, [0.0, 255.0, 4.0, 126.5, 3.0, 61.75]);
    }

    #[test]
    fn bytes_and_the_f32_fallback_upload_the_same_values() {
        let device = Device::flex();
        assert!(device.supports_dtype(DType::U8));
        let data: Vec<u8> = (0..=255).chain(0..=255).chain(0..=255).collect();
        let shape = [1, 3, 16, 16];
        let bytes = crate::read_values(pixel_values(data.clone(), shape, true, &device));
        let wide = crate::read_values(pixel_values(data.clone(), shape, false, &device));
        let want: Vec<f32> = data.iter().map(|&v| f32::from(v)).collect();
        assert_eq!(bytes, want);
        assert_eq!(wide, want);
    }

    #[test]
    fn shapes_without_three_channels_or_values_are_refused() {
        let device = Device::flex();
        let e = normalized_pixels(vec![0; 4], [1, 4, 1, 1], [1.0; 3], [0.0; 3], &device);
        assert!(e.unwrap_err().to_string().contains("[.., 3, H, W]"));
        let e = normalized_pixels(vec![0; 5], [1, 3, 1, 2], [1.0; 3], [0.0; 3], &device);
        assert!(e.unwrap_err().to_string().contains("holds 6 values"));
    }
}
