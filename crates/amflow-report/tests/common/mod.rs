//! Test helpers: decode PNG files with the `png` crate's decoder, find pixels
//! of a colour, find a rendered string in a picture (exact glyph match), and
//! locate the frame of a plot.

#![allow(dead_code)]

use amflow_report::font::{draw_text, text_height, text_width};
use amflow_report::{Rgb, RgbImage};

/// Decodes an RGB8 PNG file into (width, height, bytes).
pub fn decode_png(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open png"));
    let mut reader = png::Decoder::new(file).read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// Decodes an RGB8 PNG file into an [`RgbImage`].
pub fn load_png(path: &std::path::Path) -> RgbImage {
    let (w, h, data) = decode_png(path);
    RgbImage::from_raw(w, h, data).expect("decoded size")
}

/// Number of pixels exactly equal to `c`.
pub fn count_color(data: &[u8], c: [u8; 3]) -> usize {
    data.chunks_exact(3).filter(|p| *p == c).count()
}

/// Coordinates `(x, y)` of every pixel exactly equal to `c`.
pub fn pixels_of(img: &RgbImage, c: Rgb) -> Vec<(usize, usize)> {
    img.data
        .chunks_exact(3)
        .enumerate()
        .filter(|(_, p)| *p == c)
        .map(|(i, _)| (i % img.width, i / img.width))
        .collect()
}

/// The `w x h` region of `img` at (`x`, `y`) as a new image.
pub fn crop(img: &RgbImage, x: usize, y: usize, w: usize, h: usize) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    for yy in 0..h {
        for xx in 0..w {
            out.put(
                xx as i64,
                yy as i64,
                img.get(x + xx, y + yy).expect("crop inside"),
            );
        }
    }
    out
}

/// `img` rotated 90 degrees clockwise, which turns text drawn by
/// `draw_text_vertical` (reading bottom to top) back into horizontal text.
pub fn rotate_cw(img: &RgbImage) -> RgbImage {
    let mut out = RgbImage::new(img.height, img.width);
    for y in 0..img.height {
        for x in 0..img.width {
            let p = img.get(x, y).expect("inside");
            out.put((img.height - 1 - y) as i64, x as i64, p);
        }
    }
    out
}

/// Top-left corners where `text`, drawn at `scale`, appears in `img` in
/// colour `ink`: every ink pixel of the glyphs has exactly that colour and no
/// other pixel of the text's bounding box has it. The glyph shapes come from
/// the crate's font, so this finds the string itself, not just "some ink".
pub fn find_text(img: &RgbImage, text: &str, ink: Rgb, scale: usize) -> Vec<(usize, usize)> {
    let (tw, th) = (text_width(text, scale), text_height(scale));
    if tw == 0 || tw > img.width || th > img.height {
        return Vec::new();
    }
    let mut mask = RgbImage::new(tw, th);
    draw_text(&mut mask, 0, 0, text, [255, 255, 255], scale);
    let on: Vec<bool> = mask.data.chunks_exact(3).map(|p| p[0] == 255).collect();
    let first = on.iter().position(|b| *b).expect("text has ink");
    let (fx, fy) = (first % tw, first / tw);
    let mut hits = Vec::new();
    for y in 0..=img.height - th {
        for x in 0..=img.width - tw {
            if img.get(x + fx, y + fy) != Some(ink) {
                continue;
            }
            let all = (0..th)
                .all(|v| (0..tw).all(|u| (img.get(x + u, y + v) == Some(ink)) == on[v * tw + u]));
            if all {
                hits.push((x, y));
            }
        }
    }
    hits
}

/// The one place `text` appears (panics when it appears zero or several times).
pub fn find_text_once(img: &RgbImage, text: &str, ink: Rgb, scale: usize) -> (usize, usize) {
    let hits = find_text(img, text, ink, scale);
    assert_eq!(hits.len(), 1, "{text:?} found at {hits:?}");
    hits[0]
}

/// The frame of a plot area: `(left, top, right, bottom)`, the inclusive pixel
/// rows and columns of the black outline. Found as the outermost rows that are
/// black over at least half the image width and the outermost columns black
/// over at least a third of its height (tick marks and text are far shorter).
pub fn plot_frame(img: &RgbImage) -> (usize, usize, usize, usize) {
    let black = |x: usize, y: usize| img.get(x, y) == Some([0, 0, 0]);
    let rows: Vec<usize> = (0..img.height)
        .filter(|&y| (0..img.width).filter(|&x| black(x, y)).count() >= img.width / 2)
        .collect();
    let cols: Vec<usize> = (0..img.width)
        .filter(|&x| (0..img.height).filter(|&y| black(x, y)).count() >= img.height / 3)
        .collect();
    assert!(rows.len() >= 2 && cols.len() >= 2, "no plot frame found");
    (
        cols[0],
        rows[0],
        *cols.last().unwrap(),
        *rows.last().unwrap(),
    )
}
