//! Sliding clip windows over a whole video, for timelines (`amflow predict --timeline`):
//! window and stride lengths in seconds or frames ([`Span`]), the frame ranges of the
//! windows ([`WindowPlan`]), a buffer that keeps only the decoded frames the pending windows
//! still need ([`WindowBuffer`]), and [`read_windows`], which decodes a file once, straight
//! through, and hands over every window's clips as soon as its last frame is decoded.
//!
//! Window `k` covers frames `[k * stride, k * stride + window)`. The sampler of the input
//! contract picks the clip's frames inside each window exactly as it would in a video of
//! `window` frames (test mode: deterministic views), so every window is sampled alike. The
//! last window ends at or before the last frame: a tail shorter than one stride after it is
//! not covered. A video shorter than one window gives one window over all its frames,
//! sampled by the contract's short-video rule (an error when that rule is `reject`).
//! Times are frame index over the stream's average frame rate.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use amflow_rng::SplitMix64;

use crate::dataset::FileDatasetConfig;
use crate::decode::VideoReader;
use crate::error::{DataError, Result};
use crate::frame::{Clip, RgbFrame};
use crate::sampling::{sample_indices, SampleMode, Sampler, ShortVideoRule, TooShort};

/// A length on the time axis: seconds (`2s`, `0.5s`) or frames (`16f`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// Seconds (finite, > 0).
    Seconds(f64),
    /// Frames (>= 1).
    Frames(usize),
}

impl FromStr for Span {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| DataError::Config(format!("`{s}`: {why}"));
        let t = s.trim();
        if let Some(n) = t.strip_suffix('f') {
            let n: usize = n
                .parse()
                .map_err(|_| bad("expected a whole number of frames, e.g. 16f"))?;
            if n == 0 {
                return Err(bad("a span needs at least one frame"));
            }
            Ok(Span::Frames(n))
        } else if let Some(x) = t.strip_suffix('s') {
            let x: f64 = x
                .parse()
                .map_err(|_| bad("expected a number of seconds, e.g. 2s or 0.5s"))?;
            if !(x.is_finite() && x > 0.0) {
                return Err(bad("a span must be longer than 0 seconds"));
            }
            Ok(Span::Seconds(x))
        } else {
            Err(bad("give a unit: seconds (2s) or frames (16f)"))
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Seconds(x) => write!(f, "{x}s"),
            Span::Frames(n) => write!(f, "{n}f"),
        }
    }
}

impl Span {
    /// The span in frames at `fps` frames per second (seconds rounded to the nearest frame,
    /// at least 1).
    ///
    /// # Errors
    /// [`DataError::Config`] for a span in seconds when the frame rate is unknown (not a
    /// positive finite number).
    pub fn to_frames(self, fps: f64) -> Result<usize> {
        match self {
            Span::Frames(n) => Ok(n),
            Span::Seconds(x) => {
                if !(fps.is_finite() && fps > 0.0) {
                    return Err(DataError::Config(format!(
                        "{self}: the frame rate is unknown, give the span in frames (e.g. 16f)"
                    )));
                }
                Ok(((x * fps).round() as usize).max(1))
            }
        }
    }
}

/// Window and stride in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Frames per window (>= 1).
    pub window: usize,
    /// Frames between the starts of consecutive windows (>= 1).
    pub stride: usize,
}

impl WindowPlan {
    /// A plan of `window` frames every `stride` frames.
    ///
    /// # Errors
    /// [`DataError::Config`] when either is 0.
    pub fn new(window: usize, stride: usize) -> Result<Self> {
        if window == 0 || stride == 0 {
            return Err(DataError::Config(format!(
                "window ({window}) and stride ({stride}) must be at least one frame"
            )));
        }
        Ok(WindowPlan { window, stride })
    }

    /// The plan for spans at `fps` frames per second.
    ///
    /// # Errors
    /// As [`Span::to_frames`].
    pub fn from_spans(window: Span, stride: Span, fps: f64) -> Result<Self> {
        WindowPlan::new(window.to_frames(fps)?, stride.to_frames(fps)?)
    }

    /// First frame of window `k`.
    pub fn start(&self, k: usize) -> usize {
        k.saturating_mul(self.stride)
    }

    /// One past the last frame of window `k`.
    pub fn end(&self, k: usize) -> usize {
        self.start(k).saturating_add(self.window)
    }

