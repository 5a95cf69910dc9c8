//! Which frames of a video make a clip. Two samplers: TSN segment sampling
//! (Wang et al., "Temporal Segment Networks", ECCV 2016: split the video into `T` equal
//! segments and take one frame per segment, random in training, the centre at test time)
//! and dense sampling (`T` frames `stride` apart from a random start, as for Kinetics in
//! I3D/SlowFast), both with evenly spread multi-clip test views, plus the
//! [`ShortVideoRule`] for videos with fewer frames than the clip spans.

use serde::{Deserialize, Serialize};

use amflow_rng::SplitMix64;

/// How frames are picked from a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sampler {
    /// TSN: `num_segments` equal segments, one frame per segment.
    Segment {
        /// Frames per clip (`T`).
        num_segments: usize,
    },
    /// `num_frames` frames `stride` apart, starting at a random (train) or evenly spread
    /// (test views) offset.
    Dense {
        /// Frames per clip (`T`).
        num_frames: usize,
        /// Distance between sampled frames, in frames (>= 1).
        stride: usize,
    },
}

impl Sampler {
    /// Frames per clip.
    pub fn num_frames(&self) -> usize {
        match *self {
            Sampler::Segment { num_segments } => num_segments,
            Sampler::Dense { num_frames, .. } => num_frames,
        }
    }

    /// Frames of video one clip spans when the video is long enough (`usize::MAX` when
    /// that does not fit in a `usize`).
    pub fn span(&self) -> usize {
        match *self {
            Sampler::Segment { num_segments } => num_segments,
            Sampler::Dense { num_frames, stride } => num_frames
                .saturating_sub(1)
                .saturating_mul(stride.max(1))
                .saturating_add(1),
        }
    }
}

/// What to do with a video that has fewer frames than the clip spans
/// ([`Sampler::span`]): `T` for segment sampling, `(T - 1) * stride + 1` for dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortVideoRule {
    /// Spread the `T` indices evenly over the frames there are (repeating frames when
    /// the video has fewer than `T`). The default: the clip still covers the whole action.
    #[default]
    Stretch,
    /// Keep the stride and wrap around to the first frame (frame `i mod n`).
    Loop,
    /// Keep the stride and repeat the last frame for the indices past the end.
    RepeatLast,
    /// Refuse the video ([`DataError::TooFewFrames`](crate::DataError::TooFewFrames)),
    /// which the loader then treats as bad input.
    Reject,
}

/// Train or test sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleMode {
    /// Random offsets drawn from the generator.
    Train,
    /// Deterministic offsets: view `view` of `views` evenly spread temporal clips
    /// (one view: the centre).
    Test {
        /// Which temporal view, `0..views`.
        view: usize,
        /// Number of temporal views.
        views: usize,
    },
}

/// The video has too few frames for the sampler (or none at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooShort {
    /// Frames in the video.
    pub got: usize,
    /// Frames needed.
    pub needed: usize,
}

