//! Timelines read from a real encoded file ([`amflow_video::timeline::read_windows`]): one
//! straight decode, windows timed by the frame rate, clips made as the contract says, a video
//! shorter than a window as one window, an empty or unreadable file as an error.

use amflow_video::timeline::{read_windows, Span, WindowClips};
use amflow_video::*;

/// `n` frames of 32x32 whose grey level rises with the frame index (8 levels per frame,
/// so the codec's loss cannot confuse neighbours).
fn ramp(n: usize) -> Vec<RgbFrame> {
    (0..n)
        .map(|i| {
            let v = (8 * i).min(255) as u8;
            RgbFrame::filled(32, 32, [v, v, v])
        })
        .collect()
}

fn contract() -> FileDatasetConfig {
    FileDatasetConfig {
        read: ClipReadConfig {
            sampler: Sampler::Segment { num_segments: 2 },
            resize: Resize::ShortSide(16),
            ..ClipReadConfig::default()
        },
        transform: TransformConfig {
            stages: vec![Stage::CenterCrop { size: 16 }],
            normalization: Normalization::Custom {
                mean: [0.0; 3],
                std: [1.0; 3],
            },
        },
        split: Split::Test,
        temporal_views: 1,
        ..FileDatasetConfig::default()
    }
}

fn collect(path: &std::path::Path, window: &str, stride: &str) -> Result<Vec<WindowClips>> {
    let mut out = Vec::new();
    read_windows(
        path,
        window.parse()?,
        stride.parse()?,
        &contract(),
        &mut |w| {
            out.push(w);
            Ok(())
        },
    )?;
    Ok(out)
}

#[test]
fn windows_are_timed_and_sampled_from_one_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.mp4");
    let config = EncodeConfig {
        fps: 10,
        ..EncodeConfig::default()
    };
    write_video(&path, &ramp(30), &config).unwrap();

    // 1 s windows (10 frames) every 0.5 s over 3 s: starts 0, 0.5, ..., 2.0.
    let windows = collect(&path, "1s", "0.5s").unwrap();
    assert_eq!(windows.len(), 5);
    for (k, w) in windows.iter().enumerate() {
        assert_eq!(
            (w.index, w.start_frame, w.end_frame),
            (k, 5 * k, 5 * k + 10)
        );
        assert!((w.start_s - 0.5 * k as f64).abs() < 1e-9);
        assert!((w.end_s - w.start_s - 1.0).abs() < 1e-9);
        assert_eq!(w.clips.len(), 1);
        let clip = &w.clips[0];
        assert_eq!(clip.shape, [2, 3, 16, 16]);
        // Segment centres of a 10-frame window: frames start + 2 and start + 7.
        let plane = 3 * 16 * 16;
        for (t, offset) in [2, 7].into_iter().enumerate() {
            let grey = clip.data[t * plane] as f32;
            let want = 8.0 * (w.start_frame + offset) as f32;
            assert!(
                (grey - want).abs() < 3.5,
                "window {k} frame {t}: {grey} vs {want}"
            );
        }
    }

    // Frames as units; the summary counts what was decoded.
    let mut n = 0;
    let summary = read_windows(
        &path,
        Span::Frames(12),
        Span::Frames(12),
        &contract(),
        &mut |_| {
            n += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!((summary.frames, summary.windows, n), (30, 2, 2));
    assert!((summary.fps - 10.0).abs() < 1e-6);
}

#[test]
fn a_video_shorter_than_a_window_is_one_window_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.mp4");
    let config = EncodeConfig {
        fps: 10,
        ..EncodeConfig::default()
    };
    write_video(&path, &ramp(6), &config).unwrap();
    let windows = collect(&path, "2s", "1s").unwrap();
    assert_eq!(windows.len(), 1);
    assert_eq!((windows[0].start_frame, windows[0].end_frame), (0, 6));
    assert!((windows[0].end_s - 0.6).abs() < 1e-9);

    let e = collect(&dir.path().join("missing.mp4"), "1s", "1s").unwrap_err();
    assert!(e.to_string().contains("missing.mp4"), "{e}");
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video at all, just some bytes").unwrap();
    assert!(collect(&junk, "1s", "1s").is_err());
    // A sink error ends the decode and is returned.
    let e = read_windows(
        &path,
        Span::Frames(2),
        Span::Frames(2),
        &contract(),
        &mut |_| Err(DataError::Config("stop here".into())),
    )
    .unwrap_err();
    assert!(e.to_string().contains("stop here"), "{e}");
}

/// A consumer slower than the stride gets the latest windows in order; the ones it missed are
/// counted as dropped, and the decode is never held up.
#[test]
fn live_windows_keep_the_latest_and_count_the_dropped() {
    use amflow_video::live::LiveWindows;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.mp4");
    let config = EncodeConfig {
        fps: 10,
        ..EncodeConfig::default()
    };
    write_video(&path, &ramp(30), &config).unwrap();
    let live = LiveWindows::start(
        path.to_str().unwrap(),
        Span::Frames(4),
        Span::Frames(2),
        &contract(),
        std::time::Duration::from_secs(10),
    );
    let mut taken = Vec::new();
    let mut dropped = 0;
    while let Some(w) = live.next(&|| false).unwrap() {
        taken.push(w.clips.index);
        dropped = w.dropped;
        assert_eq!(w.clips.clips[0].shape, [2, 3, 16, 16]);
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    assert!(taken.windows(2).all(|p| p[0] < p[1]), "{taken:?}");
    // 14 windows in all (starts 0, 2, ..., 26): each was taken or dropped.
    assert!(!taken.is_empty());
    assert_eq!(taken.len() + dropped, 14, "{taken:?}, {dropped} dropped");
    assert_eq!(live.frames(), 30);

    let missing = LiveWindows::start(
        "/nonexistent/x.mp4",
        Span::Frames(4),
        Span::Frames(2),
        &contract(),
        std::time::Duration::from_secs(10),
    );
    let e = missing.next(&|| false).unwrap_err();
    assert!(e.to_string().contains("x.mp4"), "{e}");
}