    /// Windows in a video of `n` frames: none for an empty video, one for a video shorter
    /// than a window, else every window that ends at or before the end.
    pub fn count(&self, n: usize) -> usize {
        match n {
            0 => 0,
            n if n < self.window => 1,
            n => (n - self.window) / self.stride + 1,
        }
    }
}

/// The decoded frames one window's clips are made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Window number, from 0.
    pub index: usize,
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
    /// Per temporal view, the frames its sampler picked, in temporal order.
    pub views: Vec<Vec<RgbFrame>>,
}

/// Holds the decoded frames that pending windows still need, and hands out each window as
/// its last frame arrives. Frames must be pushed in order from frame 0. At most
/// `window` frames are held (only those at the sampled positions of windows that have
/// started, plus, until the first window is complete, the frames a video shorter than one
/// window would be sampled from).
#[derive(Debug, Clone)]
pub struct WindowBuffer {
    plan: WindowPlan,
    sampler: Sampler,
    rule: ShortVideoRule,
    temporal_views: usize,
    /// Per temporal view, the sampled offsets inside a window.
    offsets: Vec<Vec<usize>>,
    /// Whether offset `o` of a window is sampled by some view.
    needed: Vec<bool>,
    /// `(frame index, frame)`, ascending.
    frames: VecDeque<(usize, RgbFrame)>,
    /// The next window to complete.
    next: usize,
    /// Frames pushed so far.
    seen: usize,
}

impl WindowBuffer {
    /// A buffer for `plan` that samples each window as `config` reads a clip (its sampler,
    /// short-video rule and test views).
    ///
    /// # Errors
    /// As [`WindowBuffer::new`].
    pub fn for_clips(plan: WindowPlan, config: &FileDatasetConfig) -> Result<Self> {
        Self::new(
            plan,
            config.read.sampler,
            config.read.short_video,
            config.temporal_views.max(1),
        )
    }

    /// A buffer for `plan`, sampling `temporal_views` test views of `sampler` in each
    /// window.
    ///
    /// # Errors
    /// [`DataError::Config`] when `temporal_views` is 0, or the sampler cannot sample a
    /// window (`rule` is `reject` and the window is shorter than the sampler's span).
    pub fn new(
        plan: WindowPlan,
        sampler: Sampler,
        rule: ShortVideoRule,
        temporal_views: usize,
    ) -> Result<Self> {
        if temporal_views == 0 {
            return Err(DataError::Config(
                "temporal_views must be at least 1".into(),
            ));
        }
        let offsets = view_indices(&sampler, plan.window, rule, temporal_views).map_err(|e| {
            DataError::Config(format!(
                "a window of {} frames is shorter than the sampler's {} and the short-video \
                 rule is reject: use a longer window",
                e.got, e.needed
            ))
        })?;
        let mut needed = vec![false; plan.window];
        for &o in offsets.iter().flatten() {
            needed[o] = true;
        }
        Ok(WindowBuffer {
            plan,
            sampler,
            rule,
            temporal_views,
            offsets,
            needed,
            frames: VecDeque::new(),
            next: 0,
            seen: 0,
        })
    }

    /// The plan.
    pub fn plan(&self) -> WindowPlan {
        self.plan
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.frames.len()
    }

    /// Frames pushed so far.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Adds frame `index` (the next one in order); returns the window it completes, if any.
    ///
    /// # Errors
    /// [`DataError::Config`] when `index` is not the next frame.
    pub fn push(&mut self, index: usize, frame: RgbFrame) -> Result<Option<Window>> {
        if index != self.seen {
            return Err(DataError::Config(format!(
                "frame {index} pushed, frame {} expected",
                self.seen
            )));
        }
        self.seen += 1;
        if (self.next == 0 && index < self.plan.window) || self.wanted(index) {
            self.frames.push_back((index, frame));
        }
        if index + 1 != self.plan.end(self.next) {
            return Ok(None);
        }
        let start = self.plan.start(self.next);
        let views = self
            .offsets
            .iter()
            .map(|view| view.iter().map(|&o| self.frame(start + o)).collect())
            .collect();
        let window = Window {
            index: self.next,
            start,
            end: index + 1,
            views,
        };
        self.next += 1;
        let keep: Vec<bool> = self.frames.iter().map(|(i, _)| self.wanted(*i)).collect();
        let mut keep = keep.into_iter();
        self.frames.retain(|_| keep.next().unwrap_or(false));
        Ok(Some(window))
    }

