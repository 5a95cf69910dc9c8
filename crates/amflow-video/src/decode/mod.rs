//! Decoding with FFmpeg's libraries (libavformat/libavcodec/libswscale through the
//! `ffmpeg-next` binding): opening any container FFmpeg reads, decoding only up to the
//! last frame a sampler asked for, converting those frames (and only those) to RGB at
//! the requested size with swscale, and classifying every failure as a [`DataError`].
//! Single images (frame-folder datasets) go through the same path (FFmpeg's image2
//! demuxer), so JPEG/PNG need no extra decoder.
//! Frame numbering follows FFmpeg's presentation order, as `ffmpeg -i f -vf select` does.

mod convert;
mod pass;
mod probe;
mod seek;

pub(crate) use convert::RgbScaler;
pub(crate) use probe::check_file;

use std::path::{Path, PathBuf};
use std::sync::Once;

use ffmpeg_next as ff;
use serde::{Deserialize, Serialize};

use self::pass::Pass;
use crate::error::{DataError, Result};
use crate::frame::{Resize, RgbFrame};

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Codec threads per open video (0: FFmpeg's automatic choice). The loader already
    /// decodes one clip per worker thread, so 1 is the right value there.
    pub threads: usize,
    /// Packets the demuxer or decoder may reject, or decoded frames it may flag as
    /// damaged (error concealment), before the file is declared undecodable. Every
    /// decoded frame up to the last wanted one counts, since damage propagates through
    /// references. 0 (the default) rejects a file at its first error in that range.
    pub max_corrupt: usize,
    /// When the stream ends before the frame count its header announced (or, without
    /// one, before duration x frame rate), the file is declared truncated if it is short
    /// by more than this fraction of that count (and more than 2 frames). Smaller gaps
    /// are ordinary header slack: the sampler is re-run with the real count. 1.0
    /// disables the check.
    pub truncation_tolerance: f32,
    /// Skip to the keyframe before a wanted frame instead of decoding through the gap,
    /// for constant-frame-rate streams. Gaps of at least `seek_threshold` frames are
    /// skipped by a demuxer seek (seekable containers); shorter gaps by reading the
    /// packets up to the wanted frame ahead of the decoder and dropping those before
    /// the last clean keyframe among them (one no later frame refers past: VP8/VP9/AV1
    /// keyframes, H.264/HEVC IDR pictures, any keyframe of a stream without B-frames;
    /// exact; fewer than `seek_threshold` packets held).
    /// Frame indices after either come from timestamps; when they do not map back
    /// consistently the reader starts over without seeking.
    pub seek: bool,
    /// Smallest gap, in frames, for a demuxer seek (a seek lands on the container's
    /// keyframe before the target, which may be behind the frames already decoded;
    /// shorter gaps use the exact look-ahead).
    pub seek_threshold: usize,
    /// Let the codec discard non-reference frames (e.g. H.264 non-reference B-frames)
    /// that are not wanted, for constant-frame-rate streams. The decision is made per
    /// packet from its timestamp, so a wanted frame is always decoded; where packet
    /// timestamps do not name their frames (AVI) or are missing, only while the next
    /// wanted frame is more than 16 frames ahead. Reference frames are always decoded in full, so the wanted frames are
    /// bit-identical to a decode of every frame. Frame indices then come from
    /// timestamps; any inconsistency (including a wanted frame that was discarded)
    /// restarts the decode without skipping.
    pub skip_unneeded: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            threads: 1,
            max_corrupt: 0,
            truncation_tolerance: 0.05,
            seek: true,
            seek_threshold: 250,
            skip_unneeded: true,
        }
    }
}

/// Initialises FFmpeg once per process and turns its own logging down to fatal errors
/// (this crate reports every problem itself, naming the file).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // `init` only registers devices/network on old FFmpeg versions; errors are not possible
        // on the versions this crate builds against, and ignoring one is harmless.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// What the container says about its video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Coded width in pixels.
    pub width: usize,
    /// Coded height in pixels.
    pub height: usize,
    /// Frame count from the container header, when it has one.
    pub header_frames: Option<usize>,
    /// Best frame-count estimate: the header count, else duration x frame rate.
    pub estimated_frames: usize,
    /// Average frame rate (0 when unknown).
    pub fps: f64,
    /// Duration in seconds (0 when unknown).
    pub duration_s: f64,
    /// Codec name as FFmpeg spells it ("h264", "vp9", "mpeg4", ...).
    pub codec: String,
}

/// Frames decoded by [`VideoReader::decode_frames`].
#[derive(Debug, Clone)]
pub struct DecodedFrames {
    /// `(frame index, frame)` for every requested index that exists, ascending.
    pub frames: Vec<(usize, RgbFrame)>,
    /// One past the index of the last frame decoded: the stream's frame count when
    /// `reached_end`.
    pub decoded: usize,
    /// Whether the stream ended before every requested index was reached.
    pub reached_end: bool,
    /// Seeks made: demuxer seeks and look-ahead jumps to a keyframe (0 when the frames
    /// were decoded straight through).
    pub seeks: usize,
    /// Frames the codec actually output (fewer than `decoded` when seeking or
    /// [`DecodeConfig::skip_unneeded`] saved work).
    pub frames_output: usize,
    /// Whether a seeking/skipping pass lost track of frame indices and the frames were
    /// decoded again from the start: without demuxer seeks when one was involved, else
    /// (or when that fails too) without any seeking or skipping (the result is the
    /// same, the work is not).
    pub restarted: bool,
}

