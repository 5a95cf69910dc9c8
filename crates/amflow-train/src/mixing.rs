//! Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) for clips, as timm's `Mixup` in
//! `elem` mode: every clip of a micro-batch mixes with its partner (the clip at the mirrored
//! position, `B - 1 - i`), with its own weight and, for CutMix, its own box; one mixing per
//! clip, identical on all its frames. Targets become soft:
//! `lambda * smooth(y_i) + (1 - lambda) * smooth(y_partner)`, with label smoothing applied to
//! both one-hot targets (timm's `mixup_target`), so the loss is the cross-entropy against that
//! mixture.
//!
//! - Mixup: `lambda ~ Beta(mixup_alpha, mixup_alpha)`, `x = lambda x_i + (1 - lambda) x_p`.
//! - CutMix: `lambda ~ Beta(cutmix_alpha, cutmix_alpha)`, a box of `H sqrt(1 - lambda)` by
//!   `W sqrt(1 - lambda)` centred uniformly and clipped to the frame takes the partner's pixels;
//!   `lambda` is then corrected to the share of the frame left unboxed.
//! - With probability `1 - prob` a clip is not mixed; when both are enabled, CutMix is chosen
//!   with probability `switch_prob`.
//!
//! Draws are a function of `(seed, epoch, batch)` ([`MixPlan::draw`]), so a resumed run mixes
//! exactly as an uninterrupted one.

use amflow_rng::SplitMix64;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Mixing settings (TOML `[optim.mix]`; off by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixConfig {
    /// Beta parameter of Mixup's weight (0: no Mixup). AIM/VideoMAE use 0.8.
    pub mixup_alpha: f64,
    /// Beta parameter of CutMix's weight (0: no CutMix). AIM/VideoMAE use 1.0.
    pub cutmix_alpha: f64,
    /// Probability that a clip is mixed at all.
    pub prob: f64,
    /// Probability of CutMix rather than Mixup when both are on.
    pub switch_prob: f64,
}

impl Default for MixConfig {
    fn default() -> Self {
        Self {
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            prob: 1.0,
            switch_prob: 0.5,
        }
    }
}

impl MixConfig {
    /// Whether any mixing is on.
    pub fn enabled(&self) -> bool {
        (self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0) && self.prob > 0.0
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let ok = self.mixup_alpha >= 0.0
            && self.cutmix_alpha >= 0.0
            && (0.0..=1.0).contains(&self.prob)
            && (0.0..=1.0).contains(&self.switch_prob);
        if ok {
            Ok(())
        } else {
            Err(TrainError::Config(format!(
                "optim.mix: alphas must be >= 0 and probabilities in [0, 1], got {self:?}"
            )))
        }
    }
}

/// How one clip is mixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClipMix {
    /// Left as it is.
    None,
    /// Blended with its partner, weight `lambda` on itself.
    Mixup {
        /// Weight of the clip itself.
        lambda: f32,
    },
    /// Its partner's pixels in rows `y0..y1`, columns `x0..x1` of every frame.
    CutMix {
        /// First row of the box.
        y0: usize,
        /// One past its last row.
        y1: usize,
        /// First column.
        x0: usize,
        /// One past its last column.
        x1: usize,
        /// The share of the frame outside the box (the clip's own weight).
        lambda: f32,
    },
}

impl ClipMix {
    /// The clip's own weight in its target.
    pub fn lambda(&self) -> f32 {
        match *self {
            ClipMix::None => 1.0,
            ClipMix::Mixup { lambda } | ClipMix::CutMix { lambda, .. } => lambda,
        }
    }
}

/// The mixing of one micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MixPlan {
    /// Per clip.
    pub clips: Vec<ClipMix>,
}