    /// Ends the stream: for a video shorter than one window (no window was complete), the
    /// one window over all its frames; else `None`.
    ///
    /// # Errors
    /// [`TooShort`] when no frame was pushed, or the video is shorter than the sampler's
    /// span and the short-video rule is `reject`.
    pub fn finish(self) -> std::result::Result<Option<Window>, TooShort> {
        if self.next > 0 {
            return Ok(None);
        }
        let views = view_indices(&self.sampler, self.seen, self.rule, self.temporal_views)?;
        let views = views
            .iter()
            .map(|view| view.iter().map(|&i| self.frame(i)).collect())
            .collect();
        Ok(Some(Window {
            index: 0,
            start: 0,
            end: self.seen,
            views,
        }))
    }

    /// Whether a window not yet complete samples frame `i`.
    fn wanted(&self, i: usize) -> bool {
        let (w, s) = (self.plan.window, self.plan.stride);
        // Windows k with start(k) <= i < start(k) + w.
        let first = (i + 1).saturating_sub(w).div_ceil(s).max(self.next);
        (first..=i / s).any(|k| self.needed[i - k * s])
    }

    /// A held frame (present by construction: every sampled frame of a pending window is
    /// kept).
    fn frame(&self, i: usize) -> RgbFrame {
        let at = self
            .frames
            .binary_search_by_key(&i, |(j, _)| *j)
            .expect("a sampled frame of a pending window is held");
        self.frames[at].1.clone()
    }
}

/// Per temporal view, the sampled indices in a video of `n` frames.
fn view_indices(
    sampler: &Sampler,
    n: usize,
    rule: ShortVideoRule,
    views: usize,
) -> std::result::Result<Vec<Vec<usize>>, TooShort> {
    // Test-mode sampling draws nothing from the generator.
    let mut rng = SplitMix64::new(0);
    (0..views)
        .map(|view| sample_indices(sampler, n, SampleMode::Test { view, views }, rule, &mut rng))
        .collect()
}

/// A window's clips, ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowClips {
    /// Window number, from 0.
    pub index: usize,
    /// First frame.
    pub start_frame: usize,
    /// One past the last frame.
    pub end_frame: usize,
    /// Time of the first frame, in seconds.
    pub start_s: f64,
    /// Time one past the last frame, in seconds.
    pub end_s: f64,
    /// Every test view (temporal x spatial, in the order of
    /// [`FileVideoDataset`](crate::FileVideoDataset)), each `[T, 3, H, W]`.
    pub clips: Vec<Clip>,
}

/// The clips of `window`: every temporal view through every spatial view of `config`'s
/// transform, normalised as it says (the test split's deterministic views).
///
/// # Errors
/// [`DataError::Config`] from the transform.
pub fn window_clips(window: &Window, config: &FileDatasetConfig) -> Result<Vec<Clip>> {
    let spatial = config.transform.spatial_views();
    let norm = config.transform.normalization.pixel_norm();
    let mut clips = Vec::with_capacity(window.views.len() * spatial);
    for (t, frames) in window.views.iter().enumerate() {
        for s in 0..spatial {
            let mut rng = SplitMix64::new(0);
            let (frames, _) =
                config
                    .transform
                    .apply(frames.clone(), 0, &config.flip, s, &mut rng)?;
            let (data, shape) = Clip::from_frames(&frames)?;
            clips.push(Clip {
                data,
                shape,
                norm,
                label: 0,
                appearance_label: None,
                sample: window.index,
                view: t * spatial + s,
            });
        }
    }
    Ok(clips)
}

/// What [`read_windows`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineSummary {
    /// The window plan in frames.
    pub plan: WindowPlan,
    /// The stream's average frame rate (0 when unknown).
    pub fps: f64,
    /// Frames decoded.
    pub frames: usize,
    /// Windows handed to the sink.
    pub windows: usize,
}

