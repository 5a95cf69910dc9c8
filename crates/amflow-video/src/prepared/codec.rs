//! How a prepared dataset stores one frame ([`FrameCodec`]): baseline JPEG through
//! FFmpeg's `mjpeg` encoder and decoder (4:2:0, fixed quantiser), or raw RGB bytes, and the
//! conversion of a stored frame back to RGB at the size a reader asks for (swscale,
//! bilinear, as the original decode path resizes).

use std::path::Path;

use ffmpeg_next as ff;
use serde::{Deserialize, Serialize};

use crate::decode::{init, RgbScaler};
use crate::error::{DataError, Result};
use crate::frame::RgbFrame;

/// Storage of one frame in a prepared shard (TOML: `codec = { kind = "jpeg", qscale = 3 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrameCodec {
    /// Baseline JPEG, 4:2:0, full range, at FFmpeg's fixed quantiser `qscale` (as
    /// `ffmpeg -q:v`: 1 best ... 31 worst).
    Jpeg {
        /// Quantiser, 1..=31.
        qscale: u8,
    },
    /// Uncompressed RGB, `width x height x 3` bytes per frame: exact, large.
    Raw,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::Jpeg { qscale: 3 }
    }
}

impl FrameCodec {
    /// Checks the codec's parameters.
    ///
    /// # Errors
    /// [`DataError::Config`] for a JPEG `qscale` outside 1..=31.
    pub fn validate(self) -> Result<()> {
        match self {
            FrameCodec::Jpeg { qscale } if !(1..=31).contains(&qscale) => Err(DataError::Config(
                format!("jpeg qscale must be 1..=31, not {qscale}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Turns RGB frames of one size into stored frames.
pub(crate) enum FrameEncoder {
    Jpeg(JpegEncoder),
    Raw,
}

pub(crate) struct JpegEncoder {
    encoder: ff::encoder::Video,
    scaler: ff::software::scaling::Context,
    rgb: ff::frame::Video,
    size: (usize, usize),
    /// Timestamp of the next frame (the encoder wants them increasing).
    pts: i64,
}

fn encode_error(path: &Path, what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Encode {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

impl FrameEncoder {
    /// An encoder for `width x height` frames; `path` names the output in errors.
    pub(crate) fn new(codec: FrameCodec, width: usize, height: usize, path: &Path) -> Result<Self> {
        let qscale = match codec {
            FrameCodec::Raw => return Ok(FrameEncoder::Raw),
            FrameCodec::Jpeg { qscale } => qscale,
        };
        init();
        let err = |what: &'static str| move |e: ff::Error| encode_error(path, what, e);
        let jpeg = ff::encoder::find(ff::codec::Id::MJPEG)
            .ok_or_else(|| encode_error(path, "no mjpeg encoder", "FFmpeg built without it"))?;
        let mut enc = ff::codec::context::Context::new_with_codec(jpeg)
            .encoder()
            .video()
            .map_err(err("cannot create the JPEG encoder"))?;
        enc.set_width(width as u32);
        enc.set_height(height as u32);
        enc.set_format(ff::format::Pixel::YUVJ420P);
        enc.set_time_base(ff::Rational(1, 25));
        // A fixed quantiser: rate control may only pick `qscale`.
        enc.set_qmin(i32::from(qscale));
        enc.set_qmax(i32::from(qscale));
        let mut opts = ff::Dictionary::new();
        opts.set("threads", "1");
        let encoder = enc
            .open_with(opts)
            .map_err(err("cannot open the JPEG encoder"))?;
        let scaler = ff::software::scaling::Context::get(
            ff::format::Pixel::RGB24,
            width as u32,
            height as u32,
            ff::format::Pixel::YUVJ420P,
            width as u32,
            height as u32,
            ff::software::scaling::Flags::BILINEAR,
        )
        .map_err(err("cannot create the colour converter"))?;
        let rgb = ff::frame::Video::new(ff::format::Pixel::RGB24, width as u32, height as u32);
        Ok(FrameEncoder::Jpeg(JpegEncoder {
            encoder,
            scaler,
            rgb,
            size: (width, height),
            pts: 0,
        }))
    }

    /// The stored bytes of `frame` (which must have the encoder's size).
    pub(crate) fn encode(&mut self, frame: &RgbFrame, path: &Path) -> Result<Vec<u8>> {
        let j = match self {
            FrameEncoder::Raw => return Ok(frame.data.clone()),
            FrameEncoder::Jpeg(j) => j,
        };
        let (w, h) = j.size;
        if (frame.width, frame.height) != (w, h) {
            return Err(encode_error(
                path,
                "frame size changes inside the video",
                format!("{w}x{h} then {}x{}", frame.width, frame.height),
            ));
        }
        let err = |what: &'static str| move |e: ff::Error| encode_error(path, what, e);
        let stride = j.rgb.stride(0);
        let plane = j.rgb.data_mut(0);
        for row in 0..h {
            plane[row * stride..row * stride + w * 3]
                .copy_from_slice(&frame.data[row * w * 3..(row + 1) * w * 3]);
        }
        let mut yuv = ff::frame::Video::empty();
        j.scaler
            .run(&j.rgb, &mut yuv)
            .map_err(err("colour conversion failed"))?;
        yuv.set_pts(Some(j.pts));
        j.pts += 1;
        j.encoder
            .send_frame(&yuv)
            .map_err(err("the JPEG encoder rejected a frame"))?;
        let mut packet = ff::Packet::empty();
        j.encoder
            .receive_packet(&mut packet)
            .map_err(err("the JPEG encoder produced no picture"))?;
        Ok(packet.data().unwrap_or_default().to_vec())
    }
}

/// Turns stored frames back into RGB frames of a requested size; one per clip read (it
/// keeps the decoder and the scaler between the frames of a clip).
pub(crate) struct FrameDecoder {
    codec: FrameCodec,
    jpeg: Option<ff::decoder::Video>,
    scaler: RgbScaler,
}

impl FrameDecoder {
    pub(crate) fn new(codec: FrameCodec) -> Self {
        FrameDecoder {
            codec,
            jpeg: None,
            scaler: RgbScaler::default(),
        }
    }

    /// Decodes `blob`, a stored `width x height` frame, to RGB at `target` (width, height).
    /// `path` names the record in errors ([`DataError::Corrupt`]).
    pub(crate) fn decode(
        &mut self,
        blob: &[u8],
        (width, height): (usize, usize),
        target: (usize, usize),
        path: &Path,
    ) -> Result<RgbFrame> {
        let corrupt = |reason: String| DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        match self.codec {
            FrameCodec::Raw => {
                if blob.len() != width * height * 3 {
                    return Err(corrupt(format!(
                        "raw frame has {} bytes, {width}x{height} needs {}",
                        blob.len(),
                        width * height * 3
                    )));
                }
                let frame = RgbFrame {
                    width,
                    height,
                    data: blob.to_vec(),
                };
                Ok(if target == (width, height) {
                    frame
                } else {
                    frame.resize(target.0, target.1)
                })
            }
            FrameCodec::Jpeg { .. } => {
                let frame = self.decode_jpeg(blob, path)?;
                if (frame.width() as usize, frame.height() as usize) != (width, height) {
                    return Err(corrupt(format!(
                        "stored JPEG is {}x{}, the index says {width}x{height}",
                        frame.width(),
                        frame.height()
                    )));
                }
                self.convert(&frame, target, path)
            }
        }
    }

    fn decode_jpeg(&mut self, blob: &[u8], path: &Path) -> Result<ff::frame::Video> {
        let corrupt = |reason: String| DataError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if self.jpeg.is_none() {
            init();
            let codec = ff::decoder::find(ff::codec::Id::MJPEG)
                .ok_or_else(|| corrupt("FFmpeg has no mjpeg decoder".into()))?;
            let mut ctx = ff::codec::context::Context::new_with_codec(codec);
            ctx.set_threading(ff::codec::threading::Config {
                kind: ff::codec::threading::Type::None,
                count: 1,
                ..ff::codec::threading::Config::default()
            });
            let dec = ctx
                .decoder()
                .video()
                .map_err(|e| corrupt(format!("cannot open the JPEG decoder: {e}")))?;
            self.jpeg = Some(dec);
        }
        let Some(dec) = self.jpeg.as_mut() else {
            return Err(corrupt("no JPEG decoder".into()));
        };
        dec.send_packet(&ff::Packet::copy(blob))
            .map_err(|e| corrupt(format!("stored JPEG does not decode: {e}")))?;
        let mut frame = ff::frame::Video::empty();
        dec.receive_frame(&mut frame)
            .map_err(|e| corrupt(format!("stored JPEG gives no picture: {e}")))?;
        if frame.is_corrupt() || frame.has_decode_errors() {
            return Err(corrupt("stored JPEG is damaged".into()));
        }
        Ok(frame)
    }

    fn convert(
        &mut self,
        frame: &ff::frame::Video,
        target: (usize, usize),
        path: &Path,
    ) -> Result<RgbFrame> {
        self.scaler
            .convert(frame, target)
            .map_err(|reason| DataError::Corrupt {
                path: path.to_path_buf(),
                reason,
            })
    }
}
