//! PCA colouring of token features and the frames-plus-blocks figure: the
//! principal directions against data built from known ones, the colours
//! against the projections, and in the figure where each picture, caption and
//! separator lands.

mod common;

use amflow_report::font::{text_width, INK};
use amflow_report::{compose_grid, fit_image, pca, pca_rgb, upscale_nearest, RgbImage};
use amflow_rng::SplitMix64;
use common::{decode_png, find_text, find_text_once};

/// Deterministic noise in [-1, 1) from the project's one generator.
fn noise(rng: &mut SplitMix64) -> f64 {
    rng.next_f64() * 2.0 - 1.0
}

fn unit(v: Vec<f64>) -> Vec<f64> {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

/// Tokens = mean + a_t * u + b_t * w + small noise, with |a| >> |b|.
fn synthetic(h: usize, w: usize, d: usize) -> (Vec<f32>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = h * w;
    // u: largest entry (channel 1) positive; w orthogonal to u.
    let u = unit(
        (0..d)
            .map(|c| {
                if c == 1 {
                    3.0
                } else {
                    0.5 + (c % 3) as f64 * 0.1
                }
            })
            .collect(),
    );
    let raw_w: Vec<f64> = (0..d)
        .map(|c| if c % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let proj: f64 = raw_w.iter().zip(&u).map(|(a, b)| a * b).sum();
    let wv = unit(raw_w.iter().zip(&u).map(|(a, b)| a - proj * b).collect());
    // Sample coefficients: a linear ramp and a wiggle made exactly uncorrelated
    // with it (both centred), so u and w are the sample's principal directions.
    let a_t: Vec<f64> = (0..n).map(|t| (t as f64 / n as f64 - 0.5) * 10.0).collect();
    let a_mean = a_t.iter().sum::<f64>() / n as f64;
    let mut b_t: Vec<f64> = (0..n).map(|t| 2.0 * ((t * 7) as f64).sin()).collect();
    let b_mean = b_t.iter().sum::<f64>() / n as f64;
    b_t.iter_mut().for_each(|b| *b -= b_mean);
    let ac: Vec<f64> = a_t.iter().map(|a| a - a_mean).collect();
    let k = dot(&b_t, &ac) / dot(&ac, &ac);
    b_t.iter_mut().zip(&ac).for_each(|(b, a)| *b -= k * a);
    let mut rng = SplitMix64::new(7);
    let mut vals = Vec::with_capacity(n * d);
    for t in 0..n {
        for c in 0..d {
            let v = 1.5 + a_t[t] * u[c] + b_t[t] * wv[c] + 0.001 * noise(&mut rng);
            vals.push(v as f32);
        }
    }
    (vals, u, wv, a_t)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn pca_finds_dominant_direction_covariance_and_gram_paths() {
    // (14, 14, 16): n > d uses the covariance; (4, 4, 64): n < d uses the Gram matrix.
    for (h, w, d) in [(14, 14, 16), (4, 4, 64)] {
        let (vals, u, wv, a_t) = synthetic(h, w, d);
        let p = pca(&vals, h * w, d, 3).unwrap();
        let c0 = dot(&p.components[0], &u);
        assert!(
            c0 > 0.999,
            "first PC vs u ({h},{w},{d}): {c0} {:?}",
            p.variances
        );
        assert!(dot(&p.components[1], &wv).abs() > 0.99, "second PC vs w");
        assert!(p.variances[0] > p.variances[1] && p.variances[1] > p.variances[2]);
        for c in &p.components {
            let norm = dot(c, c);
            assert!((norm - 1.0).abs() < 1e-9);
        }
        // Red follows a_t: the token with the largest a is brightest red.
        let img = pca_rgb(&vals, h, w, d).unwrap();
        assert_eq!((img.width, img.height, img.data.len()), (w, h, w * h * 3));
        let reds: Vec<u8> = img.data.chunks_exact(3).map(|p| p[0]).collect();
        let (imax, _) =
            a_t.iter()
                .enumerate()
                .fold((0, f64::MIN), |b, (i, &a)| if a > b.1 { (i, a) } else { b });
        let (imin, _) =
            a_t.iter()
                .enumerate()
                .fold((0, f64::MAX), |b, (i, &a)| if a < b.1 { (i, a) } else { b });
        assert_eq!(reds[imax], 255);
        assert_eq!(reds[imin], 0);
        assert!(
            reds.windows(2).all(|r| r[0] <= r[1]),
            "red not monotonic in a_t"
        );
        // Deterministic.
        assert_eq!(pca_rgb(&vals, h, w, d).unwrap(), img);
    }
}

#[test]
fn few_channels_constant_and_nan_inputs() {
    // One channel: only red varies.
    let vals: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let img = pca_rgb(&vals, 3, 4, 1).unwrap();
    assert!(img.data.chunks_exact(3).all(|p| p[1] == 0 && p[2] == 0));
    assert_eq!(img.data[0], 0);
    assert_eq!(img.data[11 * 3], 255);
    // Two channels: blue is zero.
    let vals: Vec<f32> = (0..24).map(|i| ((i * 37) % 11) as f32).collect();
    let img = pca_rgb(&vals, 3, 4, 2).unwrap();
    assert!(img.data.chunks_exact(3).all(|p| p[2] == 0));
    // Constant input: black, no NaN.
    let img = pca_rgb(&[0.7; 5 * 5 * 8], 5, 5, 8).unwrap();
    assert!(img.data.iter().all(|&v| v == 0));
    let p = pca(&[0.7; 5 * 5 * 8], 25, 8, 3).unwrap();
    assert!(p.scores.iter().flatten().all(|v| v.is_finite()));
    // Non-finite values are treated as 0.
    let mut vals: Vec<f32> = (0..5 * 5 * 8).map(|i| (i % 13) as f32).collect();
    vals[3] = f32::NAN;
    vals[50] = f32::INFINITY;
    assert!(pca_rgb(&vals, 5, 5, 8).is_ok());
    // A single token.
    assert!(pca_rgb(&[1.0, 2.0, 3.0], 1, 1, 3)
        .unwrap()
        .data
        .iter()
        .all(|&v| v == 0));
    // Bad sizes are errors.
    assert!(pca_rgb(&[1.0; 10], 2, 2, 3).is_err());
    assert!(pca_rgb(&[], 0, 2, 3).is_err());
    assert!(pca_rgb(&[], 2, 2, 0).is_err());
}

#[test]
fn vit_sized_block_is_fast_enough() {
    // 14x14 tokens of 768 channels (ViT-B/16 at 224px).
    let (vals, u, _, _) = synthetic(14, 14, 768);
    let t = std::time::Instant::now();
    let p = pca(&vals, 196, 768, 3).unwrap();
    assert!(dot(&p.components[0], &u) > 0.999);
    assert!(t.elapsed().as_secs() < 30);
}

#[test]
fn grid_of_frames_and_blocks() {
    let frame = |shade: u8| {
        let mut f = RgbImage::filled(224, 224, [shade, 100, 50]);
        f.fill_rect(50, 50, 60, 60, [255, 255, 0]);
        f
    };
    let flows: Vec<RgbImage> = (0..12)
        .map(|b| {
            let (vals, _, _, _) = synthetic(14, 14, 8 + b);
            pca_rgb(&vals, 14, 14, 8 + b).unwrap()
        })
        .collect();
    let img = compose_grid(&[frame(10), frame(200)], &flows, &[]).unwrap();
    // 6 columns of 160px cells with 10px gaps; frames row + 2 flow rows.
    assert_eq!(img.width, 10 + 6 * 170);
    assert_eq!(img.height, 10 + 3 * (160 + 15 + 10) + 10);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amflow.png");
    img.save_png(&path).unwrap();
    let (w, h, data) = decode_png(&path);
    assert_eq!((w, h), (img.width, img.height));
    assert_eq!(data, img.data);

    // The first flow map sits at (10, 10 + 185 + 10), upscaled by 11 (154px) and centred.
    let up = upscale_nearest(&flows[0], 11);
    let (ox, oy) = (10 + 3, 10 + 185 + 10 + 3);
    assert_eq!(img.get(ox, oy), up.get(0, 0));
    assert_eq!(img.get(ox + 153, oy + 153), up.get(153, 153));

    // Frames: centred in the top row (two 160 px cells with a 10 px gap), shrunk
    // from 224 px by averaging; the yellow square stays yellow inside.
    let x0 = (img.width - (2 * 160 + 10)) / 2;
    for (k, shade) in [10u8, 200].into_iter().enumerate() {
        let fx = x0 + k * 170;
        assert_eq!(img.get(fx + 2, 12), Some([shade, 100, 50]), "frame {k}");
        assert_eq!(img.get(fx + 57, 10 + 57), Some([255, 255, 0]), "frame {k}");
        let caption = format!("frame {}", k + 1);
        let at = (fx + (160 - text_width(&caption, 1)) / 2, 10 + 164);
        assert_eq!(find_text_once(&img, &caption, INK, 1), at);
    }
    // A grey separator between the frames and the blocks.
    assert!((10..img.width - 10).all(|x| img.get(x, 195) == Some([200, 200, 200])));
    // Blocks: rows of six, captioned "block i" under each map.
    for (b, flow) in flows.iter().enumerate() {
        let (r, c) = (b / 6, b % 6);
        let caption = format!("block {}", b + 1);
        let at = (
            10 + c * 170 + (160 - text_width(&caption, 1)) / 2,
            205 + r * 185 + 164,
        );
        // ("block 1" also matches the start of "block 10".)
        assert!(find_text(&img, &caption, INK, 1).contains(&at), "{caption}");
        let up = upscale_nearest(flow, 11);
        let (ox, oy) = (10 + c * 170 + 3, 205 + r * 185 + 3);
        assert_eq!(
            img.get(ox + 77, oy + 40),
            up.get(77, 40),
            "{caption} pixels"
        );
    }

    // Custom labels (cut to the cell), defaults after them, no frames row.
    let labels = vec!["layer 1 (very long caption indeed)".to_string()];
    let no_frames = compose_grid(&[], &flows[..3], &labels).unwrap();
    assert_eq!(
        (no_frames.width, no_frames.height),
        (10 + 3 * 170, 10 + 185)
    );
    let cut = "layer 1 (very long captio.";
    assert_eq!(
        find_text_once(&no_frames, cut, INK, 1),
        ((160 - 155) / 2 + 10, 174)
    );
    find_text_once(&no_frames, "block 2", INK, 1);
    assert_eq!(
        no_frames.get(13, 13),
        upscale_nearest(&flows[0], 11).get(0, 0)
    );
    assert!(compose_grid(&[RgbImage::new(1000, 10)], &[], &[]).is_ok());
    assert!(compose_grid(&[], &[], &[]).is_err());
    let broken = RgbImage {
        width: 5,
        height: 5,
        data: vec![0; 3],
    };
    assert!(compose_grid(&[broken], &[], &[]).is_err());
}

#[test]
fn fit_image_enlarges_by_whole_factors_and_shrinks_by_averaging() {
    // Enlarging: the largest integer factor that fits, pixels replicated.
    let mut small = RgbImage::new(20, 10);
    small.put(19, 9, [9, 8, 7]);
    let big = fit_image(&small, 160, 160);
    assert_eq!((big.width, big.height), (160, 80));
    assert_eq!(big.get(159, 79), Some([9, 8, 7]));
    assert_eq!(big.get(151, 71), Some([0, 0, 0]));
    assert_eq!(big.get(152, 72), Some([9, 8, 7]));
    // Shrinking: each output pixel is the mean of its source block.
    let mut halves = RgbImage::new(4, 2);
    halves.fill_rect(2, 0, 2, 2, [255, 255, 255]);
    let fitted = fit_image(&halves, 2, 2);
    assert_eq!((fitted.width, fitted.height), (2, 1));
    assert_eq!(fitted.get(0, 0), Some([0, 0, 0]));
    assert_eq!(fitted.get(1, 0), Some([255, 255, 255]));
    let mut checker = RgbImage::new(2, 2);
    checker.put(0, 0, [200, 100, 0]);
    checker.put(1, 1, [200, 100, 0]);
    assert_eq!(fit_image(&checker, 1, 1).get(0, 0), Some([100, 50, 0]));
    // In a grid, a non-square picture is centred in its cell.
    let grid = compose_grid(&[], &[small], &[]).unwrap();
    assert_eq!(grid.get(10 + 159, 10 + 40 + 79), Some([9, 8, 7]));
    assert_eq!(grid.get(10 + 80, 10 + 39), Some([255, 255, 255]));
}

#[test]
fn unstructured_data_gives_true_eigenvectors() {
    // Random data: close eigenvalues; check C v = lambda v and orthogonality.
    for (n, d) in [(196, 64), (50, 200)] {
        let mut rng = SplitMix64::new(42);
        let vals: Vec<f32> = (0..n * d).map(|_| noise(&mut rng) as f32).collect();
        let p = pca(&vals, n, d, 3).unwrap();
        let x: Vec<f64> = vals
            .chunks_exact(d)
            .flat_map(|r| {
                r.iter()
                    .zip(&p.mean)
                    .map(|(v, m)| *v as f64 - m)
                    .collect::<Vec<_>>()
            })
            .collect();
        for (k, v) in p.components.iter().enumerate() {
            // C v = Xᵀ X v / n
            let xv: Vec<f64> = x.chunks_exact(d).map(|r| dot(r, v)).collect();
            let mut cv = vec![0.0; d];
            for (r, s) in x.chunks_exact(d).zip(&xv) {
                cv.iter_mut()
                    .zip(r)
                    .for_each(|(c, a)| *c += a * s / n as f64);
            }
            let lambda = p.variances[k];
            let resid: f64 = cv
                .iter()
                .zip(v)
                .map(|(c, a)| (c - lambda * a).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                resid < 1e-6 * lambda,
                "({n},{d}) component {k}: residual {resid}"
            );
            for other in &p.components[..k] {
                assert!(dot(v, other).abs() < 1e-8);
            }
        }
        assert!(p.variances[0] >= p.variances[1] && p.variances[1] >= p.variances[2]);
    }
}
