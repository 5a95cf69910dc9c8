//! AM flow pictures: principal-component colouring of token features and the
//! frames-plus-blocks figure layout.
//!
//! Follows Figure 5 of the AM Flow paper ("AM flow visualised for each
//! transformer block, PCA along the channel dimension reduced to 3 (RGB)"):
//! for one block the flow tensor has one `channels`-long vector per token on a
//! `tokens_h x tokens_w` grid; [`pca_rgb`] centres the vectors, finds the top
//! three principal directions of their covariance and maps each token's three
//! projections to R, G and B, each stretched to 0..=255 independently.
//! [`compose_grid`] puts the input frames in the top row and one flow map per
//! block in a grid below, each with a caption.
//!
//! Numerics: everything runs in `f64`. The eigenvectors come from subspace
//! (block power) iteration on the smaller of the covariance `XᵀX` and the Gram
//! matrix `XXᵀ`, with a Rayleigh-Ritz step solved by cyclic Jacobi rotations
//! (Golub & Van Loan, "Matrix Computations", sections 8.2 and 8.5). Start
//! vectors come from the project's one generator, `amflow_rng::SplitMix64`,
//! with a fixed seed, so results are deterministic.
//! Sign convention: each principal direction is flipped so that its entry of
//! largest magnitude (the first such on ties) is positive.

use amflow_rng::SplitMix64;

use crate::error::{ReportError, Result};
use crate::font::{draw_text_centered, text_height, truncate, INK};
use crate::image::{resize_nearest, RgbImage};

/// Result of a principal component analysis of `n` vectors of `d` channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Channel means that were subtracted (length `d`).
    pub mean: Vec<f64>,
    /// Principal directions, strongest first, each of length `d` and unit
    /// norm (or all zeros where the data has fewer non-degenerate directions).
    pub components: Vec<Vec<f64>>,
    /// Variance along each component (covariance eigenvalues, divided by `n`).
    pub variances: Vec<f64>,
    /// Projections: `scores[i][k]` is vector `i` on component `k`.
    pub scores: Vec<Vec<f64>>,
}

/// Top-`k` principal components of `values`, read as `n` rows of `d` values
/// (row-major). Non-finite inputs are treated as 0. Components beyond the rank
/// of the data (including all of them for constant input) are zero vectors
/// with zero variance and zero scores.
pub fn pca(values: &[f32], n: usize, d: usize, k: usize) -> Result<Pca> {
    pca_seeded(values, n, d, k, START_SEED)
}

