//! Converting a decoded frame to packed RGB at the requested size with swscale (bilinear),
//! reusing the scaler while the frames' format and size stay the same.

use std::path::Path;

use ffmpeg_next as ff;

use super::pass::DecodeState;
use crate::error::{DataError, Result};
use crate::frame::RgbFrame;

impl DecodeState<'_> {
    pub(super) fn convert(&mut self, frame: &ff::frame::Video, path: &Path) -> Result<RgbFrame> {
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
