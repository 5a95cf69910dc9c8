//! Windows of a live source (`amflow watch`): a thread decodes anything FFmpeg opens
//! ([`VideoReader::open_source`]: a file, `-` for stdin, `udp://`, `rtsp://`, a device) front
//! to back into a [`WindowBuffer`] (only the frames pending windows sample are held), and
//! keeps only the latest complete window in a one-window slot: when the consumer is slower
//! than the stride, an older window not yet taken is replaced (counted as dropped), so the
//! decode never waits and the consumer never falls behind. [`LiveWindows::next`] waits for the
//! next window and reports a source that sends no frame for a configurable time.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::dataset::FileDatasetConfig;
use crate::decode::VideoReader;
use crate::error::{DataError, Result};
use crate::timeline::{window_clips, Span, WindowBuffer, WindowClips, WindowPlan};

/// A window taken from the slot.
#[derive(Debug, Clone)]
pub struct LiveWindow {
    /// The window's clips and source times.
    pub clips: WindowClips,
    /// When its last frame was decoded.
    pub arrived: Instant,
    /// Windows replaced in the slot before being taken, since the start.
    pub dropped: usize,
    /// When frame 0 was decoded: `first_frame.elapsed()` minus the source time of the
    /// window's last frame is how far the consumer is behind a real-time source.
    pub first_frame: Instant,
    /// Source time of the window's last frame, in seconds.
    pub last_frame_s: f64,
}

/// What the decode thread shares with the consumer.
#[derive(Debug)]
struct Shared {
    latest: Option<(WindowClips, Instant, f64)>,
    dropped: usize,
    first_frame: Option<Instant>,
    frames: usize,
    last_frame: Instant,
    /// How the decode ended: frames decoded, or the error.
    done: Option<Result<usize>>,
}

/// The windows of one live source, decoded on a background thread.
#[derive(Debug)]
pub struct LiveWindows {
    source: String,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stall: Duration,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic in the decode thread leaves the data consistent (plain fields).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveWindows {
    /// Starts decoding `source` on a thread: windows `window` long every `stride`, clips made
    /// as `config` says (test split). A source that sends no frame for `stall` (opening
    /// included) is an error from [`LiveWindows::next`].
    pub fn start(
        source: &str,
        window: Span,
        stride: Span,
        config: &FileDatasetConfig,
        stall: Duration,
    ) -> Self {
        let shared = Arc::new((
            Mutex::new(Shared {
                latest: None,
                dropped: 0,
                first_frame: None,
                frames: 0,
                last_frame: Instant::now(),
                done: None,
            }),
            Condvar::new(),
        ));
        let (src, cfg, sh) = (source.to_string(), config.clone(), shared.clone());
        std::thread::spawn(move || {
            let result = decode(&src, window, stride, &cfg, &sh);
            let (m, cv) = &*sh;
            lock(m).done = Some(result);
            cv.notify_all();
        });
        LiveWindows {
            source: source.to_string(),
            shared,
            stall,
        }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> usize {
        lock(&self.shared.0).frames
    }

    /// Waits for the next window: `Ok(None)` when the source ended (or `stop()` turned true:
    /// it is polled every 50 ms).
    ///
    /// # Errors
    /// The decoder's errors, and [`DataError::Decode`] when no frame came for the stall time.
    pub fn next(&self, stop: &dyn Fn() -> bool) -> Result<Option<LiveWindow>> {
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        loop {
            if let Some((clips, arrived, last_frame_s)) = g.latest.take() {
                return Ok(Some(LiveWindow {
                    clips,
                    arrived,
                    dropped: g.dropped,
                    first_frame: g.first_frame.unwrap_or(arrived),
                    last_frame_s,
                }));
            }
            match g.done.take() {
                Some(Ok(frames)) => {
                    g.done = Some(Ok(frames));
                    return Ok(None);
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
            if stop() {
                return Ok(None);
            }
            if g.last_frame.elapsed() > self.stall {
                return Err(DataError::Decode {
                    path: self.source.clone().into(),
                    reason: format!(
                        "no frame for {:.1} s after frame {} (stalled or lost source)",
                        self.stall.as_secs_f64(),
                        g.frames
                    ),
                });
            }
            g = cv
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The decode thread's work: every frame into the buffer, every complete window into the slot.
fn decode(
    source: &str,
    window: Span,
    stride: Span,
    config: &FileDatasetConfig,
    shared: &(Mutex<Shared>, Condvar),
) -> Result<usize> {
    let (m, cv) = shared;
    let mut reader = VideoReader::open_source(source, &config.read.decode)?;
    let fps = reader.info().fps;
    let plan = WindowPlan::from_spans(window, stride, fps)
        .map_err(|e| DataError::Config(format!("{source}: {e}")))?;
    let mut buffer = WindowBuffer::for_clips(plan, config)?;
    let time = |frame: usize| if fps > 0.0 { frame as f64 / fps } else { 0.0 };
    reader.for_each_frame(config.read.resize, &mut |i, frame| {
        let done = buffer.push(i, frame)?;
        {
            let mut g = lock(m);
            let now = Instant::now();
            g.frames = i + 1;
            g.last_frame = now;
            g.first_frame.get_or_insert(now);
        }
        if let Some(w) = done {
            let clips = WindowClips {
                index: w.index,
                start_frame: w.start,
                end_frame: w.end,
                start_s: time(w.start),
                end_s: time(w.end),
                clips: window_clips(&w, config)?,
            };
            let mut g = lock(m);
            let last = time(w.end - 1);
            if g.latest.replace((clips, Instant::now(), last)).is_some() {
                g.dropped += 1;
            }
            cv.notify_all();
        }
        Ok(())
    })
}
