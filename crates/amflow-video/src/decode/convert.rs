//! Converting a decoded frame to packed RGB at the requested size with swscale (bilinear),
//! reusing the scaler while the frames' format and size and the target size stay the same
//! ([`RgbScaler`], shared by the decoder and by prepared copies' stored frames).

use std::path::Path;

use ffmpeg_next as ff;

use super::pass::DecodeState;
use crate::error::{DataError, Result};
use crate::frame::RgbFrame;

/// Source format and size, target size.
type ScalerKey = (ff::format::Pixel, u32, u32, usize, usize);

/// A swscale context to packed RGB, rebuilt when the source format or size or the target size
/// change.
#[derive(Default)]
pub(crate) struct RgbScaler {
    ctx: Option<(ff::software::scaling::Context, ScalerKey)>,
}

impl RgbScaler {
    /// `frame` as a `tw x th` RGB frame; the error says what failed (callers name the kind:
    /// a decode error, a damaged record).
    pub(crate) fn convert(
        &mut self,
        frame: &ff::frame::Video,
        (tw, th): (usize, usize),
    ) -> std::result::Result<RgbFrame, String> {
        let fail = |e: ff::Error| format!("pixel conversion failed: {e}");
        let key = (frame.format(), frame.width(), frame.height(), tw, th);
        if self.ctx.as_ref().map(|(_, k)| *k) != Some(key) {
            let ctx = ff::software::scaling::Context::get(
                key.0,
                key.1,
                key.2,
                ff::format::Pixel::RGB24,
                tw as u32,
                th as u32,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(fail)?;
            self.ctx = Some((ctx, key));
        }
        let mut rgb = ff::frame::Video::empty();
        if let Some((scaler, _)) = self.ctx.as_mut() {
            scaler.run(frame, &mut rgb).map_err(fail)?;
        }
        let stride = rgb.stride(0);
        let plane = rgb.data(0);
        let mut data = Vec::with_capacity(tw * th * 3);
        for row in 0..th {
            let start = row * stride;
            let line = plane
                .get(start..start + tw * 3)
                .ok_or("converted frame is smaller than expected")?;
            data.extend_from_slice(line);
        }
        Ok(RgbFrame {
            width: tw,
            height: th,
            data,
        })
    }
}

impl DecodeState<'_> {
    pub(super) fn convert(&mut self, frame: &ff::frame::Video, path: &Path) -> Result<RgbFrame> {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let decode = |reason: String| DataError::Decode {
            path: path.to_path_buf(),
            reason,
        };
        if w == 0 || h == 0 {
            return Err(decode("decoder produced an empty frame".into()));
        }
        let target = self.resize.target(w, h);
        self.scaler.convert(frame, target).map_err(decode)
    }
}
