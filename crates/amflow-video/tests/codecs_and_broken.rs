//! Files the test set-up encodes with the ffmpeg tool in each major codec/container
//! (H.264 mp4, VP9 webm, MPEG-4 avi, H.264 mkv), and broken variants of them
//! (truncated, zero-byte, random bytes, audio-only, missing): the good ones must decode
//! to the ffmpeg tool's frames, the broken ones must fail with the right error kind.

mod common;

use std::path::Path;

use amflow_video::{
    count_frames, read_clip_frames, ClipReadConfig, DataError, DecodeConfig, MediaKind, Resize,
    SampleMode, Sampler, SplitMix64, VideoReader,
};
use common::*;

fn read(path: &Path) -> Result<Vec<amflow_video::RgbFrame>, DataError> {
    let cfg = ClipReadConfig {
        sampler: Sampler::Segment { num_segments: 8 },
        resize: Resize::None,
        ..ClipReadConfig::default()
    };
    read_clip_frames(
        path,
        MediaKind::Video,
        &cfg,
        SampleMode::Test { view: 0, views: 1 },
        &mut SplitMix64::new(1),
    )
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn every_codec_decodes_like_the_ffmpeg_tool() {
    let dir = tempfile::tempdir().unwrap();
    for f in FIXTURES {
        let path = encode_fixture(dir.path(), f);
        let n = count_frames(&path, MediaKind::Video, &DecodeConfig::default()).unwrap();
        assert_eq!(n, 48, "{}", f.name);
        assert_eq!(n, ffprobe_count(&path), "{}", f.name);
        let mut reader = VideoReader::open(&path, &DecodeConfig::default()).unwrap();
        let got = reader.decode_frames(&[3, 30, 47], Resize::None).unwrap();
        assert_eq!(got.frames.len(), 3);
        for (k, frame) in &got.frames {
            let (mean, max) = diff(&frame.data, &reference_frame(&path, *k));
            assert!(
                mean < 1.0 && max <= 8,
                "{} frame {k}: mean {mean} max {max}",
                f.name
            );
        }
        // A sampled clip: 8 segment centres of 48 frames.
        let clip = read(&path).unwrap();
        assert_eq!(clip.len(), 8);
        assert_eq!((clip[0].width, clip[0].height), (96, 64));
        let mut reader = VideoReader::open(&path, &DecodeConfig::default()).unwrap();
        let third = reader.decode_frames(&[3], Resize::None).unwrap().frames[0]
            .1
            .clone();
        assert_eq!(
            clip[0], third,
            "{}: first segment centre is frame 3",
            f.name
        );
    }
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn broken_files_fail_with_their_kind_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let missing = d.join("missing.mp4");
    assert!(matches!(read(&missing), Err(DataError::Missing { .. })));

    let empty = d.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read(&empty), Err(DataError::Empty { .. })));

    let random = d.join("random.mp4");
    let mut rng = SplitMix64::new(5);
    let bytes: Vec<u8> = (0..50_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&random, &bytes).unwrap();
    let e = read(&random).unwrap_err();
    assert!(
        matches!(e, DataError::Open { .. } | DataError::NoVideoStream { .. }),
        "{e}"
    );

    let audio = d.join("audio.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:a",
        "aac",
        audio.to_str().unwrap(),
    ]);
    assert!(matches!(read(&audio), Err(DataError::NoVideoStream { .. })));

    for f in FIXTURES {
        let path = encode_fixture(d, f);
        let full = std::fs::read(&path).unwrap();
        // Cut at 40%: every container must report an error, never a silent short clip.
        let cut = d.join(format!("cut-{}.{}", f.name, f.ext));
        std::fs::write(&cut, &full[..full.len() * 2 / 5]).unwrap();
        match read(&cut) {
            Err(e) => {
                assert!(e.is_bad_input(), "{}: {e}", f.name);
                eprintln!("{}: truncated -> {} ({e})", f.name, e.kind_name());
            }
            Ok(_) => panic!("{}: truncated file decoded without error", f.name),
        }
        // Header only.
        let head = d.join(format!("head-{}.{}", f.name, f.ext));
        std::fs::write(&head, &full[..full.len().min(200)]).unwrap();
        let e = read(&head).unwrap_err();
        assert!(e.is_bad_input(), "{}: {e}", f.name);
    }
}