/// One open video file.
pub struct VideoReader {
    path: PathBuf,
    input: ff::format::context::Input,
    stream_index: usize,
    decoder: ff::decoder::Video,
    info: VideoInfo,
    config: DecodeConfig,
    seek_map: Option<seek::SeekMap>,
    codec_id: ff::codec::Id,
    /// Whether a decode pass has consumed part of the stream (a new request then
    /// reopens the file so frame numbering starts at 0 again).
    used: bool,
}

impl std::fmt::Debug for VideoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl VideoReader {
    /// What the container says about the stream.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The file this reader decodes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes the stream from the start up to the largest requested index, converting
    /// only the requested frames to RGB resized by `resize`. Indices may repeat and come
    /// in any order; an empty request decodes nothing. Pass `usize::MAX` as an index to
    /// decode the whole stream (this is how frames are counted). Each call starts from
    /// frame 0 (a reader used before reopens its file).
    ///
    /// # Errors
    /// [`DataError::Decode`] when the decoder rejects more packets or frames than
    /// [`DecodeConfig::max_corrupt`], or the pixel conversion fails.
    pub fn decode_frames(&mut self, wanted: &[usize], resize: Resize) -> Result<DecodedFrames> {
        let mut want: Vec<usize> = wanted.to_vec();
        want.sort_unstable();
        want.dedup();
        if want.is_empty() {
            return Ok(DecodedFrames {
                frames: Vec::new(),
                decoded: 0,
                reached_end: false,
                seeks: 0,
                frames_output: 0,
                restarted: false,
            });
        }
        if self.used {
            *self = VideoReader::open(&self.path, &self.config)?;
        }
        self.used = true;
        let fast = self.seek_map.is_some() && (self.config.seek || self.config.skip_unneeded);
        if fast {
            let demuxer_seeked = match self.decode_pass(&want, resize, true, true, None)? {
                Pass::Done(out) => return Ok(out),
                Pass::Lost { demuxer_seeked } => demuxer_seeked,
            };
            // The timestamps after a jump did not map back to frame indices: start over
            // from the beginning, so no wrong frame is ever returned. When a demuxer
            // seek was involved (e.g. it landed on an open-GOP recovery point), first
            // without demuxer seeks, keeping the exact look-ahead and skipping.
            *self = VideoReader::open(&self.path, &self.config)?;
            self.used = true;
            if demuxer_seeked {
                if let Pass::Done(mut out) = self.decode_pass(&want, resize, true, false, None)? {
                    out.restarted = true;
                    return Ok(out);
                }
                *self = VideoReader::open(&self.path, &self.config)?;
                self.used = true;
            }
        }
        match self.decode_pass(&want, resize, false, false, None)? {
            Pass::Done(mut out) => {
                out.restarted = fast;
                Ok(out)
            }
            Pass::Lost { .. } => Err(DataError::Decode {
                path: self.path.clone(),
                reason: "sequential decode lost track of frame indices".into(),
            }),
        }
    }
}

impl VideoReader {
    /// Decodes the whole stream from frame 0, straight through (no seeking or skipping),
    /// and hands every frame, converted to RGB resized by `resize`, to `sink` in frame
    /// order as soon as it is decoded, so no more than one frame is held. Returns the
    /// number of frames decoded. The corrupt-data rules of [`VideoReader::decode_frames`]
    /// apply; an error from `sink` ends the decode and is returned.
    ///
    /// # Errors
    /// As [`VideoReader::decode_frames`], and whatever `sink` returns.
    pub fn for_each_frame(
        &mut self,
        resize: Resize,
        sink: &mut dyn FnMut(usize, RgbFrame) -> Result<()>,
    ) -> Result<usize> {
        if self.used {
            *self = VideoReader::open(&self.path, &self.config)?;
        }
        self.used = true;
        match self.decode_pass(&[usize::MAX], resize, false, false, Some(sink))? {
            Pass::Done(out) => Ok(out.decoded),
            Pass::Lost { .. } => Err(DataError::Decode {
                path: self.path.clone(),
                reason: "sequential decode lost track of frame indices".into(),
            }),
        }
    }
}

/// Decodes one still image (JPEG, PNG, BMP, ... anything FFmpeg's image2 reads).
///
/// # Errors
/// As [`VideoReader::open`], or [`DataError::Decode`] when it yields no picture.
pub fn decode_image(path: &Path, resize: Resize) -> Result<RgbFrame> {
    let mut reader = VideoReader::open(path, &DecodeConfig::default())?;
    let mut got = reader.decode_frames(&[0], resize)?;
    got.frames
        .pop()
        .map(|(_, f)| f)
        .ok_or_else(|| DataError::Decode {
            path: path.to_path_buf(),
            reason: "no picture in file".into(),
        })
}
