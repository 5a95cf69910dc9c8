//! What seeking and skipping rely on: the frame index <-> timestamp map of a
//! constant-frame-rate stream, and which keyframes are clean random-access points (no later
//! frame refers to one before them), read off the packets' NAL unit headers for H.264/HEVC.

use ffmpeg_next as ff;

use super::VideoReader;

/// Distance to the next wanted frame beyond which non-reference frames may be discarded
/// (H.264 reorders at most 16 frames).
pub(super) const SKIP_MARGIN: usize = 16;

/// Frame index <-> timestamp mapping of a constant-frame-rate stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SeekMap {
    pub(super) fps: f64,
    /// Seconds per time-base tick.
    pub(super) tick: f64,
    /// Timestamp of frame 0, in ticks, once observed.
    pub(super) start: Option<i64>,
    /// Frames decoded in order whose timestamps matched the mapping; seeking and
    /// skipping wait until the first [`MIN_VERIFIED`] frames agree.
    pub(super) verified: usize,
    /// Whether every frame so far carried its packet's pts as its timestamp (not a
    /// time guessed from decoding order, as for AVI's packed B-frames): only then does
    /// a packet's pts name the frame it holds, for per-packet decisions.
    pub(super) packet_pts: bool,
}

/// Frames whose timestamps must match the index mapping before it is trusted.
pub(super) const MIN_VERIFIED: usize = 3;

impl SeekMap {
    /// Seek position (AV_TIME_BASE units) half a frame before frame `index`.
    pub(super) fn index_to_micros(&self, index: usize) -> i64 {
        let secs =
            self.start.unwrap_or(0) as f64 * self.tick + (index as f64 - 0.5).max(0.0) / self.fps;
        (secs * f64::from(ff::ffi::AV_TIME_BASE)) as i64
    }

    pub(super) fn ts_to_index(&self, ts: i64) -> Option<usize> {
        let i = ((ts - self.start?) as f64 * self.tick * self.fps).round();
        (i >= 0.0).then_some(i as usize)
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
    pub(super) fn clean_random_access(&self, packet: &ff::Packet) -> bool {
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