/// [`pca`] with the seed of the subspace iteration's start vectors.
fn pca_seeded(values: &[f32], n: usize, d: usize, k: usize, seed: u64) -> Result<Pca> {
    if n == 0 || d == 0 {
        return Err(ReportError::invalid(format!(
            "PCA of {n} vectors of {d} channels"
        )));
    }
    let len = n
        .checked_mul(d)
        .ok_or_else(|| ReportError::invalid("PCA input size overflows"))?;
    if values.len() != len {
        return Err(ReportError::invalid(format!(
            "expected {n} x {d} = {len} values, got {}",
            values.len()
        )));
    }
    let clean = |v: f32| if v.is_finite() { v as f64 } else { 0.0 };
    let mut mean = vec![0.0f64; d];
    for row in values.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += clean(v);
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let x: Vec<f64> = values
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| clean(v) - m))
        .collect();

    // Work on the smaller symmetric matrix.
    let use_gram = n < d;
    let m = n.min(d);
    let mut mat = vec![0.0f64; m * m];
    if use_gram {
        for i in 0..n {
            for j in i..n {
                let dot: f64 = x[i * d..(i + 1) * d]
                    .iter()
                    .zip(&x[j * d..(j + 1) * d])
                    .map(|(a, b)| a * b)
                    .sum();
                mat[i * m + j] = dot;
                mat[j * m + i] = dot;
            }
        }
    } else {
        for row in x.chunks_exact(d) {
            for a in 0..d {
                let ra = row[a];
                if ra == 0.0 {
                    continue;
                }
                let out = &mut mat[a * m..(a + 1) * m];
                for b in a..d {
                    out[b] += ra * row[b];
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                mat[a * m + b] = mat[b * m + a];
            }
        }
    }
    let scale = mat.iter().fold(0f64, |s, v| s.max(v.abs()));
    let (eigvals, eigvecs) = top_eigen(&mat, m, k.min(m), seed);

    let mut components = Vec::with_capacity(k);
    let mut variances = Vec::with_capacity(k);
    for (idx, lambda) in eigvals.iter().enumerate() {
        let degenerate = scale == 0.0 || *lambda <= scale * 1e-10;
        let mut v = vec![0.0f64; d];
        if !degenerate {
            let u = &eigvecs[idx];
            if use_gram {
                // v = Xᵀu, normalised.
                for (i, ui) in u.iter().enumerate() {
                    for (vc, xc) in v.iter_mut().zip(&x[i * d..(i + 1) * d]) {
                        *vc += ui * xc;
                    }
                }
            } else {
                v.copy_from_slice(u);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 0.0 && norm.is_finite() {
                v.iter_mut().for_each(|a| *a /= norm);
                // Deterministic sign: largest-magnitude entry positive.
                let mut best = 0;
                for (i, a) in v.iter().enumerate() {
                    if a.abs() > v[best].abs() {
                        best = i;
                    }
                }
                if v[best] < 0.0 {
                    v.iter_mut().for_each(|a| *a = -*a);
                }
            } else {
                v.iter_mut().for_each(|a| *a = 0.0);
            }
        }
        let var = if v.iter().any(|a| *a != 0.0) {
            lambda / n as f64
        } else {
            0.0
        };
        components.push(v);
        variances.push(var);
    }
    while components.len() < k {
        components.push(vec![0.0; d]);
        variances.push(0.0);
    }
    let scores = x
        .chunks_exact(d)
        .map(|row| {
            components
                .iter()
                .map(|c| row.iter().zip(c).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    Ok(Pca {
        mean,
        components,
        variances,
        scores,
    })
}

/// Seed of the subspace iteration's start vectors (any fixed value works: the
/// sign convention makes the result independent of it).
const START_SEED: u64 = 0xA3F1_0005;

/// Largest `k` eigenpairs of the symmetric PSD `m x m` matrix `a` (row-major),
/// by subspace iteration with Rayleigh-Ritz, starting from vectors drawn from
/// `SplitMix64::new(seed)`. Eigenvalues descending; eigenvector signs arbitrary.
fn top_eigen(a: &[f64], m: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<Vec<f64>>) {
    if k == 0 {
        return (Vec::new(), Vec::new());
    }
    let p = (k + 3).min(m);
    // Deterministic start: the project's generator, mapped to [-1, 1).
    let mut rng = SplitMix64::new(seed);
    let mut q: Vec<Vec<f64>> = (0..p)
        .map(|_| (0..m).map(|_| rng.next_f64() * 2.0 - 1.0).collect())
        .collect();
    orthonormalise(&mut q);
    let matvec = |v: &[f64]| -> Vec<f64> {
        (0..m)
            .map(|i| {
                a[i * m..(i + 1) * m]
                    .iter()
                    .zip(v)
                    .map(|(x, y)| x * y)
                    .sum()
            })
            .collect()
    };
    for _ in 0..1000 {
        let mut z: Vec<Vec<f64>> = q.iter().map(|v| matvec(v)).collect();
        orthonormalise(&mut z);
        let delta = q
            .iter()
            .zip(&z)
            .take(k)
            .map(|(old, new)| {
                // 1 - |cos| between old and new direction.
                let dot: f64 = old.iter().zip(new).map(|(x, y)| x * y).sum();
                1.0 - dot.abs()
            })
            .fold(0f64, f64::max);
        q = z;
        if delta < 1e-14 {
            break;
        }
    }
    // Rayleigh-Ritz: T = QᵀAQ, then rotate Q by T's eigenvectors.
    let aq: Vec<Vec<f64>> = q.iter().map(|v| matvec(v)).collect();
    let mut t = vec![0.0f64; p * p];
    for i in 0..p {
        for j in 0..p {
            t[i * p + j] = q[i].iter().zip(&aq[j]).map(|(x, y)| x * y).sum();
        }
    }
    for i in 0..p {
        for j in 0..i {
            let s = 0.5 * (t[i * p + j] + t[j * p + i]);
            t[i * p + j] = s;
            t[j * p + i] = s;
        }
    }
    let (vals, vecs) = jacobi_eigen(&t, p);
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&x, &y| vals[y].total_cmp(&vals[x]));
    let mut out_vals = Vec::with_capacity(k);
    let mut out_vecs = Vec::with_capacity(k);
    for &o in order.iter().take(k) {
        out_vals.push(vals[o].max(0.0));
        let mut v = vec![0.0f64; m];
        for (j, qj) in q.iter().enumerate() {
            let w = vecs[j * p + o];
            for (vi, qi) in v.iter_mut().zip(qj) {
                *vi += w * qi;
            }
        }
        out_vecs.push(v);
    }
    (out_vals, out_vecs)
}

/// Modified Gram-Schmidt; columns that vanish (linearly dependent) become 0.
fn orthonormalise(vs: &mut [Vec<f64>]) {
    for i in 0..vs.len() {
        let (done, rest) = vs.split_at_mut(i);
        let v = &mut rest[0];
        let before = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        for u in done.iter() {
            let dot: f64 = v.iter().zip(u.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u.iter()).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-12 * before.max(f64::MIN_POSITIVE) && norm.is_finite() && norm > 0.0 {
            v.iter_mut().for_each(|a| *a /= norm);
        } else {
            v.iter_mut().for_each(|a| *a = 0.0);
        }
    }
}

/// Cyclic Jacobi eigen-decomposition of a small symmetric `p x p` matrix.
/// Returns eigenvalues and the eigenvector matrix (column `j` = vector `j`).
fn jacobi_eigen(a: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0f64; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..p)
            .flat_map(|i| (0..p).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * p + j] * a[i * p + j])
            .sum();
        let diag: f64 = (0..p).map(|i| a[i * p + i] * a[i * p + i]).sum();
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) || off == 0.0 {
            break;
        }
        for r in 0..p {
            for c in r + 1..p {
                let arc = a[r * p + c];
                if arc == 0.0 {
                    continue;
                }
                let theta = (a[c * p + c] - a[r * p + r]) / (2.0 * arc);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let cs = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * cs;
                for k in 0..p {
                    let akr = a[k * p + r];
                    let akc = a[k * p + c];
                    a[k * p + r] = cs * akr - sn * akc;
                    a[k * p + c] = sn * akr + cs * akc;
                }
                for k in 0..p {
                    let ark = a[r * p + k];
                    let ack = a[c * p + k];
                    a[r * p + k] = cs * ark - sn * ack;
                    a[c * p + k] = sn * ark + cs * ack;
                }
                for k in 0..p {
                    let vkr = v[k * p + r];
                    let vkc = v[k * p + c];
                    v[k * p + r] = cs * vkr - sn * vkc;
                    v[k * p + c] = sn * vkr + cs * vkc;
                }
            }
        }
    }
    ((0..p).map(|i| a[i * p + i]).collect(), v)
}