/// `Gamma(shape, 1)` by Marsaglia and Tsang (2000); `shape < 1` through
/// `Gamma(shape + 1) * U^(1 / shape)`.
fn gamma(shape: f64, rng: &mut SplitMix64) -> f64 {
    if shape < 1.0 {
        let u = rng.next_f64().max(f64::MIN_POSITIVE);
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.next_f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// `Beta(alpha, alpha)`.
pub fn beta(alpha: f64, rng: &mut SplitMix64) -> f64 {
    let a = gamma(alpha, rng);
    let b = gamma(alpha, rng);
    if a + b == 0.0 {
        0.5
    } else {
        a / (a + b)
    }
}

impl MixPlan {
    /// The mixing of a micro-batch of `batch` clips of `height x width`, drawn from
    /// `(seed, epoch, batch_index)`.
    pub fn draw(
        config: &MixConfig,
        batch: usize,
        height: usize,
        width: usize,
        seeds: [u64; 3],
    ) -> Self {
        let mut rng = SplitMix64::new(amflow_rng::derive_seed(seeds[0], &seeds[1..]));
        let clips = (0..batch)
            .map(|_| {
                if !config.enabled() || !rng.chance(config.prob as f32) {
                    return ClipMix::None;
                }
                let cutmix = match (config.mixup_alpha > 0.0, config.cutmix_alpha > 0.0) {
                    (true, true) => rng.chance(config.switch_prob as f32),
                    (false, true) => true,
                    _ => false,
                };
                if !cutmix {
                    let lambda = beta(config.mixup_alpha, &mut rng) as f32;
                    return ClipMix::Mixup { lambda };
                }
                let lambda = beta(config.cutmix_alpha, &mut rng);
                let cut = (1.0 - lambda).sqrt();
                let (ch, cw) = (
                    (height as f64 * cut) as usize,
                    (width as f64 * cut) as usize,
                );
                let (cy, cx) = (rng.below(height), rng.below(width));
                let y0 = cy.saturating_sub(ch / 2);
                let y1 = (cy + ch / 2).min(height);
                let x0 = cx.saturating_sub(cw / 2);
                let x1 = (cx + cw / 2).min(width);
                let boxed = (y1 - y0) * (x1 - x0);
                ClipMix::CutMix {
                    y0,
                    y1,
                    x0,
                    x1,
                    lambda: 1.0 - boxed as f32 / (height * width) as f32,
                }
            })
            .collect();
        Self { clips }
    }

    /// Whether any clip is mixed.
    pub fn mixes(&self) -> bool {
        self.clips.iter().any(|c| *c != ClipMix::None)
    }

    /// The partner of clip `i`.
    pub fn partner(&self, i: usize) -> usize {
        self.clips.len() - 1 - i
    }

    /// Each clip's own weight per pixel, `[B, 1, 1, H, W]` row-major: `lambda` everywhere for
    /// Mixup, 0 inside the box and 1 outside for CutMix, 1 for unmixed clips.
    pub fn weights(&self, height: usize, width: usize) -> Vec<f32> {
        let plane = height * width;
        let mut w = vec![1.0f32; self.clips.len() * plane];
        for (i, clip) in self.clips.iter().enumerate() {
            let dst = &mut w[i * plane..(i + 1) * plane];
            match *clip {
                ClipMix::None => {}
                ClipMix::Mixup { lambda } => dst.fill(lambda),
                ClipMix::CutMix { y0, y1, x0, x1, .. } => {
                    for y in y0..y1 {
                        dst[y * width + x0..y * width + x1].fill(0.0);
                    }
                }
            }
        }
        w
    }

    /// Mixes `clips` `[B, T, 3, H, W]` on their device.
    pub fn apply(&self, clips: Tensor<5>) -> Tensor<5> {
        if !self.mixes() {
            return clips;
        }
        let [b, _, _, h, w] = clips.dims();
        let device = clips.device();
        let weights = Tensor::<5>::from_data(
            TensorData::new(self.weights(h, w), [b, 1, 1, h, w]),
            &device,
        );
        let partners = clips.clone().flip([0]);
        clips * weights.clone() + partners * weights.neg().add_scalar(1.0)
    }

    /// The soft targets `[B, C]` row-major for `labels`: each row the `lambda`-weighted sum of
    /// the clip's and its partner's label-smoothed one-hot targets.
    ///
    /// # Errors
    /// [`TrainError::Label`] for a label `>= classes`.
    pub fn targets(&self, labels: &[usize], classes: usize, smoothing: f64) -> Result<Vec<f32>> {
        if let Some(&label) = labels.iter().find(|&&y| y >= classes) {
            return Err(TrainError::Label { label, classes });
        }
        let off = (smoothing / classes as f64) as f32;
        let on = (1.0 - smoothing) as f32 + off;
        let mut t = vec![off; labels.len() * classes];
        for (i, clip) in self.clips.iter().enumerate() {
            let lambda = clip.lambda();
            let row = &mut t[i * classes..(i + 1) * classes];
            row[labels[i]] += lambda * (on - off);
            row[labels[self.partner(i)]] += (1.0 - lambda) * (on - off);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> MixConfig {
        MixConfig {
            mixup_alpha: 0.8,
            cutmix_alpha: 1.0,
            ..MixConfig::default()
        }
    }

    #[test]
    fn beta_draws_have_the_beta_mean_and_variance() {
        let mut rng = SplitMix64::new(7);
        for alpha in [0.4, 0.8, 1.0, 2.0] {
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| beta(alpha, &mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
            let want = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "alpha {alpha}: mean {mean}");
            assert!(
                (var - want).abs() < 0.1 * want,
                "alpha {alpha}: var {var} vs {want}"
            );
            assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        }
    }

    #[test]
    fn cutmix_lambda_is_the_unboxed_share_and_the_weights_match_it() {
        let config = MixConfig {
            cutmix_alpha: 1.0,
            ..MixConfig::default()
        };
        for seed in 0..50 {
            let plan = MixPlan::draw(&config, 3, 12, 20, [seed, 1, 2]);
            let w = plan.weights(12, 20);
            for (i, clip) in plan.clips.iter().enumerate() {
                let ClipMix::CutMix {
                    y0,
                    y1,
                    x0,
                    x1,
                    lambda,
                } = *clip
                else {
                    panic!("cutmix only: {clip:?}")
                };
                assert!(y0 <= y1 && y1 <= 12 && x0 <= x1 && x1 <= 20);
                let boxed = ((y1 - y0) * (x1 - x0)) as f32;
                assert!((lambda - (1.0 - boxed / 240.0)).abs() < 1e-6);
                let own: f32 = w[i * 240..(i + 1) * 240].iter().sum();
                assert!((own / 240.0 - lambda).abs() < 1e-6, "weights sum to lambda");
            }
        }
    }

    #[test]
    fn plans_are_a_function_of_the_seed_and_prob_zero_mixes_nothing() {
        let a = MixPlan::draw(&both(), 8, 16, 16, [3, 0, 5]);
        assert_eq!(a, MixPlan::draw(&both(), 8, 16, 16, [3, 0, 5]));
        assert_ne!(a, MixPlan::draw(&both(), 8, 16, 16, [3, 0, 6]));
        assert!(a.clips.iter().any(|c| matches!(c, ClipMix::Mixup { .. })));
        assert!(a.clips.iter().any(|c| matches!(c, ClipMix::CutMix { .. })));
        let off = MixConfig {
            prob: 0.0,
            ..both()
        };
        assert!(!MixPlan::draw(&off, 8, 16, 16, [3, 0, 5]).mixes());
        assert!(!MixPlan::draw(&MixConfig::default(), 8, 16, 16, [3, 0, 5]).mixes());
    }

    #[test]
    fn mixed_clips_and_targets_match_a_direct_computation() {
        let device = Device::flex();
        let plan = MixPlan {
            clips: vec![
                ClipMix::Mixup { lambda: 0.25 },
                ClipMix::None,
                ClipMix::CutMix {
                    y0: 0,
                    y1: 1,
                    x0: 1,
                    x1: 2,
                    lambda: 0.75,
                },
            ],
        };
        // 3 clips, 2 frames, 3 channels, 2x2 pixels; clip i holds value i + 1 everywhere.
        let n = 2 * 3 * 4;
        let data: Vec<f32> = (0..3).flat_map(|i| vec![(i + 1) as f32; n]).collect();
        let x = Tensor::<5>::from_data(TensorData::new(data, [3, 2, 3, 2, 2]), &device);
        let y: Vec<f32> = plan.apply(x).into_data().try_to_vec::<f32>().unwrap();
        // Clip 0 mixes with clip 2: 0.25 * 1 + 0.75 * 3 = 2.5 everywhere.
        assert!(y[..n].iter().all(|&v| (v - 2.5).abs() < 1e-6));
        // Clip 1 is its own partner and unmixed.
        assert!(y[n..2 * n].iter().all(|&v| v == 2.0));
        // Clip 2 takes clip 0's pixel (row 0, column 1) in every frame and channel.
        for (k, &v) in y[2 * n..].iter().enumerate() {
            let want = if k % 4 == 1 { 1.0 } else { 3.0 };
            assert_eq!(v, want, "element {k}");
        }
        // Soft targets: the smoothed one-hots, weighted.
        let t = plan.targets(&[0, 1, 2], 4, 0.1).unwrap();
        let (off, on) = (0.025f32, 0.925f32);
        let want = [
            [0.25 * on + 0.75 * off, off, 0.25 * off + 0.75 * on, off],
            [off, on, off, off],
            [0.25 * on + 0.75 * off, off, 0.75 * on + 0.25 * off, off],
        ];
        for (row, w) in t.chunks(4).zip(want) {
            for (a, b) in row.iter().zip(w) {
                assert!((a - b).abs() < 1e-6, "{row:?} vs {w:?}");
            }
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!(plan.targets(&[0, 4, 1], 4, 0.0).is_err());
    }
}