/// Picks the frame indices of one clip from a video of `n` frames; the result has
/// [`Sampler::num_frames`] entries, each `< n`, in temporal order.
///
/// # Errors
/// [`TooShort`] when `n == 0`, or when the video is shorter than the span and the rule
/// is [`ShortVideoRule::Reject`].
pub fn sample_indices(
    sampler: &Sampler,
    n: usize,
    mode: SampleMode,
    rule: ShortVideoRule,
    rng: &mut SplitMix64,
) -> Result<Vec<usize>, TooShort> {
    let t = sampler.num_frames();
    let span = sampler.span();
    if n == 0 || t == 0 || (n < span && rule == ShortVideoRule::Reject) {
        return Err(TooShort {
            got: n,
            needed: span.max(1),
        });
    }
    // Fraction in [0, 1) at which to place the offset inside its allowed range.
    let mut offset_fraction = || match mode {
        SampleMode::Train => rng.next_f32() as f64,
        SampleMode::Test { view, views } => (view as f64 + 0.5) / views.max(1) as f64,
    };
    if n < span {
        return Ok(match rule {
            ShortVideoRule::Stretch | ShortVideoRule::Reject => stretch(t, n),
            ShortVideoRule::Loop | ShortVideoRule::RepeatLast => {
                let step = match *sampler {
                    Sampler::Segment { .. } => 1,
                    Sampler::Dense { stride, .. } => stride.max(1),
                };
                let start = (offset_fraction() * n as f64) as usize;
                // In u128 / saturating: a config's stride may be near `usize::MAX`.
                (0..t)
                    .map(|i| {
                        if rule == ShortVideoRule::Loop {
                            ((start as u128 + i as u128 * step as u128) % n as u128) as usize
                        } else {
                            i.saturating_mul(step).min(n - 1)
                        }
                    })
                    .collect()
            }
        });
    }
    Ok(match *sampler {
        Sampler::Segment { num_segments } => {
            let len = n as f64 / num_segments as f64;
            (0..num_segments)
                .map(|i| {
                    let f = offset_fraction();
                    (((i as f64 + f) * len) as usize).min(n - 1)
                })
                .collect()
        }
        Sampler::Dense { num_frames, stride } => {
            let slack = n - span;
            let start = match mode {
                SampleMode::Train => (offset_fraction() * (slack + 1) as f64) as usize,
                SampleMode::Test { view, views } => {
                    if views <= 1 {
                        slack / 2
                    } else {
                        ((view as f64 * slack as f64) / (views - 1) as f64).round() as usize
                    }
                }
            };
            (0..num_frames)
                .map(|i| {
                    start
                        .min(slack)
                        .saturating_add(i.saturating_mul(stride.max(1)))
                        .min(n - 1)
                })
                .collect()
        }
    })
}

