//! Test helpers: the `ffmpeg`/`ffprobe` command-line tools as an independent reference
//! (tests only; the library never spawns them) and fixture encoding into temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Folder of Debian's opencv-doc sample videos.
pub const OPENCV_DATA: &str = "/usr/share/doc/opencv-doc/examples/data";

// Tests that need the ffmpeg tool, its encoders or opencv-doc's videos carry
// `#[cfg_attr(missing_..., ignore = "...")]`; the crate's build script sets those cfgs when the
// tool is missing outside CI, so `cargo test` lists such tests as ignored. A test that runs
// needs what it uses: the helpers below panic with the install hint when it is absent.

/// Path of an opencv-doc sample video; panics when it is not installed.
pub fn opencv_sample(name: &str) -> PathBuf {
    let p = Path::new(OPENCV_DATA).join(name);
    assert!(
        p.exists(),
        "{} is missing: install Debian's opencv-doc (scripts/setup.sh)",
        p.display()
    );
    p
}

/// Whether ffmpeg has an encoder of this name.
pub fn have_encoder(name: &str) -> bool {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("the ffmpeg tool is missing: install it (scripts/setup.sh)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w == name)
}

/// Panics unless ffmpeg has an encoder of this name.
pub fn require_encoder(name: &str) {
    assert!(
        have_encoder(name),
        "the ffmpeg tool has no {name} encoder: install Debian's ffmpeg (scripts/setup.sh)"
    );
}

/// Runs ffmpeg with `args`, panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg tool is missing: install it (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Frame `k` of `path` as RGB24 bytes decoded by the ffmpeg tool (bilinear scaler,
/// native size), with its width and height.
pub fn reference_frame(path: &Path, k: usize) -> Vec<u8> {
    reference_frame_filtered(path, k, "")
}

/// Like [`reference_frame`] with extra filters appended after the frame selection
/// (e.g. `",scale=128:96:flags=bilinear"`).
pub fn reference_frame_filtered(path: &Path, k: usize, extra_filter: &str) -> Vec<u8> {
    let filter = format!("select=eq(n\\,{k}){extra_filter}");
    ffmpeg(&[
        "-i",
        path.to_str().unwrap(),
        "-vf",
        &filter,
        "-vsync",
        "0",
        "-frames:v",
        "1",
        "-sws_flags",
        "bilinear",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ])
}

/// Frame count as ffprobe reports after decoding every frame.
pub fn ffprobe_count(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("the ffprobe tool is missing: install ffmpeg (scripts/setup.sh)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_end_matches(',')
        .parse()
        .expect("count")
}

/// A fixture codec/container combination encoded by the ffmpeg tool.
pub struct Fixture {
    pub name: &'static str,
    pub encoder: &'static str,
    pub ext: &'static str,
    pub extra: &'static [&'static str],
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "h264-mp4",
        encoder: "libx264",
        ext: "mp4",
        extra: &["-pix_fmt", "yuv420p", "-g", "12"],
    },
    Fixture {
        name: "vp9-webm",
        encoder: "libvpx-vp9",
        ext: "webm",
        extra: &[
            "-pix_fmt",
            "yuv420p",
            "-g",
            "12",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
    },
    Fixture {
        name: "mpeg4-avi",
        encoder: "mpeg4",
        ext: "avi",
        extra: &["-q:v", "3", "-g", "12"],
    },
    Fixture {
        name: "h264-mkv",
        encoder: "libx264",
        ext: "mkv",
        extra: &["-pix_fmt", "yuv420p", "-g", "12"],
    },
];

/// Encodes a 48-frame 96x64 test pattern (moving) with the fixture's codec into `dir`.
pub fn encode_fixture(dir: &Path, f: &Fixture) -> PathBuf {
    require_encoder(f.encoder);
    let out = dir.join(format!("{}.{}", f.name, f.ext));
    let mut args: Vec<&str> = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=96x64:rate=24:duration=2",
        "-c:v",
        f.encoder,
    ];
    args.extend_from_slice(f.extra);
    args.push(out.to_str().unwrap());
    ffmpeg(&args);
    out
}

/// Mean and max absolute difference of two byte buffers.
pub fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len());
    let mut sum = 0u64;
    let mut max = 0u8;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        sum += d as u64;
        max = max.max(d);
    }
    (sum as f64 / a.len() as f64, max)
}
