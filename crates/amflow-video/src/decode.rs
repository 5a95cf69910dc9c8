//! Decoding with FFmpeg's libraries (libavformat/libavcodec/libswscale through the
//! `ffmpeg-next` binding): opening any container FFmpeg reads, decoding only up to the
//! last frame a sampler asked for, converting those frames (and only those) to RGB at
//! the requested size with swscale, and classifying every failure as a [`DataError`].
//! Single images (frame-folder datasets) go through the same path (FFmpeg's image2
//! demuxer), so JPEG/PNG need no extra decoder.
//! Frame numbering follows FFmpeg's presentation order, as `ffmpeg -i f -vf select` does.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Once;

use ffmpeg_next as ff;
use serde::{Deserialize, Serialize};

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
    seek_map: Option<SeekMap>,
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

/// Checks that `path` exists and is not empty.
pub(crate) fn check_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::Missing {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(DataError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Ok(m) if m.is_file() && m.len() == 0 => Err(DataError::Empty {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
    }
}

fn rational(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        r.numerator() as f64 / r.denominator() as f64
    }
}

impl VideoReader {
    /// Opens `path` and prepares a decoder for its best video stream.
    ///
    /// # Errors
    /// [`DataError::Missing`], [`DataError::Empty`], [`DataError::Open`] (not a container
    /// FFmpeg can read), [`DataError::NoVideoStream`] (e.g. audio only, or only a cover
    /// picture), [`DataError::Decode`] (no decoder for the codec).
    pub fn open(path: &Path, config: &DecodeConfig) -> Result<Self> {
        init();
        check_file(path)?;
        let input = ff::format::input(path).map_err(|e| DataError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let stream = input
            .streams()
            .filter(|s| {
                s.parameters().medium() == ff::media::Type::Video
                    && !s
                        .disposition()
                        .contains(ff::format::stream::Disposition::ATTACHED_PIC)
            })
            .max_by_key(|s| {
                // Prefer FFmpeg's own choice, then the largest frame count.
                (s.frames(), std::cmp::Reverse(s.index()))
            })
            .ok_or_else(|| DataError::NoVideoStream {
                path: path.to_path_buf(),
            })?;
        let stream_index = stream.index();
        let decode_err = |e: ff::Error| DataError::Decode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(decode_err)?;
        let threads = config.threads;
        ctx.set_threading(ff::codec::threading::Config {
            kind: if threads == 1 {
                ff::codec::threading::Type::None
            } else {
                ff::codec::threading::Type::Frame
            },
            count: threads,
            ..Default::default()
        });
        let codec = ctx.id();
        let decoder = ctx.decoder().video().map_err(|e| DataError::Decode {
            path: path.to_path_buf(),
            reason: format!("no usable decoder for codec {codec:?}: {e}"),
        })?;
        let fps = {
            let avg = rational(stream.avg_frame_rate());
            if avg > 0.0 {
                avg
            } else {
                rational(stream.rate())
            }
        };
        let duration_s = if stream.duration() > 0 {
            stream.duration() as f64 * rational(stream.time_base())
        } else if input.duration() > 0 {
            input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE)
        } else {
            0.0
        };
        // Seeking maps indices to timestamps, so only constant-frame-rate streams qualify
        // (average rate equal to the base rate), and never still images.
        let cfr = fps > 0.0 && (rational(stream.rate()) - fps).abs() < 1e-3 * fps;
        let is_image =
            input.format().name().contains("image2") || input.format().name().ends_with("_pipe");
        let tick = rational(stream.time_base());
        let seek_map = (cfr && !is_image && tick > 0.0).then_some(SeekMap {
            fps,
            tick,
            start: None,
            verified: 0,
            packet_pts: true,
        });
        let header_frames = (stream.frames() > 0).then_some(stream.frames() as usize);
        let estimated_frames =
            header_frames.unwrap_or_else(|| (duration_s * fps).round().max(0.0) as usize);
        let info = VideoInfo {
            width: decoder.width() as usize,
            height: decoder.height() as usize,
            header_frames,
            estimated_frames,
            fps,
            duration_s,
            codec: codec.name().to_string(),
        };
        Ok(VideoReader {
            path: path.to_path_buf(),
            input,
            stream_index,
            decoder,
            info,
            config: config.clone(),
            seek_map,
            codec_id: codec,
            used: false,
        })
    }

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
            let demuxer_seeked = match self.decode_pass(&want, resize, true, true)? {
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
                if let Pass::Done(mut out) = self.decode_pass(&want, resize, true, false)? {
                    out.restarted = true;
                    return Ok(out);
                }
                *self = VideoReader::open(&self.path, &self.config)?;
                self.used = true;
            }
        }
        match self.decode_pass(&want, resize, false, false)? {
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

    /// One decoding pass over the stream: with `fast`, seeking/skipping as configured
    /// (demuxer seeks only with `demuxer_seeks`); [`Pass::Lost`] when timestamps after a
    /// jump or skip were inconsistent.
    fn decode_pass(
        &mut self,
        want: &[usize],
        resize: Resize,
        fast: bool,
        demuxer_seeks: bool,
    ) -> Result<Pass> {
        let mut out = DecodedFrames {
            frames: Vec::with_capacity(want.len()),
            decoded: 0,
            reached_end: false,
            seeks: 0,
            frames_output: 0,
            restarted: false,
        };
        let mut state = DecodeState {
            want,
            next: 0,
            corrupt: 0,
            scaler: None,
            resize,
            pos: Some(0),
            seek_target: 0,
            seeks: 0,
            skipping: false,
            ts_mode: false,
            seek_enabled: self.config.seek,
            pos_before_seek: 0,
            map: if fast { self.seek_map } else { None },
        };
        let mut frame = ff::frame::Video::empty();
        let threshold = self.config.seek_threshold.max(1);
        let mut bad_reads = 0usize;
        // Packets read ahead (look-ahead for keyframes) and not yet sent to the decoder.
        let mut pending: VecDeque<ff::Packet> = VecDeque::new();
        let mut eof = false;
        // The wanted frame the last look-ahead was made for (one per wanted frame).
        let mut looked_for: Option<usize> = None;
        // Largest frame index (from packet timestamps) sent to the decoder.
        let mut sent_max: Option<usize> = None;
        // Whether this pass made a demuxer seek.
        let mut demuxer_seeked = false;
        loop {
            if let (Some(map), Some(pos), true, true) = (
                state.map.filter(|m| m.verified >= MIN_VERIFIED),
                state.pos,
                state.seek_enabled,
                pending.is_empty() && !eof,
            ) {
                let target = want[state.next];
                // Never seek for the count-everything request or past the estimated end.
                // Each wanted frame gets at most one seek: a seek that lands far before
                // its target (long GOP) must not be repeated.
                let useful = target < self.info.estimated_frames
                    && (state.seeks == 0 || target != state.seek_target);
                if useful && demuxer_seeks && target >= pos + threshold {
                    let ts = map.index_to_micros(target);
                    if self.input.seek(ts, ..ts).is_ok() {
                        self.decoder.flush();
                        demuxer_seeked = true;
                        state.pos = None;
                        state.pos_before_seek = pos;
                        state.seek_target = target;
                        state.seeks += 1;
                        out.seeks += 1;
                    }
                } else if useful
                    && map.packet_pts
                    && looked_for != Some(target)
                    && target > sent_max.map_or(pos, |s| s.max(pos)) + 1
                {
                    // A shorter gap: read the packets up to the wanted frame ahead of the
                    // decoder (demuxing is cheap) and, when one of them is a keyframe at
                    // or before it, drop the packets before that keyframe.
                    looked_for = Some(target);
                    let floor = sent_max.map_or(pos, |s| s.max(pos));
                    let mut jump = false;
                    loop {
                        let Some(p) = self.read_packet(&mut state, &mut bad_reads)? else {
                            eof = true;
                            break;
                        };
                        let Some(i) = p.pts().and_then(|ts| map.ts_to_index(ts)) else {
                            // No timestamp to place it: stop looking ahead.
                            pending.push_back(p);
                            break;
                        };
                        if p.is_key()
                            && i <= target
                            && i > floor
                            && !pending.is_empty()
                            && self.clean_random_access(&p)
                        {
                            pending.clear();
                            jump = true;
                        }
                        pending.push_back(p);
                        if i >= target {
                            break;
                        }
                    }
                    if jump {
                        // Exactly like a seek: the decoder restarts at the keyframe and
                        // the first frame out must be that keyframe (checked in drain).
                        self.decoder.flush();
                        state.pos = None;
                        state.pos_before_seek = pos;
                        state.seek_target = target;
                        state.seeks += 1;
                        out.seeks += 1;
                    }
                }
            }
            let packet = match pending.pop_front() {
                Some(p) => p,
                None if eof => break,
                None => match self.read_packet(&mut state, &mut bad_reads)? {
                    Some(p) => p,
                    None => break,
                },
            };
            if let Some(i) = state
                .map
                .and_then(|m| packet.pts().and_then(|ts| m.ts_to_index(ts)))
            {
                sent_max = Some(sent_max.map_or(i, |s| s.max(i)));
            }
            if self.config.skip_unneeded {
                if let Some(map) = state.map.filter(|m| m.verified >= MIN_VERIFIED) {
                    let target = want[state.next];
                    // Per packet: its timestamp names the frame it holds, so a
                    // non-reference frame that is not wanted need not be decoded, and a
                    // wanted one always is. For packets without such a timestamp (AVI's
                    // are guessed from decoding order; second fields have none) only
                    // while the next wanted frame is more than the reorder depth away.
                    // Never while counting frames (a target past the estimated end).
                    let packet_index = packet
                        .pts()
                        .filter(|_| map.packet_pts)
                        .and_then(|ts| map.ts_to_index(ts));
                    let far = target < self.info.estimated_frames
                        && match packet_index {
                            Some(i) if i >= state.pos.unwrap_or(0) => {
                                want.binary_search(&i).is_err()
                            }
                            _ => state.pos.is_some_and(|pos| target >= pos + SKIP_MARGIN),
                        };
                    if far != state.skipping {
                        self.decoder.skip_frame(if far {
                            ff::codec::discard::Discard::NonReference
                        } else {
                            ff::codec::discard::Discard::Default
                        });
                        state.skipping = far;
                        state.ts_mode |= far;
                    }
                }
            }
            if let Err(e) = self.decoder.send_packet(&packet) {
                state.note_corrupt(&self.path, self.config.max_corrupt, &e.to_string())?;
                continue;
            }
            if !state.drain(
                &mut self.decoder,
                &mut frame,
                &mut out,
                &self.path,
                &self.config,
            )? {
                return Ok(Pass::Lost { demuxer_seeked });
            }
            if state.next == want.len() {
                return Ok(Pass::Done(out));
            }
        }
        // Flush the decoder's delayed frames (B-frame reordering, frame threads).
        if self.decoder.send_eof().is_ok()
            && !state.drain(
                &mut self.decoder,
                &mut frame,
                &mut out,
                &self.path,
                &self.config,
            )?
        {
            return Ok(Pass::Lost { demuxer_seeked });
        }
        out.reached_end = state.next < want.len();
        if out.reached_end && state.ts_mode {
            // Discarded frames at the end would make the frame count uncertain.
            return Ok(Pass::Lost { demuxer_seeked });
        }
        Ok(Pass::Done(out))
    }
}

impl VideoReader {
    /// Whether decoding can start at this keyframe packet, with the decoder flushed, and
    /// give every frame from it on exactly as a decode from the start would: no later
    /// frame refers to one before it. VP8/VP9/AV1 keyframes reset all references;
    /// H.264/HEVC need an IDR picture (an open-GOP recovery point has leading frames
    /// that refer back, and the decoder holds back frames until it recovers); other
    /// codecs qualify when the stream has no B-frames (no frames decoded after the
    /// keyframe but shown before it).
    fn clean_random_access(&self, packet: &ff::Packet) -> bool {
        use ff::codec::Id;
        let data = packet.data().unwrap_or_default();
        match self.codec_id {
            Id::VP8 | Id::VP9 | Id::AV1 => true,
            Id::H264 => nal_headers(data).iter().any(|b| b & 0x1f == 5),
            // IDR_W_RADL, IDR_N_LP.
            Id::HEVC => nal_headers(data)
                .iter()
                .any(|b| matches!((b >> 1) & 0x3f, 19 | 20)),
            _ => !self.decoder.has_b_frames(),
        }
    }

    /// The next packet of the video stream; None at the end of the stream (or at a read
    /// error, which the frame-count checks of the caller catch). Corrupt packets count
    /// against [`DecodeConfig::max_corrupt`] and are passed over.
    fn read_packet(
        &mut self,
        state: &mut DecodeState<'_>,
        bad_reads: &mut usize,
    ) -> Result<Option<ff::Packet>> {
        loop {
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => *bad_reads = 0,
                Err(ff::Error::Eof) => return Ok(None),
                // A corrupt packet: the demuxer resyncs on the next read (a demuxer that
                // makes no progress at all ends the stream instead of looping).
                Err(ff::Error::InvalidData) => {
                    state.note_corrupt(&self.path, self.config.max_corrupt, "corrupt packet")?;
                    *bad_reads += 1;
                    if *bad_reads > 10_000 {
                        return Ok(None);
                    }
                    continue;
                }
                Err(_) => return Ok(None),
            }
            if packet.stream() == self.stream_index {
                return Ok(Some(packet));
            }
        }
    }
}

