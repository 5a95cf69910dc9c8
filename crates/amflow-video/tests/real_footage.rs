//! Decoding real footage no one here made (Debian's opencv-doc sample videos) and
//! comparing against the ffmpeg tool's own decode of the same frames.

mod common;

use amflow_video::{count_frames, DecodeConfig, MediaKind, Resize, VideoReader};
use common::*;

fn check_frames_match_ffmpeg(name: &str, frames: &[usize]) {
    let path = opencv_sample(name);
    let mut reader = VideoReader::open(&path, &DecodeConfig::default()).unwrap();
    let got = reader.decode_frames(frames, Resize::None).unwrap();
    assert_eq!(got.frames.len(), frames.len());
    for (k, frame) in &got.frames {
        let reference = reference_frame(&path, *k);
        assert_eq!(reference.len(), frame.data.len(), "{name} frame {k} size");
        let (mean, max) = diff(&frame.data, &reference);
        eprintln!("{name} frame {k}: mean |diff| {mean:.3}, max {max}");
        assert!(
            mean < 1.0 && max <= 8,
            "{name} frame {k}: mean {mean}, max {max}"
        );
    }
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn vtest_avi_frames_match_ffmpeg_tool() {
    check_frames_match_ffmpeg("vtest.avi", &[0, 1, 150, 700]);
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn megamind_avi_frames_match_ffmpeg_tool() {
    check_frames_match_ffmpeg("Megamind.avi", &[0, 37, 269]);
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn tree_avi_frames_match_ffmpeg_tool() {
    check_frames_match_ffmpeg("tree.avi", &[0, 5, 60]);
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn frame_counts_match_ffprobe() {
    for name in ["vtest.avi", "Megamind.avi", "tree.avi"] {
        let path = opencv_sample(name);
        let ours = count_frames(&path, MediaKind::Video, &DecodeConfig::default()).unwrap();
        assert_eq!(ours, ffprobe_count(&path), "{name}");
    }
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn resize_on_the_fly_keeps_aspect_and_content() {
    let path = opencv_sample("vtest.avi");
    let mut reader = VideoReader::open(&path, &DecodeConfig::default()).unwrap();
    assert_eq!((reader.info().width, reader.info().height), (768, 576));
    assert_eq!(reader.info().header_frames, Some(795));
    let small = reader.decode_frames(&[10], Resize::ShortSide(96)).unwrap();
    let f = &small.frames[0].1;
    // A second request on the same reader numbers frames from 0 again.
    let again = reader
        .decode_frames(&[3, 10], Resize::ShortSide(96))
        .unwrap();
    assert_eq!(again.frames[1].1, *f);
    assert_eq!(again.frames[0].0, 3);
    assert_eq!((f.width, f.height), (128, 96));
    let reference = reference_frame_filtered(&path, 10, ",scale=128:96:flags=bilinear");
    let (mean, max) = diff(&reference, &f.data);
    assert!(mean < 1.0 && max <= 8, "mean diff {mean}, max {max}");
}