/// `t` indices spread evenly over `n` frames (centres of `t` equal segments).
fn stretch(t: usize, n: usize) -> Vec<usize> {
    (0..t)
        .map(|i| ((((i as f64) + 0.5) * n as f64 / t as f64) as usize).min(n - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz-harness crash (dataset_config): a dense sampler's `(num_frames - 1) * stride`
    /// overflowed in `span`, and `start + i * stride` in the loop / repeat-last rules.
    #[test]
    fn huge_strides_do_not_overflow() {
        let huge = Sampler::Dense {
            num_frames: 5,
            stride: 1 << 62,
        };
        assert_eq!(huge.span(), usize::MAX);
        for rule in [
            ShortVideoRule::Stretch,
            ShortVideoRule::Loop,
            ShortVideoRule::RepeatLast,
        ] {
            for mode in [SampleMode::Train, SampleMode::Test { view: 1, views: 2 }] {
                let idx = sample_indices(&huge, 7, mode, rule, &mut SplitMix64::new(3)).unwrap();
                assert_eq!(idx.len(), 5);
                assert!(idx.iter().all(|&i| i < 7), "{rule:?} {idx:?}");
            }
        }
        // Loop keeps the exact modular arithmetic: start 3 (the centre view), 2^62 = 4 (mod 7).
        let looped = sample_indices(
            &huge,
            7,
            TEST1,
            ShortVideoRule::Loop,
            &mut SplitMix64::new(0),
        )
        .unwrap();
        assert_eq!(looped, [3, 0, 4, 1, 5]);
        let repeated = sample_indices(
            &huge,
            7,
            TEST1,
            ShortVideoRule::RepeatLast,
            &mut SplitMix64::new(0),
        )
        .unwrap();
        assert_eq!(repeated, [0, 6, 6, 6, 6]);
    }

    const SEG: Sampler = Sampler::Segment { num_segments: 8 };
    const DENSE: Sampler = Sampler::Dense {
        num_frames: 8,
        stride: 4,
    };
    const TEST1: SampleMode = SampleMode::Test { view: 0, views: 1 };

    fn sample(
        s: &Sampler,
        n: usize,
        mode: SampleMode,
        rule: ShortVideoRule,
        seed: u64,
    ) -> Vec<usize> {
        sample_indices(s, n, mode, rule, &mut SplitMix64::new(seed)).unwrap()
    }

    #[test]
    fn segment_test_takes_segment_centres() {
        assert_eq!(
            sample(&SEG, 80, TEST1, ShortVideoRule::Stretch, 0),
            vec![5, 15, 25, 35, 45, 55, 65, 75]
        );
    }

    #[test]
    fn segment_train_draws_one_frame_inside_each_segment() {
        let mut differ = false;
        for seed in 0..50 {
            let idx = sample(&SEG, 80, SampleMode::Train, ShortVideoRule::Stretch, seed);
            for (i, &k) in idx.iter().enumerate() {
                assert!((i * 10..(i + 1) * 10).contains(&k), "{idx:?}");
            }
            differ |= idx
                != sample(
                    &SEG,
                    80,
                    SampleMode::Train,
                    ShortVideoRule::Stretch,
                    seed + 100,
                );
            assert_eq!(
                idx,
                sample(&SEG, 80, SampleMode::Train, ShortVideoRule::Stretch, seed)
            );
        }
        assert!(differ);
    }

    #[test]
    fn dense_has_fixed_stride_and_random_start_in_range() {
        let mut starts = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let idx = sample(&DENSE, 40, SampleMode::Train, ShortVideoRule::Stretch, seed);
            assert!(idx.windows(2).all(|w| w[1] - w[0] == 4));
            assert!(*idx.last().unwrap() < 40);
            starts.insert(idx[0]);
        }
        // span 29 in 40 frames: starts 0..=11 all reachable.
        assert_eq!(starts.len(), 12);
    }

    #[test]
    fn dense_test_views_are_spread_from_start_to_end() {
        let first = sample(
            &DENSE,
            40,
            SampleMode::Test { view: 0, views: 3 },
            ShortVideoRule::Stretch,
            0,
        );
        let mid = sample(
            &DENSE,
            40,
            SampleMode::Test { view: 1, views: 3 },
            ShortVideoRule::Stretch,
            0,
        );
        let last = sample(
            &DENSE,
            40,
            SampleMode::Test { view: 2, views: 3 },
            ShortVideoRule::Stretch,
            0,
        );
        assert_eq!(first[0], 0);
        assert_eq!(*last.last().unwrap(), 39);
        assert_eq!(mid[0], 6);
        assert_eq!(sample(&DENSE, 40, TEST1, ShortVideoRule::Stretch, 0)[0], 5);
    }

    #[test]
    fn short_video_rules() {
        // 10 frames, dense span 29.
        assert_eq!(
            sample(&DENSE, 10, TEST1, ShortVideoRule::Stretch, 0),
            vec![0, 1, 3, 4, 5, 6, 8, 9]
        );
        assert_eq!(
            sample(&DENSE, 10, TEST1, ShortVideoRule::RepeatLast, 0),
            vec![0, 4, 8, 9, 9, 9, 9, 9]
        );
        let looped = sample(&DENSE, 10, TEST1, ShortVideoRule::Loop, 0);
        assert_eq!(looped, vec![5, 9, 3, 7, 1, 5, 9, 3]);
        assert_eq!(
            sample_indices(
                &DENSE,
                10,
                TEST1,
                ShortVideoRule::Reject,
                &mut SplitMix64::new(0)
            ),
            Err(TooShort {
                got: 10,
                needed: 29
            })
        );
        // Fewer frames than segments: frames repeat, still ordered.
        assert_eq!(
            sample(&SEG, 3, TEST1, ShortVideoRule::Stretch, 0),
            vec![0, 0, 0, 1, 1, 2, 2, 2]
        );
        assert!(sample_indices(
            &SEG,
            0,
            TEST1,
            ShortVideoRule::Loop,
            &mut SplitMix64::new(0)
        )
        .is_err());
    }
}