#[test]
#[cfg_attr(
    missing_opencv_samples,
    ignore = "needs Debian's opencv-doc sample videos (scripts/setup.sh)"
)]
fn buggy_real_file_is_reported_or_decoded_consistently() {
    // opencv-doc ships "Megamind_bugy.avi", a real damaged copy of Megamind.avi.
    let path = opencv_sample("Megamind_bugy.avi");
    match read(&path) {
        Ok(frames) => assert_eq!(frames.len(), 8),
        Err(e) => {
            assert!(e.is_bad_input(), "{e}");
            eprintln!("Megamind_bugy.avi: {e}");
        }
    }
}

#[test]
#[cfg_attr(
    any(missing_test_encoders, missing_opencv_samples),
    ignore = "needs the ffmpeg tool with its encoders and opencv-doc's videos (scripts/setup.sh)"
)]
fn seeking_returns_the_same_frames_as_decoding_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for f in FIXTURES {
        // Longer fixtures (10 s, GOP 12 plus B-frames for H.264) so that seeks happen.
        require_encoder(f.encoder);
        let out = dir.path().join(format!("long-{}.{}", f.name, f.ext));
        let mut args: Vec<&str> = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=25:duration=10",
            "-c:v",
            f.encoder,
        ];
        args.extend_from_slice(f.extra);
        args.push(out.to_str().unwrap());
        ffmpeg(&args);
        files.push(out);
    }
    for name in ["vtest.avi", "Megamind.avi"] {
        files.push(opencv_sample(name));
    }
    let wanted = [3, 100, 101, 180, 230, 249];
    let plain = DecodeConfig {
        seek: false,
        skip_unneeded: false,
        ..DecodeConfig::default()
    };
    let variants = [
        (
            "seek",
            DecodeConfig {
                seek: true,
                seek_threshold: 10,
                skip_unneeded: false,
                ..DecodeConfig::default()
            },
        ),
        (
            "skip",
            DecodeConfig {
                seek: false,
                skip_unneeded: true,
                ..DecodeConfig::default()
            },
        ),
        ("default", DecodeConfig::default()),
    ];
    for path in files {
        let b = VideoReader::open(&path, &plain)
            .unwrap()
            .decode_frames(&wanted, Resize::ShortSide(32))
            .unwrap();
        assert_eq!(b.seeks, 0);
        assert_eq!(b.frames_output, 250.min(b.decoded));
        for (name, cfg) in &variants {
            let a = VideoReader::open(&path, cfg)
                .unwrap()
                .decode_frames(&wanted, Resize::ShortSide(32))
                .unwrap();
            assert_eq!(a.frames.len(), wanted.len(), "{name} {}", path.display());
            eprintln!(
                "{name} {}: {} seeks, {} of {} frames output",
                path.display(),
                a.seeks,
                a.frames_output,
                a.decoded
            );
            let long = path.to_string_lossy().contains("long-");
            if long && *name == "seek" {
                assert!(a.seeks > 0, "{}: no seek happened", path.display());
            }
            if long && path.to_string_lossy().contains("h264") && *name == "skip" {
                assert!(
                    a.frames_output < a.decoded,
                    "{}: no frame was skipped",
                    path.display()
                );
            }
            for ((ia, fa), (ib, fb)) in a.frames.iter().zip(&b.frames) {
                assert_eq!(ia, ib);
                assert!(fa == fb, "{name} {}: frame {ia} differs", path.display());
            }
        }
    }
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn bytes_corrupted_mid_stream_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for f in FIXTURES {
        let path = encode_fixture(dir.path(), f);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        let mut rng = SplitMix64::new(11);
        // Overwrite 64 bytes at each of 8 places in the middle half of the file.
        for _ in 0..8 {
            let at = n / 4 + rng.below(n / 2 - 64);
            for b in &mut bytes[at..at + 64] {
                *b = rng.next_u64() as u8;
            }
        }
        let bad = dir.path().join(format!("corrupt-{}.{}", f.name, f.ext));
        std::fs::write(&bad, &bytes).unwrap();
        let strict = ClipReadConfig {
            sampler: Sampler::Segment { num_segments: 8 },
            resize: Resize::None,
            ..ClipReadConfig::default()
        };
        match read_clip_frames(
            &bad,
            MediaKind::Video,
            &strict,
            SampleMode::Test { view: 0, views: 1 },
            &mut SplitMix64::new(1),
        ) {
            Ok(_) => panic!("{}: corrupt file decoded without error", f.name),
            Err(e) => {
                assert!(e.is_bad_input(), "{}: {e}", f.name);
                eprintln!("{}: {} ({e})", f.name, e.kind_name());
            }
        }
    }
}