/// Colours a `tokens_h x tokens_w` grid of `channels`-long token vectors by
/// their top three principal components (R = first, G = second, B = third),
/// each stretched independently to 0..=255 over the grid.
///
/// `values` is token-major: token `(y, x)` occupies
/// `values[(y * tokens_w + x) * channels ..][..channels]`. With fewer than
/// three channels (or data of lower rank) the missing components are 0, and a
/// component that is constant over the grid (e.g. constant input) is 0 too, so
/// the output never contains NaN-derived values. The result is
/// `tokens_w` pixels wide and `tokens_h` high; enlarge it with
/// [`crate::image::upscale_nearest`].
pub fn pca_rgb(
    values: &[f32],
    tokens_h: usize,
    tokens_w: usize,
    channels: usize,
) -> Result<RgbImage> {
    let n = tokens_h
        .checked_mul(tokens_w)
        .ok_or_else(|| ReportError::invalid("token grid size overflows"))?;
    let p = pca(values, n, channels, 3)?;
    let mut img = RgbImage::new(tokens_w, tokens_h);
    for comp in 0..3 {
        let col: Vec<f64> = p.scores.iter().map(|s| s[comp]).collect();
        let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = hi - lo;
        let spread = p.variances[comp].sqrt();
        if !(range.is_finite() && range > 0.0 && spread > 0.0) {
            continue;
        }
        for (i, v) in col.iter().enumerate() {
            let byte = ((v - lo) / range * 255.0).round().clamp(0.0, 255.0) as u8;
            img.data[i * 3 + comp] = byte;
        }
    }
    Ok(img)
}

