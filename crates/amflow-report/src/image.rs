//! [`RgbImage`]: a minimal 8-bit RGB raster, the drawing primitives the plots
//! need (clipped rectangles, thick lines, blits), nearest-neighbour scaling
//! and PNG encoding.
//!
//! Pixel layout is row-major, top-left origin, 3 bytes per pixel (R, G, B),
//! matching PNG colour type 2 at bit depth 8 (PNG specification, ISO/IEC
//! 15948). Encoding uses the `png` crate.

use std::io::Write;
use std::path::Path;

use crate::error::{ReportError, Result};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An 8-bit RGB image, row-major from the top-left corner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes, R, G, B per pixel.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self::filled(width, height, [0, 0, 0])
    }

    /// An image filled with `color`.
    pub fn filled(width: usize, height: usize, color: Rgb) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&color);
        }
        RgbImage {
            width,
            height,
            data,
        }
    }

    /// Wraps raw RGB bytes, checking the length.
    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        let expected = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| ReportError::invalid("image size overflows"))?;
        if data.len() != expected {
            return Err(ReportError::invalid(format!(
                "{width}x{height} RGB image needs {expected} bytes, got {}",
                data.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// The pixel at (`x`, `y`), or `None` outside the image.
    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            Some([self.data[i], self.data[i + 1], self.data[i + 2]])
        } else {
            None
        }
    }

    /// Sets the pixel at (`x`, `y`); coordinates outside the image are ignored.
    pub fn put(&mut self, x: i64, y: i64, color: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Fills the `w x h` rectangle whose top-left corner is (`x`, `y`), clipped
    /// to the image.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, color: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x.saturating_add(w as i64)).min(self.width as i64);
        let y1 = (y.saturating_add(h as i64)).min(self.height as i64);
        for yy in y0..y1 {
            let row = yy as usize * self.width;
            for xx in x0..x1 {
                let i = (row + xx as usize) * 3;
                self.data[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    /// Draws the 1-pixel outline of a `w x h` rectangle.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: usize, h: usize, color: Rgb) {
        if w == 0 || h == 0 {
            return;
        }
        self.fill_rect(x, y, w, 1, color);
        self.fill_rect(x, y + h as i64 - 1, w, 1, color);
        self.fill_rect(x, y, 1, h, color);
        self.fill_rect(x + w as i64 - 1, y, 1, h, color);
    }

    /// Draws a straight line between two points with a square pen of
    /// `thickness` pixels (Bresenham's algorithm), clipped to the image.
    /// Non-finite coordinates draw nothing.
    pub fn draw_line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, thickness: usize) {
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return;
        }
        // Clamp far-away endpoints so the loop stays bounded.
        let lim = 4.0 * (self.width.max(self.height) as f64 + 16.0);
        let c = |v: f64| v.clamp(-lim, lim).round() as i64;
        let (mut x, mut y, xe, ye) = (c(x0), c(y0), c(x1), c(y1));
        let t = thickness.max(1);
        let off = (t as i64 - 1) / 2;
        let dx = (xe - x).abs();
        let dy = -(ye - y).abs();
        let sx = if x < xe { 1 } else { -1 };
        let sy = if y < ye { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.fill_rect(x - off, y - off, t, t, color);
            if x == xe && y == ye {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Copies `src` onto this image with its top-left corner at (`x`, `y`),
    /// clipped to this image.
    pub fn blit(&mut self, src: &RgbImage, x: i64, y: i64) {
        for sy in 0..src.height {
            let ty = y + sy as i64;
            if ty < 0 || ty >= self.height as i64 {
                continue;
            }
            for sx in 0..src.width {
                let tx = x + sx as i64;
                if tx < 0 || tx >= self.width as i64 {
                    continue;
                }
                let si = (sy * src.width + sx) * 3;
                let ti = (ty as usize * self.width + tx as usize) * 3;
                self.data[ti..ti + 3].copy_from_slice(&src.data[si..si + 3]);
            }
        }
    }

    /// Encodes the image as PNG bytes (RGB, 8 bits per channel).
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_png(&mut out)?;
        Ok(out)
    }

    /// Writes the image as a PNG file at `path` (parent directories are created).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::write_file(path.as_ref(), &self.encode_png()?)
    }

    fn write_png<W: Write>(&self, w: W) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(ReportError::invalid(format!(
                "cannot encode an empty {}x{} image as PNG",
                self.width, self.height
            )));
        }
        if self.data.len() != self.width * self.height * 3 {
            return Err(ReportError::invalid(format!(
                "image data has {} bytes, expected {}",
                self.data.len(),
                self.width * self.height * 3
            )));
        }
        let (wu, hu) = match (u32::try_from(self.width), u32::try_from(self.height)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(ReportError::invalid("image too large for PNG")),
        };
        let mut enc = png::Encoder::new(w, wu, hu);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.data)?;
        writer.finish()?;
        Ok(())
    }
}

/// Nearest-neighbour upscaling by an integer `factor` (0 is treated as 1).
pub fn upscale_nearest(img: &RgbImage, factor: usize) -> RgbImage {
    let f = factor.max(1);
    resize_nearest(img, img.width * f, img.height * f)
}

