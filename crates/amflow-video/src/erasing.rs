//! Random erasing (Zhong et al., AAAI 2020), as torchvision's `RandomErasing` and timm's
//! `RandomErasing(mode="pixel")`: with probability `p` a box whose area is a uniform fraction
//! of the frame in `area` and whose aspect ratio is log-uniform in `ratio` (up to 10 draws
//! until it fits) is filled with per-pixel random values (uniform over 0..=255 here, on the
//! 8-bit frames before normalisation). One box for all frames of a clip, or a new one per frame.

use amflow_rng::SplitMix64;

use crate::frame::RgbFrame;

/// A box `(x, y, width, height)` of `area` fraction and log-uniform `ratio` (`w / h`) inside a
/// `w x h` frame, or `None` when 10 draws do not fit.
pub fn erasing_box(
    w: usize,
    h: usize,
    area: [f32; 2],
    ratio: [f32; 2],
    rng: &mut SplitMix64,
) -> Option<(usize, usize, usize, usize)> {
    let total = (w * h) as f32;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = total * rng.uniform(area[0], area[1]);
        let r = rng.uniform(lr0, lr1).exp();
        let bh = (target / r).sqrt().round() as usize;
        let bw = (target * r).sqrt().round() as usize;
        if bw >= 1 && bh >= 1 && bw < w && bh < h {
            return Some((rng.below(w - bw + 1), rng.below(h - bh + 1), bw, bh));
        }
    }
    None
}

/// Fills box `b` of `frame` with random bytes.
fn fill(frame: &mut RgbFrame, b: (usize, usize, usize, usize), rng: &mut SplitMix64) {
    let (x, y, bw, bh) = b;
    for row in y..y + bh {
        let start = (row * frame.width + x) * 3;
        for v in &mut frame.data[start..start + bw * 3] {
            *v = (rng.next_u64() >> 56) as u8;
        }
    }
}

/// Erases, with probability `p`, one box in every frame (the same box unless `per_frame`).
pub fn random_erasing(
    frames: &mut [RgbFrame],
    p: f32,
    area: [f32; 2],
    ratio: [f32; 2],
    per_frame: bool,
    rng: &mut SplitMix64,
) {
    let Some(first) = frames.first() else {
        return;
    };
    let (w, h) = (first.width, first.height);
    if !rng.chance(p) {
        return;
    }
    let shared = if per_frame {
        None
    } else {
        erasing_box(w, h, area, ratio, rng)
    };
    for frame in frames.iter_mut() {
        let b = if per_frame {
            erasing_box(w, h, area, ratio, rng)
        } else {
            shared
        };
        if let Some(b) = b {
            fill(frame, b, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(a: &RgbFrame, b: &RgbFrame) -> Vec<(usize, usize)> {
        let mut px = Vec::new();
        for y in 0..a.height {
            for x in 0..a.width {
                let i = (y * a.width + x) * 3;
                if a.data[i..i + 3] != b.data[i..i + 3] {
                    px.push((x, y));
                }
            }
        }
        px
    }

    #[test]
    fn boxes_have_the_asked_area_and_ratio_and_stay_inside() {
        let mut rng = SplitMix64::new(1);
        let (w, h) = (64, 48);
        let mut areas = Vec::new();
        for _ in 0..2000 {
            let (x, y, bw, bh) = erasing_box(w, h, [0.02, 1.0 / 3.0], [0.3, 3.3], &mut rng)
                .expect("fits in 10 draws at these settings");
            assert!(x + bw <= w && y + bh <= h);
            let a = (bw * bh) as f32 / (w * h) as f32;
            // Rounding each side moves the area a little past the range at small boxes.
            assert!((0.01..=0.37).contains(&a), "area {a}");
            let r = bw as f32 / bh as f32;
            assert!((0.2..=4.5).contains(&r), "ratio {r}");
            areas.push(a);
        }
        let mean = areas.iter().sum::<f32>() / areas.len() as f32;
        // Uniform over [0.02, 1/3] would average 0.177; boxes that do not fit are redrawn.
        assert!((0.12..=0.2).contains(&mean), "mean area {mean}");
    }

    #[test]
    fn one_box_for_the_clip_or_one_per_frame_deterministically() {
        let frames: Vec<RgbFrame> = (0..4)
            .map(|_| RgbFrame::filled(32, 32, [7, 7, 7]))
            .collect();
        let run = |per_frame: bool, seed: u64| {
            let mut f = frames.clone();
            let mut rng = SplitMix64::new(seed);
            random_erasing(&mut f, 1.0, [0.1, 0.2], [0.5, 2.0], per_frame, &mut rng);
            f
        };
        let same = run(false, 3);
        let boxes: Vec<_> = same
            .iter()
            .zip(&frames)
            .map(|(a, b)| changed(a, b))
            .collect();
        assert!(!boxes[0].is_empty());
        // The same pixels in every frame (noise values may repeat 7 by chance: compare sets
        // of at least 90 % overlap).
        for b in &boxes[1..] {
            let common = b.iter().filter(|p| boxes[0].contains(p)).count();
            assert!(common * 10 >= boxes[0].len() * 9);
        }
        let per = run(true, 3);
        let per_boxes: Vec<_> = per
            .iter()
            .zip(&frames)
            .map(|(a, b)| changed(a, b))
            .collect();
        assert!(
            per_boxes.windows(2).any(|w| w[0] != w[1]),
            "new boxes per frame"
        );
        assert_eq!(run(true, 3), per, "a function of the seed");
        let mut f = frames.clone();
        random_erasing(
            &mut f,
            0.0,
            [0.1, 0.2],
            [0.5, 2.0],
            false,
            &mut SplitMix64::new(3),
        );
        assert_eq!(f, frames, "p = 0 erases nothing");
    }
}