/// Scales `img` to fit inside `max_w x max_h` keeping its aspect ratio:
/// enlarging uses the largest integer nearest-neighbour factor (crisp token
/// blocks), shrinking averages the source pixels that fall into each output
/// pixel (box filter).
pub fn fit_image(img: &RgbImage, max_w: usize, max_h: usize) -> RgbImage {
    if img.width == 0 || img.height == 0 || max_w == 0 || max_h == 0 {
        return RgbImage::new(max_w.min(1), max_h.min(1));
    }
    if img.width <= max_w && img.height <= max_h {
        let f = (max_w / img.width).min(max_h / img.height).max(1);
        return resize_nearest(img, img.width * f, img.height * f);
    }
    let s = (max_w as f64 / img.width as f64).min(max_h as f64 / img.height as f64);
    let w = ((img.width as f64 * s).floor() as usize).clamp(1, max_w);
    let h = ((img.height as f64 * s).floor() as usize).clamp(1, max_h);
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let (sy0, sy1) = (
            y * img.height / h,
            ((y + 1) * img.height / h).max(y * img.height / h + 1),
        );
        for x in 0..w {
            let (sx0, sx1) = (
                x * img.width / w,
                ((x + 1) * img.width / w).max(x * img.width / w + 1),
            );
            let mut acc = [0u64; 3];
            let mut count = 0u64;
            for sy in sy0..sy1.min(img.height) {
                for sx in sx0..sx1.min(img.width) {
                    let i = (sy * img.width + sx) * 3;
                    for (a, v) in acc.iter_mut().zip(&img.data[i..i + 3]) {
                        *a += u64::from(*v);
                    }
                    count += 1;
                }
            }
            let o = (y * w + x) * 3;
            for (dst, a) in out.data[o..o + 3].iter_mut().zip(acc) {
                *dst = (a / count.max(1)) as u8;
            }
        }
    }
    out
}

/// Side of the square cell each picture is fitted into by [`compose_grid`].
pub const TILE: usize = 160;
/// Flow maps per row in [`compose_grid`].
pub const GRID_COLS: usize = 6;

/// Lays out the input `frames` (captioned "frame 1", "frame 2", ...) in the top
/// row and the per-block `flows` in rows of up to six below, captioned with
/// `labels[i]` or "block i+1" where `labels` is shorter. Every picture is
/// fitted into a 160x160 cell (see [`fit_image`]) on a white background.
pub fn compose_grid(
    frames: &[RgbImage],
    flows: &[RgbImage],
    labels: &[String],
) -> Result<RgbImage> {
    compose_grid_with(frames, flows, labels, TILE, GRID_COLS)
}

