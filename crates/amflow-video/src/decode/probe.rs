//! Opening a file: the container, its best video stream and a decoder for it, the stream's
//! properties ([`VideoInfo`]) and, for constant-frame-rate streams, the index <-> timestamp
//! map that seeking relies on.

use std::path::Path;

use ffmpeg_next as ff;

use super::seek::SeekMap;
use super::{init, DecodeConfig, VideoInfo, VideoReader};
use crate::error::{DataError, Result};

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

pub(super) fn rational(r: ff::Rational) -> f64 {
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
        Self::open_input(path, config)
    }

    /// Opens anything FFmpeg opens as an input: a file, `-` (standard input), a URL
    /// (`udp://`, `rtsp://`, `http://`, ...) or a device. Only a plain path is checked for
    /// existence first; opening a stream may block until it sends data.
    ///
    /// # Errors
    /// As [`VideoReader::open`].
    pub fn open_source(source: &str, config: &DecodeConfig) -> Result<Self> {
        init();
        let url = source.contains("://") || source.starts_with("pipe:");
        if source == "-" {
            Self::open_input(Path::new("pipe:0"), config)
        } else if url {
            ff::format::network::init();
            Self::open_input(Path::new(source), config)
        } else {
            Self::open(Path::new(source), config)
        }
    }

    fn open_input(path: &Path, config: &DecodeConfig) -> Result<Self> {
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
}
