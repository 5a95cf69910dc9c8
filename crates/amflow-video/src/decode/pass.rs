//! One decoding pass over a stream: reading the video stream's packets, optional jumps
//! (demuxer seeks, look-ahead to a clean keyframe) and discarding of unneeded non-reference
//! frames, receiving frames in presentation order and keeping the wanted ones.

use std::collections::VecDeque;
use std::path::Path;

use ffmpeg_next as ff;

use super::seek::{SeekMap, MIN_VERIFIED, SKIP_MARGIN};
use super::{DecodeConfig, DecodedFrames, VideoReader};
use crate::error::{DataError, Result};
use crate::frame::Resize;

impl VideoReader {
    /// One decoding pass over the stream: with `fast`, seeking/skipping as configured
    /// (demuxer seeks only with `demuxer_seeks`); [`Pass::Lost`] when timestamps after a
    /// jump or skip were inconsistent.
    pub(super) fn decode_pass<'a>(
        &mut self,
        want: &'a [usize],
        resize: Resize,
        fast: bool,
        demuxer_seeks: bool,
        sink: Option<FrameSink<'a>>,
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
            scaler: Default::default(),
            resize,
            pos: Some(0),
            seek_target: 0,
            seeks: 0,
            skipping: false,
            ts_mode: false,
            seek_enabled: self.config.seek,
            pos_before_seek: 0,
            map: if fast { self.seek_map } else { None },
            sink,
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

/// Outcome of one decoding pass.
pub(super) enum Pass {
    Done(DecodedFrames),
    /// Frame indices could not be trusted after a jump or skip.
    Lost {
        /// Whether the pass had made a demuxer seek.
        demuxer_seeked: bool,
    },
}

pub(super) struct DecodeState<'a> {
    pub(super) want: &'a [usize],
    pub(super) next: usize,
    pub(super) corrupt: usize,
    pub(super) scaler: super::convert::RgbScaler,
    pub(super) resize: Resize,
    /// Index of the next frame the decoder outputs; None right after a seek.
    pub(super) pos: Option<usize>,
    /// The wanted frame the last seek aimed at.
    pub(super) seek_target: usize,
    /// Seeks done in this pass.
    pub(super) seeks: usize,
    /// Whether seeking is (still) worth trying in this pass.
    pub(super) seek_enabled: bool,
    /// The next frame index before the last seek.
    pub(super) pos_before_seek: usize,
    /// Whether the codec currently discards non-reference frames.
    pub(super) skipping: bool,
    /// Whether frame indices come from timestamps (once frames may have been discarded).
    pub(super) ts_mode: bool,
    pub(super) map: Option<SeekMap>,
    /// Receives every decoded frame, converted, in order (a whole-stream pass).
    pub(super) sink: Option<FrameSink<'a>>,
}

/// Where a whole-stream pass sends each frame: `(frame index, frame)`.
pub(super) type FrameSink<'a> =
    &'a mut (dyn FnMut(usize, crate::frame::RgbFrame) -> Result<()> + 'a);

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
            if self.sink.is_some() {
                let rgb = self.convert(frame, path)?;
                if let Some(sink) = self.sink.as_mut() {
                    sink(index, rgb)?;
                }
                continue;
            }
            if self.next >= self.want.len() || self.want[self.next] != index {
                continue;
            }
            self.next += 1;
            let rgb = self.convert(frame, path)?;
            out.frames.push((index, rgb));
        }
    }
}