/// [`compose_grid`] with an explicit cell size (at least 16) and number of
/// flow maps per row (0 means all in one row).
pub fn compose_grid_with(
    frames: &[RgbImage],
    flows: &[RgbImage],
    labels: &[String],
    tile: usize,
    cols: usize,
) -> Result<RgbImage> {
    if frames.is_empty() && flows.is_empty() {
        return Err(ReportError::invalid(
            "nothing to lay out: no frames and no flows",
        ));
    }
    if tile < 16 {
        return Err(ReportError::invalid(format!("tile size {tile} below 16")));
    }
    if let Some(bad) = frames
        .iter()
        .chain(flows)
        .find(|i| i.data.len() != i.width * i.height * 3)
    {
        return Err(ReportError::invalid(format!(
            "{}x{} image has {} bytes",
            bad.width,
            bad.height,
            bad.data.len()
        )));
    }
    let cols = if cols == 0 {
        flows.len().max(1)
    } else {
        cols.min(flows.len().max(1))
    };
    let gap = 10;
    let caption_h = text_height(1) + 8;
    let cell_h = tile + caption_h;
    let flow_rows = flows.len().div_ceil(cols);
    let grid_cols = cols.max(frames.len());
    let width = gap + grid_cols * (tile + gap);
    let frame_rows = usize::from(!frames.is_empty());
    let sep = if frame_rows == 1 && flow_rows > 0 {
        gap
    } else {
        0
    };
    let height = gap + (frame_rows + flow_rows) * (cell_h + gap) + sep;
    let mut img = RgbImage::filled(width, height, [255, 255, 255]);
    let max_chars = tile / 6;

    let place = |img: &mut RgbImage, pic: &RgbImage, cx: usize, cy: usize, caption: &str| {
        let fitted = fit_image(pic, tile, tile);
        let ox = cx + (tile - fitted.width) / 2;
        let oy = cy + (tile - fitted.height) / 2;
        img.blit(&fitted, ox as i64, oy as i64);
        let cap = truncate(caption, max_chars);
        draw_text_centered(img, cx, tile, cy + tile + 4, &cap, INK, 1);
    };

    // Frames centred in the top row.
    if !frames.is_empty() {
        let row_w = frames.len() * (tile + gap) - gap;
        let x0 = (width - row_w) / 2;
        for (i, f) in frames.iter().enumerate() {
            place(
                &mut img,
                f,
                x0 + i * (tile + gap),
                gap,
                &format!("frame {}", i + 1),
            );
        }
    }
    let y0 = gap + frame_rows * (cell_h + gap) + sep;
    if sep > 0 {
        img.fill_rect(
            gap as i64,
            (y0 - sep / 2 - gap / 2) as i64,
            width - 2 * gap,
            1,
            [200, 200, 200],
        );
    }
    for (i, f) in flows.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let caption = labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("block {}", i + 1));
        place(
            &mut img,
            f,
            gap + c * (tile + gap),
            y0 + r * (cell_h + gap),
            &caption,
        );
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises() {
        let a = [4.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let (vals, vecs) = jacobi_eigen(&a, 3);
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| a[i * 3 + k] * vecs[k * 3 + j]).sum();
                assert!((av - vals[j] * vecs[i * 3 + j]).abs() < 1e-10);
            }
        }
        let trace: f64 = vals.iter().sum();
        assert!((trace - 9.0).abs() < 1e-10);
    }

    #[test]
    fn top_eigen_matches_known_spectrum() {
        // diag(5, 1, 3, 0.5) rotated? Use a diagonal matrix: eigenvectors are axes.
        let m = 4;
        let mut a = vec![0.0; 16];
        for (i, v) in [5.0, 1.0, 3.0, 0.5].iter().enumerate() {
            a[i * m + i] = *v;
        }
        let (vals, vecs) = top_eigen(&a, m, 3, START_SEED);
        assert!(
            (vals[0] - 5.0).abs() < 1e-9
                && (vals[1] - 3.0).abs() < 1e-9
                && (vals[2] - 1.0).abs() < 1e-9
        );
        assert!(vecs[0][0].abs() > 1.0 - 1e-9);
        assert!(vecs[1][2].abs() > 1.0 - 1e-9);
        assert!(vecs[2][1].abs() > 1.0 - 1e-9);
    }

    #[test]
    fn result_does_not_depend_on_the_start_vectors() {
        // Structured data (two strong directions) and plain noise, both paths
        // (covariance for n > d, Gram matrix for n < d).
        let mut rng = SplitMix64::new(99);
        for (n, d) in [(60, 12), (10, 40)] {
            let values: Vec<f32> = (0..n * d)
                .map(|i| {
                    let (t, c) = ((i / d) as f32, (i % d) as f32);
                    3.0 * (t * 0.3).sin() * (c * 0.7).cos()
                        + (t * 0.11).cos() * (c * 0.2).sin()
                        + 0.1 * rng.next_f32()
                })
                .collect();
            let base = pca_seeded(&values, n, d, 3, START_SEED).unwrap();
            for seed in [1, 2, 0xDEAD_BEEF] {
                let other = pca_seeded(&values, n, d, 3, seed).unwrap();
                for (a, b) in base.components.iter().zip(&other.components) {
                    let diff = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f64::max);
                    assert!(
                        diff < 1e-8,
                        "({n}, {d}) seed {seed}: components differ by {diff}"
                    );
                }
                for (a, b) in base.variances.iter().zip(&other.variances) {
                    assert!((a - b).abs() <= 1e-10 * a.abs().max(1.0));
                }
            }
            // The convention itself: each direction's largest-magnitude entry is positive.
            for c in &base.components {
                let big = c
                    .iter()
                    .copied()
                    .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
                assert!(big > 0.0);
            }
        }
    }
}
