//! Writing RGB frames as real video files through FFmpeg's encoder libraries
//! (libavcodec + libavformat muxers; MPEG-4 part 2 is always in FFmpeg, H.264 needs
//! libx264), and [`write_synthetic_dataset`], which stores the synthetic motion data as
//! a video folder with a `path label` list so it can be read back like any dataset.
//! The encode loop follows FFmpeg's documented send_frame/receive_packet API.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ffmpeg_next as ff;
use serde::{Deserialize, Serialize};

use crate::dataset::{Manifest, ManifestEntry, VideoDataset};
use crate::decode::init;
use crate::error::{DataError, Result};
use crate::frame::RgbFrame;
use crate::source::MediaKind;
use crate::synthetic::SyntheticMotionDataset;

/// Video codec of written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoCodec {
    /// MPEG-4 part 2 (FFmpeg's native encoder: always available).
    #[default]
    Mpeg4,
    /// H.264 through libx264 (only where FFmpeg was built with it).
    H264,
}

/// Container of written files (chosen by extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    /// `.mp4`
    #[default]
    Mp4,
    /// `.avi`
    Avi,
    /// `.mkv`
    Mkv,
}

impl Container {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Avi => "avi",
            Container::Mkv => "mkv",
        }
    }
}

/// Encoder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Codec.
    pub codec: VideoCodec,
    /// Container.
    pub container: Container,
    /// Frames per second written in the file.
    pub fps: u32,
    /// Bits per pixel per frame for MPEG-4 (bit rate = bpp x W x H x fps).
    pub mpeg4_bits_per_pixel: f32,
    /// x264 constant rate factor (0 = lossless, 18 = visually lossless).
    pub h264_crf: u32,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            codec: VideoCodec::Mpeg4,
            container: Container::Mp4,
            fps: 25,
            mpeg4_bits_per_pixel: 2.0,
            h264_crf: 18,
        }
    }
}

/// Whether FFmpeg's libraries here can encode `codec`.
pub fn encoder_available(codec: VideoCodec) -> bool {
    init();
    find_encoder(codec).is_some()
}

fn find_encoder(codec: VideoCodec) -> Option<ff::Codec> {
    match codec {
        VideoCodec::Mpeg4 => ff::encoder::find(ff::codec::Id::MPEG4),
        VideoCodec::H264 => ff::encoder::find_by_name("libx264"),
    }
}

