//! Skipping work must never change a sampled frame: with `skip_unneeded` (per-packet
//! discarding of non-reference frames that are not wanted) and with seeking (look-ahead
//! keyframe jumps by default, demuxer seeks with a low threshold), the frames
//! of every sampler must be bit-identical to a decode of every frame. Inputs: H.264 with
//! x264's default B-frames and B-pyramid (long GOP) in mp4 and mkv, and with open GOPs,
//! HEVC as x265 makes it by default (open GOPs), VP9 with invisible
//! alt-ref frames (good quality, lag) and realtime VP9 in webm, all encoded here with the
//! ffmpeg tool, and opencv-doc's real videos (MPEG-4 ASP with B-frames, MS-MPEG4,
//! Cinepak in AVI).

mod common;

use std::path::PathBuf;

use amflow_video::{
    sample_indices, DecodeConfig, Resize, SampleMode, Sampler, ShortVideoRule, SplitMix64,
    VideoReader,
};
use common::*;

struct Input {
    path: PathBuf,
    /// opencv-doc's real (long or large) files: fewer index sets.
    real: bool,
    /// Whether the codec has discardable frames, so skipping must save work.
    must_skip: bool,
}

fn encode(dir: &std::path::Path, name: &str, encoder: &str, extra: &[&str]) -> PathBuf {
    require_encoder(encoder);
    let out = dir.join(name);
    let mut args: Vec<&str> = vec![
        "-f",
        "lavfi",
        "-i",
        // Moving pattern plus temporal noise: x264 mixes B-frame runs of different
        // lengths, like real footage.
        "testsrc2=size=128x96:rate=25:duration=12,noise=alls=12:allf=t",
        "-c:v",
        encoder,
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(extra);
    args.push(out.to_str().unwrap());
    ffmpeg(&args);
    out
}

/// The index sets to compare: test views of both samplers, training draws, neighbours.
fn index_sets(n: usize) -> Vec<Vec<usize>> {
    let mut sets = Vec::new();
    let samplers = [
        Sampler::Segment { num_segments: 8 },
        Sampler::Segment { num_segments: 16 },
        Sampler::Dense {
            num_frames: 8,
            stride: 8,
        },
        Sampler::Dense {
            num_frames: 16,
            stride: 2,
        },
    ];
    for sampler in &samplers {
        for mode in [
            SampleMode::Test { view: 0, views: 1 },
            SampleMode::Test { view: 0, views: 3 },
            SampleMode::Test { view: 2, views: 3 },
        ] {
            let mut rng = SplitMix64::new(0);
            sets.push(sample_indices(sampler, n, mode, ShortVideoRule::Stretch, &mut rng).unwrap());
        }
        for seed in 0..4 {
            let mut rng = SplitMix64::new(seed);
            sets.push(
                sample_indices(
                    sampler,
                    n,
                    SampleMode::Train,
                    ShortVideoRule::Stretch,
                    &mut rng,
                )
                .unwrap(),
            );
        }
    }
    // Every frame of a stretch (consecutive B-frames wanted and not), and the last frame.
    sets.push((n / 3..n / 3 + 7).collect());
    sets.push(vec![1, n / 2, n - 1]);
    sets
}

#[test]
#[cfg_attr(
    any(missing_test_encoders, missing_opencv_samples),
    ignore = "needs the ffmpeg tool with its encoders and opencv-doc's videos (scripts/setup.sh)"
)]
fn skipping_and_seeking_keep_sampled_frames_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    let made = [
        encode(dir.path(), "x264-default.mp4", "libx264", &[]),
        encode(dir.path(), "x264-default.mkv", "libx264", &[]),
        // Open GOPs: keyframes (recovery points) with leading B-frames that refer to
        // the previous GOP, so a jump must not return those.
        encode(
            dir.path(),
            "x264-opengop.mp4",
            "libx264",
            &["-g", "50", "-x264-params", "open-gop=1"],
        ),
        // HEVC as x265 makes it by default: open GOPs (CRA keyframes), B-frames.
        encode(
            dir.path(),
            "x265-default.mp4",
            "libx265",
            &["-g", "50", "-x265-params", "log-level=error"],
        ),
        encode(
            dir.path(),
            "vp9-altref.webm",
            "libvpx-vp9",
            &[
                "-b:v",
                "300k",
                "-auto-alt-ref",
                "1",
                "-lag-in-frames",
                "25",
                "-cpu-used",
                "4",
            ],
        ),
        encode(
            dir.path(),
            "vp9-realtime.webm",
            "libvpx-vp9",
            &["-deadline", "realtime", "-cpu-used", "8", "-g", "60"],
        ),
    ];
    for path in made {
        let h264 = path.to_string_lossy().contains("x26");
        inputs.push(Input {
            path,
            real: false,
            must_skip: h264,
        });
    }
    for name in ["Megamind.avi", "vtest.avi", "tree.avi"] {
        inputs.push(Input {
            path: opencv_sample(name),
            real: true,
            // MPEG-4 part 2 with B-frames (AVI timestamps: the reorder-depth rule).
            must_skip: name == "Megamind.avi",
        });
    }
    let plain = DecodeConfig {
        seek: false,
        skip_unneeded: false,
        ..DecodeConfig::default()
    };
    let variants = [
        (
            "skip",
            DecodeConfig {
                seek: false,
                ..DecodeConfig::default()
            },
        ),
        ("default", DecodeConfig::default()),
        (
            "demuxer-seek",
            DecodeConfig {
                seek_threshold: 20,
                ..DecodeConfig::default()
            },
        ),
    ];
    for input in &inputs {
        let started = std::time::Instant::now();
        let path = &input.path;
        let n = count_with(path, &plain);
        let (mut output_plain, mut output_skip, mut seeks, mut restarts) = (0usize, 0, 0, 0);
        // The real AVIs are long or large: every third index set keeps the test short.
        let sets = index_sets(n);
        let step = if input.real { 3 } else { 1 };
        for want in sets.into_iter().step_by(step) {
            let base = VideoReader::open(path, &plain)
                .unwrap()
                .decode_frames(&want, Resize::ShortSide(48))
                .unwrap();
            let mut uniq = want.clone();
            uniq.sort_unstable();
            uniq.dedup();
            assert_eq!(base.frames.len(), uniq.len(), "{}", path.display());
            for (name, cfg) in &variants {
                let got = VideoReader::open(path, cfg)
                    .unwrap()
                    .decode_frames(&want, Resize::ShortSide(48))
                    .unwrap();
                let what = format!("{name} {} {want:?}", path.display());
                assert_eq!(got.frames.len(), base.frames.len(), "{what}");
                for ((ia, fa), (ib, fb)) in got.frames.iter().zip(&base.frames) {
                    assert_eq!(ia, ib, "{what}");
                    assert!(fa == fb, "{what}: frame {ia} differs");
                }
                // A blind demuxer seek may land on an open-GOP recovery point, which the
                // reader detects and answers by decoding again from the start without
                // demuxer seeks; the look-ahead only jumps to clean keyframes.
                let open_gop = path.to_string_lossy().contains("opengop")
                    || path.to_string_lossy().contains("x265");
                assert!(
                    !got.restarted || (*name == "demuxer-seek" && open_gop),
                    "{what}: the fast pass lost track of frame indices"
                );
                if got.restarted && got.decoded > 100 {
                    // The second try keeps skipping (only demuxer seeks are dropped).
                    assert!(
                        got.frames_output < got.decoded,
                        "{what}: the retry decoded every frame"
                    );
                }
                if *name == "skip" {
                    output_plain += base.frames_output;
                    output_skip += got.frames_output;
                }
                if *name == "default" {
                    seeks += got.seeks;
                }
                restarts += usize::from(got.restarted);
            }
        }
        eprintln!(
            "{}: {n} frames; frames output over all index sets: {output_plain} plain, \
             {output_skip} with skipping; {seeks} look-ahead jumps by default, {restarts} restarts ({:.1?})",
            path.display(),
            started.elapsed()
        );
        if path.to_string_lossy().contains("vp9-realtime") {
            // Keyframes every 60 frames: the look-ahead must jump to them.
            assert!(seeks > 0, "{}: no keyframe jump", path.display());
        }
        if input.must_skip {
            assert!(
                (output_skip as f64) < 0.8 * output_plain as f64,
                "{}: skipping saved too little ({output_skip} of {output_plain} frames)",
                path.display()
            );
        }
    }
}

fn count_with(path: &std::path::Path, cfg: &DecodeConfig) -> usize {
    VideoReader::open(path, cfg)
        .unwrap()
        .decode_frames(&[usize::MAX], Resize::None)
        .unwrap()
        .decoded
}
