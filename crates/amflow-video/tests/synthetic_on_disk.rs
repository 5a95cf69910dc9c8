//! The synthetic data written as real video files through FFmpeg's encoders, read back
//! through the normal manifest + file-dataset path, must match the in-memory clips.

mod common;

use amflow_video::*;

fn roundtrip(codec: VideoCodec, container: Container, max_mean_diff: f64) {
    assert!(
        encoder_available(codec),
        "this FFmpeg has no {codec:?} encoder: install Debian's libavcodec (scripts/setup.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let ds = SyntheticMotionDataset::new(SyntheticMotionConfig {
        num_samples: 6,
        num_frames: 8,
        size: 56,
        noise: 0.0,
        ..SyntheticMotionConfig::default()
    })
    .unwrap();
    let cfg = EncodeConfig {
        codec,
        container,
        ..EncodeConfig::default()
    };
    let written = write_synthetic_dataset(&ds, dir.path(), &cfg).unwrap();
    let spec = ManifestSpec::PathLabel {
        list: dir.path().join("list.txt"),
        root: None,
        class_names: Some(dir.path().join("classes.txt")),
        media: MediaKind::Video,
    };
    let manifest = spec.load().unwrap();
    assert_eq!(manifest, written);
    for (i, e) in manifest.entries.iter().enumerate() {
        assert_eq!(
            count_frames(&e.path, MediaKind::Video, &DecodeConfig::default()).unwrap(),
            8
        );
        let mut r = VideoReader::open(&e.path, &DecodeConfig::default()).unwrap();
        let got = r
            .decode_frames(&(0..8).collect::<Vec<_>>(), Resize::None)
            .unwrap();
        let want = ds.render(i).unwrap();
        // 4:2:0 chroma subsampling alone costs about 11 levels on these small saturated
        // frames (measured with lossless H.264); another sample's frames are much further.
        let other = ds.render((i + 1) % 6).unwrap();
        assert_eq!(got.frames.len(), 8);
        for (k, ((_, g), w)) in got.frames.iter().zip(&want).enumerate() {
            let (mean, _) = common::diff(&g.data, &w.data);
            assert!(
                mean < max_mean_diff,
                "{codec:?} sample {i}: mean diff {mean}"
            );
            let (far, _) = common::diff(&g.data, &other[k].data);
            assert!(
                far > mean * 2.0,
                "{codec:?} sample {i}: other sample only {far} away"
            );
        }
        assert_eq!(e.label, ds.labels(i).unwrap().0);
    }
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn synthetic_mpeg4_avi_reads_back() {
    roundtrip(VideoCodec::Mpeg4, Container::Avi, 16.0);
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn synthetic_mpeg4_mp4_reads_back() {
    roundtrip(VideoCodec::Mpeg4, Container::Mp4, 16.0);
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn synthetic_h264_mkv_reads_back() {
    roundtrip(VideoCodec::H264, Container::Mkv, 16.0);
}

#[test]
fn odd_sizes_and_empty_clips_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.mp4");
    let e = write_video(
        &p,
        &[RgbFrame::filled(5, 4, [0, 0, 0])],
        &EncodeConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::Encode { .. }), "{e}");
    assert!(write_video(&p, &[], &EncodeConfig::default()).is_err());
}