/// First header byte of every NAL unit in an H.264/HEVC packet: Annex B (start codes)
/// or length-prefixed with 4-byte lengths (mp4, mkv); empty when it is neither.
fn nal_headers(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1]) {
        let mut i = 0;
        while i + 3 < data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                out.push(data[i + 3]);
                i += 3;
            } else {
                i += 1;
            }
        }
        return out;
    }
    let mut i = 0usize;
    while i < data.len() {
        let Some(len) = data.get(i..i + 4) else {
            return Vec::new();
        };
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        match data.get(i + 4) {
            Some(&b) if n > 0 && i + 4 + n <= data.len() => out.push(b),
            _ => return Vec::new(),
        }
        i += 4 + n;
    }
    out
}

/// Outcome of one decoding pass.
enum Pass {
    Done(DecodedFrames),
    /// Frame indices could not be trusted after a jump or skip.
    Lost {
        /// Whether the pass had made a demuxer seek.
        demuxer_seeked: bool,
    },
}

/// Distance to the next wanted frame beyond which non-reference frames may be discarded
/// (H.264 reorders at most 16 frames).
const SKIP_MARGIN: usize = 16;

/// Frame index <-> timestamp mapping of a constant-frame-rate stream.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SeekMap {
    fps: f64,
    /// Seconds per time-base tick.
    tick: f64,
    /// Timestamp of frame 0, in ticks, once observed.
    start: Option<i64>,
    /// Frames decoded in order whose timestamps matched the mapping; seeking and
    /// skipping wait until the first [`MIN_VERIFIED`] frames agree.
    verified: usize,
    /// Whether every frame so far carried its packet's pts as its timestamp (not a
    /// time guessed from decoding order, as for AVI's packed B-frames): only then does
    /// a packet's pts name the frame it holds, for per-packet decisions.
    packet_pts: bool,
}

