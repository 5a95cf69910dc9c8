//! Resizing a position-embedding grid exactly as PyTorch's `nn.functional.interpolate` does
//! with `mode="bicubic", align_corners=False`, with and without `antialias=True`, in f32.
//!
//! This is what `transformers` (5.23–5.24) runs when a DINOv2 or CLIP model sees another patch
//! grid than the one it was trained on (model spec, section 7). The computation is separable:
//! each output row/column is a weighted sum of input rows/columns.
//! - Plain bicubic: source coordinate `(i + 0.5) * scale - 0.5`, Keys' cubic convolution with
//!   `A = -0.75`, four taps with indices clamped to the border.
//! - Antialiased bicubic: PIL-style filter with `a = -0.5`, support `2 * max(scale, 1)`, taps
//!   restricted to the image and weights normalised to sum to one.

/// One output sample: `(input index, weight)` pairs.
type Taps = Vec<(usize, f32)>;

fn cubic_keys(x: f32, a: f32) -> f32 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// Taps of PyTorch's `upsample_bicubic2d` along one axis.
fn bicubic_taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    const A: f32 = -0.75;
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|i| {
            let real = scale * (i as f32 + 0.5) - 0.5;
            let idx = real.floor();
            let t = real - idx;
            let idx = idx as i64;
            let w = [
                cubic_keys(t + 1.0, A),
                cubic_keys(t, A),
                cubic_keys(1.0 - t, A),
                cubic_keys(2.0 - t, A),
            ];
            (0..4)
                .map(|k| {
                    let j = (idx - 1 + k as i64).clamp(0, in_size as i64 - 1) as usize;
                    (j, w[k])
                })
                .collect()
        })
        .collect()
}

/// Taps of PyTorch's `_upsample_bicubic2d_aa` along one axis.
fn bicubic_aa_taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    const A: f32 = -0.5;
    let scale = in_size as f32 / out_size as f32;
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..out_size)
        .map(|i| {
            let center = scale * (i as f32 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut taps: Taps = (xmin..xmax)
                .map(|j| {
                    let w = cubic_keys((j as f32 - center + 0.5) * invscale, A);
                    (j, w)
                })
                .collect();
            let total: f32 = taps.iter().map(|t| t.1).sum();
            if total != 0.0 {
                for t in &mut taps {
                    t.1 /= total;
                }
            }
            taps
        })
        .collect()
}

/// Resizes a `[in_h, in_w, dim]` grid (row-major, channels last) to `[out_h, out_w, dim]`.
pub fn resize_grid(
    grid: &[f32],
    (in_h, in_w): (usize, usize),
    (out_h, out_w): (usize, usize),
    dim: usize,
    antialias: bool,
) -> Vec<f32> {
    assert_eq!(grid.len(), in_h * in_w * dim, "grid size mismatch");
    let taps = if antialias {
        bicubic_aa_taps
    } else {
        bicubic_taps
    };
    let (ty, tx) = (taps(in_h, out_h), taps(in_w, out_w));
    // Along x first: [in_h, out_w, dim].
    let mut horiz = vec![0.0f32; in_h * out_w * dim];
    for y in 0..in_h {
        for (x, tap) in tx.iter().enumerate() {
            let out = &mut horiz[(y * out_w + x) * dim..(y * out_w + x + 1) * dim];
            for &(j, w) in tap {
                let src = &grid[(y * in_w + j) * dim..(y * in_w + j + 1) * dim];
                for (o, s) in out.iter_mut().zip(src) {
                    *o += w * s;
                }
            }
        }
    }
    let mut result = vec![0.0f32; out_h * out_w * dim];
    for (y, tap) in ty.iter().enumerate() {
        for x in 0..out_w {
            let out = &mut result[(y * out_w + x) * dim..(y * out_w + x + 1) * dim];
            for &(j, w) in tap {
                let src = &horiz[(j * out_w + x) * dim..(j * out_w + x + 1) * dim];
                for (o, s) in out.iter_mut().zip(src) {
                    *o += w * s;
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_identity_without_antialias() {
        let grid: Vec<f32> = (0..3 * 4 * 2).map(|v| v as f32 * 0.1).collect();
        let out = resize_grid(&grid, (3, 4), (3, 4), 2, false);
        for (a, b) in grid.iter().zip(&out) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn constant_grid_stays_constant() {
        let grid = vec![2.5f32; 4 * 4 * 3];
        for aa in [false, true] {
            for (oh, ow) in [(7, 5), (2, 3), (4, 9)] {
                let out = resize_grid(&grid, (4, 4), (oh, ow), 3, aa);
                assert!(
                    out.iter().all(|v| (v - 2.5).abs() < 1e-5),
                    "aa={aa} {oh}x{ow}"
                );
            }
        }
    }

    #[test]
    fn keys_weights_sum_to_one() {
        for t in [0.0f32, 0.25, 0.5, 0.9] {
            let s = cubic_keys(t + 1.0, -0.75)
                + cubic_keys(t, -0.75)
                + cubic_keys(1.0 - t, -0.75)
                + cubic_keys(2.0 - t, -0.75);
            assert!((s - 1.0).abs() < 1e-6);
        }
    }
}
