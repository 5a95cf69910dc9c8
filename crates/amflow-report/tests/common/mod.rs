//! Test helpers: decode PNG files with the `png` crate's decoder.

#![allow(dead_code)]

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

/// Number of pixels exactly equal to `c`.
pub fn count_color(data: &[u8], c: [u8; 3]) -> usize {
    data.chunks_exact(3).filter(|p| *p == c).count()
}