/// Frames whose timestamps must match the index mapping before it is trusted.
const MIN_VERIFIED: usize = 3;

impl SeekMap {
    /// Seek position (AV_TIME_BASE units) half a frame before frame `index`.
    fn index_to_micros(&self, index: usize) -> i64 {
        let secs =
            self.start.unwrap_or(0) as f64 * self.tick + (index as f64 - 0.5).max(0.0) / self.fps;
        (secs * f64::from(ff::ffi::AV_TIME_BASE)) as i64
    }

    fn ts_to_index(&self, ts: i64) -> Option<usize> {
        let i = ((ts - self.start?) as f64 * self.tick * self.fps).round();
        (i >= 0.0).then_some(i as usize)
    }
}

struct DecodeState<'a> {
    want: &'a [usize],
    next: usize,
    corrupt: usize,
    scaler: Option<(
        ff::software::scaling::Context,
        (ff::format::Pixel, u32, u32),
    )>,
    resize: Resize,
    /// Index of the next frame the decoder outputs; None right after a seek.
    pos: Option<usize>,
    /// The wanted frame the last seek aimed at.
    seek_target: usize,
    /// Seeks done in this pass.
    seeks: usize,
    /// Whether seeking is (still) worth trying in this pass.
    seek_enabled: bool,
    /// The next frame index before the last seek.
    pos_before_seek: usize,
    /// Whether the codec currently discards non-reference frames.
    skipping: bool,
    /// Whether frame indices come from timestamps (once frames may have been discarded).
    ts_mode: bool,
    map: Option<SeekMap>,
}

