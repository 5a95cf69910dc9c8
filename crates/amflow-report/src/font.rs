//! Embedded 5x7 bitmap font for printable ASCII (32..=126) and text drawing
//! onto an [`RgbImage`].
//!
//! The glyph table was drawn for this crate: each glyph is 7 rows of 5 bits,
//! bit 4 being the leftmost column, in the style of classic 5x7 character-LCD
//! fonts. Cells are 6 pixels wide (one pixel of spacing) and lines 9 pixels
//! high at scale 1; an integer `scale` draws each font pixel as a
//! `scale x scale` block. Characters outside 32..=126 are drawn as `?`.

use crate::image::{Rgb, RgbImage};

/// Glyph width in font pixels.
pub const GLYPH_W: usize = 5;
/// Glyph height in font pixels.
pub const GLYPH_H: usize = 7;
/// Horizontal advance per character in font pixels (glyph plus one column gap).
pub const ADVANCE: usize = 6;
/// Vertical advance per text line in font pixels.
pub const LINE_H: usize = 9;

/// Glyph rows for ASCII 32..=126.
const GLYPHS: [[u8; GLYPH_H]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04], // '!'
    [0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00], // '"'
    [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A], // '#'
    [0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04], // '$'
    [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], // '%'
    [0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D], // '&'
    [0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00], // "'"
    [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02], // '('
    [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], // ')'
    [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00], // '*'
    [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00], // '+'
    [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08], // ','
    [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00], // '-'
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], // '.'
    [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00], // '/'
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // '0'
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // '1'
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // '2'
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // '3'
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // '4'
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // '5'
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // '6'
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // '7'
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // '8'
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // '9'
    [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00], // ':'
    [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08], // ';'
    [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02], // '<'
    [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00], // '='
    [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08], // '>'
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // '?'
    [0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E], // '@'
    [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // 'A'
    [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // 'B'
    [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], // 'C'
    [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C], // 'D'
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], // 'E'
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // 'F'
    [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], // 'G'
    [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // 'H'
    [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // 'I'
    [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // 'J'
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // 'K'
    [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // 'L'
    [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], // 'M'
    [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // 'N'
    [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // 'O'
    [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // 'P'
    [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], // 'Q'
    [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // 'R'
    [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], // 'S'
    [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // 'T'
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // 'U'
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // 'V'
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], // 'W'
    [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // 'X'
    [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04], // 'Y'
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // 'Z'
    [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E], // '['
    [0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00], // '\\'
    [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E], // ']'
    [0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00], // '^'
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F], // '_'
    [0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00], // '`'
    [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F], // 'a'
    [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E], // 'b'
    [0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E], // 'c'
    [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F], // 'd'
    [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E], // 'e'
    [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08], // 'f'
    [0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E], // 'g'
    [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11], // 'h'
    [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E], // 'i'
    [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C], // 'j'
    [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12], // 'k'
    [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // 'l'
    [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11], // 'm'
    [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11], // 'n'
    [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E], // 'o'
    [0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10], // 'p'
    [0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01], // 'q'
    [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10], // 'r'
    [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E], // 's'
    [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06], // 't'
    [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D], // 'u'
    [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04], // 'v'
    [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A], // 'w'
    [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11], // 'x'
    [0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E], // 'y'
    [0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F], // 'z'
    [0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02], // '{'
    [0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // '|'
    [0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08], // '}'
    [0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00], // '~'
];

/// The 7 row bitmaps of `c` (bit 4 = leftmost column); `?` for characters
/// outside printable ASCII.
pub fn glyph(c: char) -> [u8; GLYPH_H] {
    let code = c as u32;
    let idx = if (32..=126).contains(&code) {
        (code - 32) as usize
    } else {
        ('?' as u32 - 32) as usize
    };
    GLYPHS[idx]
}

/// Width in pixels of `text` drawn at `scale` (no trailing gap).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * ADVANCE - 1) * scale.max(1)
    }
}

/// Height in pixels of one line of text at `scale`.
pub fn text_height(scale: usize) -> usize {
    GLYPH_H * scale.max(1)
}

/// Truncates `text` to at most `max_chars` characters, ending in `.` when cut
/// (so "walking_dog" with 6 becomes "walki.").
pub fn truncate(text: &str, max_chars: usize) -> String {
    let n = text.chars().count();
    if n <= max_chars {
        return text.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(max_chars - 1).collect();
    s.push('.');
    s
}

/// Default text colour of every figure in this crate (near-black).
pub const INK: Rgb = [30, 30, 30];

/// Calls `f(u, v)` with the offset from the text's top-left corner of every
/// `scale x scale` ink block of `text` laid out left to right.
fn for_each_ink(text: &str, scale: usize, mut f: impl FnMut(i64, i64)) {
    let s = scale.max(1) as i64;
    for (k, c) in text.chars().enumerate() {
        let cu = (k * ADVANCE) as i64 * s;
        for (ry, bits) in glyph(c).iter().enumerate() {
            for rx in 0..GLYPH_W {
                if bits & (0x10 >> rx) != 0 {
                    f(cu + rx as i64 * s, ry as i64 * s);
                }
            }
        }
    }
}

/// Draws `text` with its top-left corner at (`x`, `y`); pixels falling outside
/// the image are clipped.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb, scale: usize) {
    let s = scale.max(1);
    for_each_ink(text, scale, |u, v| img.fill_rect(x + u, y + v, s, s, color));
}

/// Draws `text` rotated 90 degrees counter-clockwise (reading bottom to top),
/// with the top-left corner of its bounding box at (`x`, `y`). Used for
/// vertical axis labels.
pub fn draw_text_vertical(
    img: &mut RgbImage,
    x: i64,
    y: i64,
    text: &str,
    color: Rgb,
    scale: usize,
) {
    let s = scale.max(1);
    let w = text_width(text, scale) as i64;
    // A block at (u, v) of the horizontal rendering maps to (v, w - u - s).
    for_each_ink(text, scale, |u, v| {
        img.fill_rect(x + v, y + w - u - s as i64, s, s, color)
    });
}

/// Draws `text` centred in the `span` pixels that start at `x`, top at `y`;
/// text wider than the span starts at `x`.
pub fn draw_text_centered(
    img: &mut RgbImage,
    x: usize,
    span: usize,
    y: usize,
    text: &str,
    color: Rgb,
    scale: usize,
) {
    let left = x + span.saturating_sub(text_width(text, scale)) / 2;
    draw_text(img, left as i64, y as i64, text, color, scale);
}

/// Draws `text` vertically (as [`draw_text_vertical`]) with its left edge at
/// `x`, centred in the `span` pixels that start at `y`.
pub fn draw_text_vertical_centered(
    img: &mut RgbImage,
    x: usize,
    y: usize,
    span: usize,
    text: &str,
    color: Rgb,
    scale: usize,
) {
    let top = y + span.saturating_sub(text_width(text, scale)) / 2;
    draw_text_vertical(img, x as i64, top as i64, text, color, scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_glyph_but_space_has_ink() {
        for code in 33u8..=126 {
            let g = glyph(code as char);
            assert!(
                g.iter().any(|r| *r != 0),
                "glyph {:?} is blank",
                code as char
            );
            assert!(
                g.iter().all(|r| *r < 32),
                "glyph {:?} wider than 5",
                code as char
            );
        }
        assert_eq!(glyph(' '), [0; 7]);
        assert_eq!(glyph('\u{e9}'), glyph('?'));
    }

    #[test]
    fn widths_and_truncation() {
        assert_eq!(text_width("", 1), 0);
        assert_eq!(text_width("ab", 1), 11);
        assert_eq!(text_width("ab", 2), 22);
        assert_eq!(truncate("walking_dog", 6), "walki.");
        assert_eq!(truncate("run", 6), "run");
    }

    const W: Rgb = [255, 255, 255];

    #[test]
    fn draws_the_glyph_bits_at_scale() {
        let mut img = RgbImage::new(14, 18);
        draw_text(&mut img, 1, 2, "T", W, 2);
        let g = glyph('T');
        for y in 0..18 {
            for x in 0..14 {
                let (u, v) = ((x as i64 - 1).div_euclid(2), (y as i64 - 2).div_euclid(2));
                let inside = (0..GLYPH_W as i64).contains(&u) && (0..GLYPH_H as i64).contains(&v);
                let ink = inside && g[v as usize] & (0x10 >> u) != 0;
                assert_eq!(img.get(x, y) == Some(W), ink, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn second_character_advances_by_one_cell() {
        let mut pair = RgbImage::new(20, 10);
        draw_text(&mut pair, 0, 0, "LT", W, 1);
        let mut t = RgbImage::new(20, 10);
        draw_text(&mut t, ADVANCE as i64, 0, "T", W, 1);
        let mut l = RgbImage::new(20, 10);
        draw_text(&mut l, 0, 0, "L", W, 1);
        for y in 0..10 {
            for x in 0..20 {
                let either = l.get(x, y) == Some(W) || t.get(x, y) == Some(W);
                assert_eq!(pair.get(x, y) == Some(W), either, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn vertical_text_is_horizontal_text_turned_counter_clockwise() {
        let text = "Ab1?";
        let (w, h) = (text_width(text, 1), text_height(1));
        let mut horizontal = RgbImage::new(w, h);
        draw_text(&mut horizontal, 0, 0, text, W, 1);
        let mut vertical = RgbImage::new(h, w);
        draw_text_vertical(&mut vertical, 0, 0, text, W, 1);
        for v in 0..h {
            for u in 0..w {
                // The first character ends up at the bottom.
                assert_eq!(
                    horizontal.get(u, v),
                    vertical.get(v, w - 1 - u),
                    "({u}, {v})"
                );
            }
        }
    }

    #[test]
    fn clipped_text_keeps_the_visible_part() {
        let mut full = RgbImage::new(40, 20);
        draw_text(&mut full, 10, 10, "Hi!", W, 1);
        // Drawn 3 px left of and 2 px above the image: the visible part is the
        // full rendering's window starting at (13, 12).
        let mut off = RgbImage::new(8, 8);
        draw_text(&mut off, -3, -2, "Hi!", W, 1);
        for y in 0..8 {
            for x in 0..8 {
                assert_eq!(off.get(x, y), full.get(x + 13, y + 12), "({x}, {y})");
            }
        }
        // Entirely off-image text draws nothing and does not panic.
        let mut none = RgbImage::new(8, 8);
        draw_text(&mut none, -100, -100, "hello", W, 2);
        draw_text_vertical(&mut none, 100, 100, "hello", W, 2);
        assert!(none.data.iter().all(|&b| b == 0));
    }

    #[test]
    fn centred_text_is_shifted_by_half_the_free_space() {
        let mut centred = RgbImage::new(60, 10);
        draw_text_centered(&mut centred, 10, 40, 1, "ab", W, 1);
        let mut by_hand = RgbImage::new(60, 10);
        draw_text(&mut by_hand, 10 + (40 - 11) / 2, 1, "ab", W, 1);
        assert_eq!(centred, by_hand);
        // Too wide for the span: starts at the span's start.
        let mut wide = RgbImage::new(60, 10);
        draw_text_centered(&mut wide, 5, 4, 0, "abc", W, 1);
        let mut at_start = RgbImage::new(60, 10);
        draw_text(&mut at_start, 5, 0, "abc", W, 1);
        assert_eq!(wide, at_start);
        let mut v = RgbImage::new(10, 60);
        draw_text_vertical_centered(&mut v, 1, 10, 40, "ab", W, 1);
        let mut v_by_hand = RgbImage::new(10, 60);
        draw_text_vertical(&mut v_by_hand, 1, 10 + (40 - 11) / 2, "ab", W, 1);
        assert_eq!(v, v_by_hand);
    }
}