/// Decodes the video at `path` once, straight through, resized at decode as `config.read`
/// says, and calls `sink` with the clips of each window (`window` and `stride` long) as
/// soon as its last frame is decoded. At most one window of frames is held.
///
/// # Errors
/// The decoder's errors, [`DataError::Config`] for spans that cannot be windows (seconds
/// without a frame rate) or a transform that fails, [`DataError::TooFewFrames`] for a
/// stream without frames (or shorter than the sampler's span under the `reject` rule), and
/// whatever `sink` returns.
pub fn read_windows(
    path: &Path,
    window: Span,
    stride: Span,
    config: &FileDatasetConfig,
    sink: &mut dyn FnMut(WindowClips) -> Result<()>,
) -> Result<TimelineSummary> {
    let mut reader = VideoReader::open(path, &config.read.decode)?;
    let fps = reader.info().fps;
    let plan = WindowPlan::from_spans(window, stride, fps)
        .map_err(|e| DataError::Config(format!("{}: {e}", path.display())))?;
    let mut buffer = WindowBuffer::for_clips(plan, config)?;
    let time = |frame: usize| if fps > 0.0 { frame as f64 / fps } else { 0.0 };
    let mut windows = 0;
    let mut emit = |w: Window, windows: &mut usize| -> Result<()> {
        *windows += 1;
        sink(WindowClips {
            index: w.index,
            start_frame: w.start,
            end_frame: w.end,
            start_s: time(w.start),
            end_s: time(w.end),
            clips: window_clips(&w, config)?,
        })
    };
    let frames = reader.for_each_frame(config.read.resize, &mut |i, frame| match buffer
        .push(i, frame)?
    {
        Some(w) => emit(w, &mut windows),
        None => Ok(()),
    })?;
    let last = buffer
        .finish()
        .map_err(|TooShort { got, needed }| DataError::TooFewFrames {
            path: path.to_path_buf(),
            got,
            needed,
        })?;
    if let Some(w) = last {
        emit(w, &mut windows)?;
    }
    Ok(TimelineSummary {
        plan,
        fps,
        frames,
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x2 frame whose red channel is its index (mod 256), so tests can see which frame
    /// a clip got.
    fn frame(i: usize) -> RgbFrame {
        RgbFrame::filled(2, 2, [(i % 256) as u8, 0, 0])
    }

    fn ids(frames: &[RgbFrame]) -> Vec<usize> {
        frames.iter().map(|f| f.pixel(0, 0)[0] as usize).collect()
    }

    /// Pushes frames `0..n`; returns every window (including the one `finish` gives) and
    /// the most frames held at once.
    fn run(buffer: WindowBuffer, n: usize) -> (Vec<Window>, usize) {
        let mut buffer = buffer;
        let mut out = Vec::new();
        let mut most = 0;
        for i in 0..n {
            if let Some(w) = buffer.push(i, frame(i)).unwrap() {
                out.push(w);
            }
            most = most.max(buffer.held());
        }
        out.extend(buffer.finish().unwrap());
        (out, most)
    }

    #[test]
    fn spans_parse_seconds_and_frames_and_refuse_the_rest() {
        assert_eq!("2s".parse::<Span>().unwrap(), Span::Seconds(2.0));
        assert_eq!(" 0.5s".parse::<Span>().unwrap(), Span::Seconds(0.5));
        assert_eq!("16f".parse::<Span>().unwrap(), Span::Frames(16));
        for bad in [
            "2", "0f", "0s", "-1s", "1.5f", "infs", "NaNs", "s", "2m", "",
        ] {
            let e = bad.parse::<Span>().unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
        assert_eq!(Span::Seconds(2.5).to_string(), "2.5s");
        assert_eq!(Span::Frames(16).to_string(), "16f");
    }

    #[test]
    fn seconds_become_frames_at_the_frame_rate() {
        assert_eq!(Span::Seconds(2.0).to_frames(25.0).unwrap(), 50);
        assert_eq!(Span::Seconds(0.5).to_frames(29.97).unwrap(), 15);
        assert_eq!(Span::Seconds(0.001).to_frames(25.0).unwrap(), 1);
        assert_eq!(Span::Frames(7).to_frames(0.0).unwrap(), 7);
        let e = Span::Seconds(1.0).to_frames(0.0).unwrap_err().to_string();
        assert!(e.contains("frame rate is unknown"), "{e}");
        let plan = WindowPlan::from_spans(Span::Seconds(2.0), Span::Frames(10), 25.0).unwrap();
        assert_eq!(plan, WindowPlan::new(50, 10).unwrap());
        assert!(WindowPlan::new(0, 1).is_err() && WindowPlan::new(1, 0).is_err());
    }

    #[test]
    fn window_count_and_ranges() {
        let p = WindowPlan::new(10, 4).unwrap();
        assert_eq!((p.start(0), p.end(0)), (0, 10));
        assert_eq!((p.start(3), p.end(3)), (12, 22));
        assert_eq!(p.count(0), 0);
        assert_eq!(p.count(3), 1);
        assert_eq!(p.count(10), 1);
        assert_eq!(p.count(13), 1);
        assert_eq!(p.count(14), 2);
        assert_eq!(p.count(22), 4);
        // Stride longer than the window: gaps between windows.
        let gaps = WindowPlan::new(2, 5).unwrap();
        assert_eq!(gaps.count(12), 3);
    }

    #[test]
    fn windows_come_out_in_order_with_the_sampled_frames() {
        for (window, stride, n) in [(8, 3, 40), (8, 8, 33), (4, 6, 30), (5, 1, 12)] {
            let plan = WindowPlan::new(window, stride).unwrap();
            let sampler = Sampler::Segment { num_segments: 4 };
            let buffer = WindowBuffer::new(plan, sampler, ShortVideoRule::Stretch, 2).unwrap();
            let (windows, most) = run(buffer, n);
            assert_eq!(windows.len(), plan.count(n), "{plan:?} over {n}");
            assert!(most <= window, "{plan:?}: held {most}");
            let mut rng = SplitMix64::new(0);
            for (k, w) in windows.iter().enumerate() {
                assert_eq!(
                    (w.index, w.start, w.end),
                    (k, k * stride, k * stride + window)
                );
                for (view, frames) in w.views.iter().enumerate() {
                    let mode = SampleMode::Test { view, views: 2 };
                    let want: Vec<usize> =
                        sample_indices(&sampler, window, mode, ShortVideoRule::Stretch, &mut rng)
                            .unwrap()
                            .iter()
                            .map(|o| w.start + o)
                            .collect();
                    assert_eq!(ids(frames), want, "{plan:?} window {k} view {view}");
                }
            }
        }
    }

    #[test]
    fn only_sampled_frames_are_held_after_the_first_window() {
        // 4 of every 32 frames are sampled; windows overlap by half.
        let plan = WindowPlan::new(32, 16).unwrap();
        let sampler = Sampler::Segment { num_segments: 4 };
        let mut buffer = WindowBuffer::new(plan, sampler, ShortVideoRule::Stretch, 1).unwrap();
        let mut most_after_first = 0;
        let mut windows = 0;
        for i in 0..1000 {
            if buffer.push(i, frame(i)).unwrap().is_some() {
                windows += 1;
            }
            if windows > 0 {
                most_after_first = most_after_first.max(buffer.held());
            }
        }
        assert_eq!(windows, plan.count(1000));
        // The current window's 4 sampled frames and the next one's.
        assert!(most_after_first <= 8, "held {most_after_first}");
    }

    #[test]
    fn a_video_shorter_than_a_window_gives_one_window_over_all_frames() {
        let plan = WindowPlan::new(50, 10).unwrap();
        let sampler = Sampler::Segment { num_segments: 4 };
        let buffer = WindowBuffer::new(plan, sampler, ShortVideoRule::Stretch, 1).unwrap();
        let (windows, _) = run(buffer, 12);
        assert_eq!(windows.len(), 1);
        assert_eq!((windows[0].start, windows[0].end), (0, 12));
        assert_eq!(ids(&windows[0].views[0]), vec![1, 4, 7, 10]);

        let strict = WindowBuffer::new(plan, sampler, ShortVideoRule::Reject, 1).unwrap();
        let mut strict = strict;
        strict.push(0, frame(0)).unwrap();
        assert_eq!(strict.finish().unwrap_err(), TooShort { got: 1, needed: 4 });
        let empty = WindowBuffer::new(plan, sampler, ShortVideoRule::Stretch, 1).unwrap();
        assert!(empty.finish().is_err());
    }

    #[test]
    fn a_window_shorter_than_a_rejecting_sampler_is_a_config_error() {
        let plan = WindowPlan::new(8, 4).unwrap();
        let dense = Sampler::Dense {
            num_frames: 8,
            stride: 2,
        };
        let e = WindowBuffer::new(plan, dense, ShortVideoRule::Reject, 1).unwrap_err();
        assert!(e.to_string().contains("use a longer window"), "{e}");
        assert!(WindowBuffer::new(plan, dense, ShortVideoRule::Stretch, 0).is_err());
    }

    #[test]
    fn frames_out_of_order_are_refused() {
        let plan = WindowPlan::new(4, 2).unwrap();
        let sampler = Sampler::Segment { num_segments: 2 };
        let mut b = WindowBuffer::new(plan, sampler, ShortVideoRule::Stretch, 1).unwrap();
        b.push(0, frame(0)).unwrap();
        assert!(b.push(2, frame(2)).is_err());
    }
}