impl DecodeState<'_> {
    fn note_corrupt(&mut self, path: &Path, max: usize, what: &str) -> Result<()> {
        self.corrupt += 1;
        if self.corrupt > max {
            Err(DataError::Decode {
                path: path.to_path_buf(),
                reason: format!(
                    "corrupt data ({} errors, {max} tolerated): {what}",
                    self.corrupt
                ),
            })
        } else {
            Ok(())
        }
    }

    /// Receives every frame the decoder has ready; false when a post-seek timestamp is
    /// unusable (missing, or past the frame the seek aimed at).
    fn drain(
        &mut self,
        decoder: &mut ff::decoder::Video,
        frame: &mut ff::frame::Video,
        out: &mut DecodedFrames,
        path: &Path,
        config: &DecodeConfig,
    ) -> Result<bool> {
        loop {
            match decoder.receive_frame(frame) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(true),
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => return Ok(true),
                Err(e) => {
                    self.note_corrupt(path, config.max_corrupt, &e.to_string())?;
                    return Ok(true);
                }
            }
            out.frames_output += 1;
            let index = match self.pos {
                Some(p) if self.ts_mode => {
                    // Frames may have been discarded: the timestamp gives the index.
                    let Some(i) = self
                        .map
                        .and_then(|m| frame.timestamp().and_then(|ts| m.ts_to_index(ts)))
                    else {
                        return Ok(false);
                    };
                    if i < p {
                        return Ok(false);
                    }
                    i
                }
                Some(p) => p,
                None => {
                    let Some(i) = self
                        .map
                        .and_then(|m| frame.timestamp().and_then(|ts| m.ts_to_index(ts)))
                    else {
                        return Ok(false);
                    };
                    // The first frame after a seek must be a keyframe at or before the
                    // target; anything else (a seek into the middle of a GOP, which
                    // decodes with missing references) means starting over.
                    if i > self.seek_target || !frame.is_key() {
                        return Ok(false);
                    }
                    // Landing before where decoding already was (sparse keyframes):
                    // seeking costs more than it saves in this file.
                    if i < self.pos_before_seek {
                        self.seek_enabled = false;
                    }
                    i
                }
            };
            if let Some(map) = self.map.as_mut() {
                map.packet_pts &= frame.pts().is_some() && frame.pts() == frame.timestamp();
                match (index, frame.timestamp()) {
                    // Calibrate: the timestamp of frame 0 anchors the index mapping.
                    (0, Some(ts)) if self.seeks == 0 => {
                        map.start = Some(ts);
                        map.verified = 1;
                    }
                    (_, Some(ts)) if map.start.is_some() && map.ts_to_index(ts) != Some(index) => {
                        if self.seeks > 0 {
                            // After a seek the index is unknown: start over.
                            return Ok(false);
                        }
                        // Timestamps do not follow frame order (variable frame rate):
                        // decode straight through.
                        self.map = None;
                    }
                    (_, Some(_)) if map.start.is_some() && !self.ts_mode && self.seeks == 0 => {
                        map.verified += 1;
                    }
                    _ => {}
                }
            }
            // A wanted frame that never came out (discarded or lost): start over.
            if self.next < self.want.len() && index > self.want[self.next] {
                return Ok(false);
            }
            self.pos = Some(index + 1);
            out.decoded = index + 1;
            // Any damaged frame before the last wanted one may have polluted the frames
            // that reference it, so every frame counts, not only the wanted ones.
            if frame.is_corrupt() || frame.has_decode_errors() {
                self.note_corrupt(
                    path,
                    config.max_corrupt,
                    &format!("frame {index} is damaged (error concealment)"),
                )?;
            }
            if self.next >= self.want.len() || self.want[self.next] != index {
                continue;
            }
            self.next += 1;
            let rgb = self.convert(frame, path)?;
            out.frames.push((index, rgb));
        }
    }

    fn convert(&mut self, frame: &ff::frame::Video, path: &Path) -> Result<RgbFrame> {
        let key = (frame.format(), frame.width(), frame.height());
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        if w == 0 || h == 0 {
            return Err(DataError::Decode {
                path: path.to_path_buf(),
                reason: "decoder produced an empty frame".into(),
            });
        }
        let (tw, th) = self.resize.target(w, h);
        let err = |e: ff::Error| DataError::Decode {
            path: path.to_path_buf(),
            reason: format!("pixel conversion failed: {e}"),
        };
        if self.scaler.as_ref().map(|(_, k)| *k) != Some(key) {
            let ctx = ff::software::scaling::Context::get(
                key.0,
                key.1,
                key.2,
                ff::format::Pixel::RGB24,
                tw as u32,
                th as u32,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(err)?;
            self.scaler = Some((ctx, key));
        }
        let mut rgb = ff::frame::Video::empty();
        if let Some((scaler, _)) = self.scaler.as_mut() {
            scaler.run(frame, &mut rgb).map_err(err)?;
        }
        let stride = rgb.stride(0);
        let plane = rgb.data(0);
        let mut data = Vec::with_capacity(tw * th * 3);
        for row in 0..th {
            let start = row * stride;
            let line = plane
                .get(start..start + tw * 3)
                .ok_or_else(|| DataError::Decode {
                    path: path.to_path_buf(),
                    reason: "converted frame is smaller than expected".into(),
                })?;
            data.extend_from_slice(line);
        }
        Ok(RgbFrame {
            width: tw,
            height: th,
            data,
        })
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

#[cfg(test)]
mod tests {
    use super::nal_headers;

    #[test]
    fn nal_headers_of_both_packet_layouts() {
        // Annex B: SPS (0x67), then an IDR slice (0x65) after a 3-byte start code.
        let annex_b = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x65, 9];
        assert_eq!(nal_headers(&annex_b), [0x67, 0x65]);
        // Length-prefixed: SEI (0x06, 2 bytes), then a non-IDR slice (0x41, 3 bytes).
        let avcc = [0, 0, 0, 2, 0x06, 5, 0, 0, 0, 3, 0x41, 7, 7];
        assert_eq!(nal_headers(&avcc), [0x06, 0x41]);
        // Lengths that do not add up (2-byte length fields, truncation): unknown.
        assert!(nal_headers(&[0, 2, 0x65, 1]).is_empty());
        assert!(nal_headers(&[0, 0, 0, 9, 0x65, 1]).is_empty());
        assert!(nal_headers(&[]).is_empty());
    }
}