/// Encodes `frames` (all the same size, even width and height) into `path`.
///
/// # Errors
/// [`DataError::Encode`] when the encoder is unavailable, the frames are empty, differ
/// in size or have odd sides, or FFmpeg fails to write.
pub fn write_video(path: &Path, frames: &[RgbFrame], config: &EncodeConfig) -> Result<()> {
    init();
    let fail = |reason: String| DataError::Encode {
        path: path.to_path_buf(),
        reason,
    };
    let ffe = |what: &'static str| {
        move |e: ff::Error| DataError::Encode {
            path: path.to_path_buf(),
            reason: format!("{what}: {e}"),
        }
    };
    let first = frames.first().ok_or_else(|| fail("no frames".into()))?;
    let (w, h) = (first.width, first.height);
    if w % 2 == 1 || h % 2 == 1 || w == 0 || h == 0 {
        return Err(fail(format!(
            "frame size {w}x{h} must be even (4:2:0 chroma)"
        )));
    }
    if let Some(f) = frames.iter().find(|f| f.width != w || f.height != h) {
        return Err(fail(format!(
            "frame size changes from {w}x{h} to {}x{}",
            f.width, f.height
        )));
    }
    let codec = find_encoder(config.codec)
        .ok_or_else(|| fail(format!("no {:?} encoder in this FFmpeg", config.codec)))?;
    let fps = config.fps.max(1) as i32;
    let mut octx = ff::format::output(path).map_err(ffe("cannot create output"))?;
    let global_header = octx
        .format()
        .flags()
        .contains(ff::format::Flags::GLOBAL_HEADER);
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(ffe("cannot create encoder"))?;
    enc.set_width(w as u32);
    enc.set_height(h as u32);
    enc.set_format(ff::format::Pixel::YUV420P);
    enc.set_time_base(ff::Rational(1, fps));
    enc.set_frame_rate(Some(ff::Rational(fps, 1)));
    enc.set_gop(12);
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = ff::Dictionary::new();
    match config.codec {
        VideoCodec::Mpeg4 => {
            let rate =
                (config.mpeg4_bits_per_pixel.max(0.01) * (w * h) as f32 * fps as f32) as usize;
            enc.set_bit_rate(rate);
        }
        VideoCodec::H264 => {
            opts.set("crf", &config.h264_crf.to_string());
            opts.set("preset", "veryfast");
        }
    }
    let mut encoder = enc.open_with(opts).map_err(ffe("cannot open encoder"))?;
    {
        let mut ost = octx.add_stream(codec).map_err(ffe("cannot add stream"))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(ff::Rational(1, fps));
    }
    octx.write_header().map_err(ffe("cannot write header"))?;
    let ost_tb = octx
        .stream(0)
        .map(|s| s.time_base())
        .ok_or_else(|| fail("stream vanished".into()))?;
    let mut scaler = ff::software::scaling::Context::get(
        ff::format::Pixel::RGB24,
        w as u32,
        h as u32,
        ff::format::Pixel::YUV420P,
        w as u32,
        h as u32,
        ff::software::scaling::Flags::BILINEAR,
    )
    .map_err(ffe("cannot create colour converter"))?;
    let mut rgb = ff::frame::Video::new(ff::format::Pixel::RGB24, w as u32, h as u32);
    let mut packet = ff::Packet::empty();
    let mut drain =
        |encoder: &mut ff::encoder::Video, octx: &mut ff::format::context::Output| -> Result<()> {
            while encoder.receive_packet(&mut packet).is_ok() {
                packet.set_stream(0);
                // One frame per packet; without a duration muxers drop the last frame
                // from the edit list (mp4) or the duration (mkv).
                if packet.duration() <= 0 {
                    packet.set_duration(1);
                }
                packet.rescale_ts(ff::Rational(1, fps), ost_tb);
                packet
                    .write_interleaved(octx)
                    .map_err(ffe("cannot write packet"))?;
            }
            Ok(())
        };
    for (i, f) in frames.iter().enumerate() {
        let stride = rgb.stride(0);
        let plane = rgb.data_mut(0);
        for row in 0..h {
            plane[row * stride..row * stride + w * 3]
                .copy_from_slice(&f.data[row * w * 3..(row + 1) * w * 3]);
        }
        let mut yuv = ff::frame::Video::empty();
        scaler
            .run(&rgb, &mut yuv)
            .map_err(ffe("colour conversion failed"))?;
        yuv.set_pts(Some(i as i64));
        encoder
            .send_frame(&yuv)
            .map_err(ffe("encoder rejected a frame"))?;
        drain(&mut encoder, &mut octx)?;
    }
    encoder.send_eof().map_err(ffe("cannot flush encoder"))?;
    drain(&mut encoder, &mut octx)?;
    octx.write_trailer().map_err(ffe("cannot write trailer"))?;
    Ok(())
}

/// Renders every clip of `dataset` and writes it to `dir/videos/<index:06>.<ext>`, plus
/// `dir/list.txt` (`path label`, readable with
/// [`ManifestSpec::PathLabel`](crate::ManifestSpec::PathLabel)), `dir/classes.txt` and
/// `dir/appearance.txt` (`path shape_label`). Returns the manifest of what was written.
///
/// # Errors
/// [`DataError::Io`] when the folder cannot be written, [`DataError::Encode`] from
/// [`write_video`].
pub fn write_synthetic_dataset(
    dataset: &SyntheticMotionDataset,
    dir: &Path,
    config: &EncodeConfig,
) -> Result<Manifest> {
    let io = |path: PathBuf| move |source| DataError::Io { path, source };
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).map_err(io(videos.clone()))?;
    let mut list = String::new();
    let mut appearance = String::new();
    let mut entries = Vec::with_capacity(dataset.len());
    for i in 0..dataset.len() {
        let rel = format!("videos/{i:06}.{}", config.container.extension());
        let path = dir.join(&rel);
        write_video(&path, &dataset.render(i)?, config)?;
        let (label, shape) = dataset.labels(i)?;
        // Writing into a String cannot fail.
        let _ = writeln!(list, "{rel} {label}");
        let _ = writeln!(appearance, "{rel} {shape}");
        entries.push(ManifestEntry {
            path,
            label,
            media: MediaKind::Video,
        });
    }
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(p.clone()))
    };
    write("list.txt", &list)?;
    write("appearance.txt", &appearance)?;
    let mut classes = dataset.class_names().join("\n");
    classes.push('\n');
    write("classes.txt", &classes)?;
    Ok(Manifest {
        entries,
        class_names: dataset.class_names().to_vec(),
    })
}