/// Nearest-neighbour resize to `width x height`. An empty source gives a black
/// image of the requested size.
pub fn resize_nearest(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    if img.width == 0 || img.height == 0 {
        return out;
    }
    for y in 0..height {
        let sy = y * img.height / height;
        for x in 0..width {
            let sx = x * img.width / width;
            let si = (sy * img.width + sx) * 3;
            let ti = (y * width + x) * 3;
            out.data[ti..ti + 3].copy_from_slice(&img.data[si..si + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_raw_checks_length() {
        assert!(RgbImage::from_raw(2, 2, vec![0; 12]).is_ok());
        assert!(RgbImage::from_raw(2, 2, vec![0; 11]).is_err());
    }

    #[test]
    fn upscale_replicates_pixels() {
        let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let up = upscale_nearest(&img, 3);
        assert_eq!((up.width, up.height), (6, 3));
        assert_eq!(up.get(2, 2), Some([1, 2, 3]));
        assert_eq!(up.get(3, 0), Some([4, 5, 6]));
    }

    /// Coordinates of the pixels equal to `c`, row by row.
    fn lit(img: &RgbImage, c: Rgb) -> Vec<(usize, usize)> {
        (0..img.height)
            .flat_map(|y| (0..img.width).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == Some(c))
            .collect()
    }

    #[test]
    fn rectangles_clip_to_the_image() {
        let mut img = RgbImage::new(10, 10);
        img.fill_rect(-5, -5, 8, 8, [9, 9, 9]);
        let expect: Vec<(usize, usize)> =
            (0..3).flat_map(|y| (0..3).map(move |x| (x, y))).collect();
        assert_eq!(lit(&img, [9, 9, 9]), expect);
        let mut img = RgbImage::new(6, 5);
        img.stroke_rect(1, 1, 4, 3, [1, 2, 3]);
        let outline = lit(&img, [1, 2, 3]);
        assert_eq!(outline.len(), 2 * 4 + 2 * 3 - 4);
        assert!(outline
            .iter()
            .all(|&(x, y)| x == 1 || x == 4 || y == 1 || y == 3));
        assert_eq!(img.get(2, 2), Some([0, 0, 0]));
    }

    #[test]
    fn lines_cover_exactly_the_pixels_between_their_ends() {
        let c = [5, 6, 7];
        let mut img = RgbImage::new(10, 10);
        img.draw_line(1.0, 5.0, 8.0, 5.0, c, 1);
        assert_eq!(lit(&img, c), (1..=8).map(|x| (x, 5)).collect::<Vec<_>>());
        let mut img = RgbImage::new(10, 10);
        img.draw_line(9.0, 9.0, 0.0, 0.0, c, 1);
        assert_eq!(lit(&img, c), (0..10).map(|i| (i, i)).collect::<Vec<_>>());
        // Thickness 3 is a band of three rows centred on the line.
        let mut img = RgbImage::new(10, 10);
        img.draw_line(2.0, 4.0, 7.0, 4.0, c, 3);
        let band: Vec<(usize, usize)> =
            (3..=5).flat_map(|y| (1..=8).map(move |x| (x, y))).collect();
        assert_eq!(lit(&img, c), band);
        // A steep line visits every row once.
        let mut img = RgbImage::new(10, 10);
        img.draw_line(2.0, 0.0, 4.0, 9.0, c, 1);
        let rows: Vec<usize> = lit(&img, c).iter().map(|p| p.1).collect();
        assert_eq!(rows, (0..10).collect::<Vec<_>>());
        // Far-away ends are clipped, not looped over; non-finite ends draw nothing.
        let mut img = RgbImage::new(10, 10);
        img.draw_line(-1e9, 5.0, 1e9, 5.0, c, 1);
        assert_eq!(lit(&img, c), (0..10).map(|x| (x, 5)).collect::<Vec<_>>());
        let mut img = RgbImage::new(10, 10);
        img.draw_line(f64::NAN, 0.0, 1.0, 1.0, c, 1);
        img.draw_line(0.0, 0.0, f64::INFINITY, 1.0, c, 1);
        assert!(lit(&img, c).is_empty());
    }

    #[test]
    fn blit_copies_and_clips() {
        let mut src = RgbImage::new(3, 2);
        src.put(0, 0, [1, 1, 1]);
        src.put(2, 1, [2, 2, 2]);
        let mut img = RgbImage::filled(5, 5, [9, 9, 9]);
        img.blit(&src, 1, 2);
        assert_eq!(img.get(1, 2), Some([1, 1, 1]));
        assert_eq!(img.get(3, 3), Some([2, 2, 2]));
        assert_eq!(img.get(2, 2), Some([0, 0, 0]));
        assert_eq!(img.get(0, 2), Some([9, 9, 9]));
        assert_eq!(img.get(4, 2), Some([9, 9, 9]));
        // Partly outside on every side.
        let mut img = RgbImage::filled(2, 2, [9, 9, 9]);
        img.blit(&src, -2, -1);
        assert_eq!(img.get(0, 0), Some([2, 2, 2]));
        assert_eq!(lit(&img, [9, 9, 9]).len(), 3);
    }

    #[test]
    fn resize_samples_the_nearest_source_pixel() {
        let img = RgbImage::from_raw(2, 2, vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]).unwrap();
        let r = resize_nearest(&img, 3, 1);
        let row: Vec<u8> = r.data.chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(row, [1, 1, 2]);
        let r = resize_nearest(&img, 1, 4);
        let col: Vec<u8> = r.data.chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(col, [1, 1, 3, 3]);
        assert_eq!(
            resize_nearest(&RgbImage::new(0, 0), 2, 2),
            RgbImage::new(2, 2)
        );
    }

    #[test]
    fn png_bytes_decode_to_the_same_pixels() {
        let mut img = RgbImage::new(3, 2);
        img.put(2, 1, [10, 20, 30]);
        let bytes = img.encode_png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], &img.data[..]);
    }

    #[test]
    fn empty_image_is_an_error_not_a_panic() {
        assert!(RgbImage::new(0, 5).encode_png().is_err());
    }
}
