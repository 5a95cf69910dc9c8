//! Finds the external tools and files that some integration tests need (the `ffmpeg` tool with
//! the libx264, libx265, libvpx-vp9 and mpeg4 encoders, Debian's opencv-doc sample videos) and sets a
//! cfg for each one that is missing, so that those tests are reported as `ignored` with the
//! reason by `cargo test` instead of passing without running. Under CI (`CI` set and not
//! `false`/`0`) nothing is ever marked missing: a test whose tool is absent runs and fails.
//! The library itself never uses these cfgs.

use std::path::Path;
use std::process::Command;

const OPENCV_DATA: &str = "/usr/share/doc/opencv-doc/examples/data";
const ENCODERS: [&str; 4] = ["libx264", "libx265", "libvpx-vp9", "mpeg4"];

fn main() {
    for cfg in [
        "missing_ffmpeg_tool",
        "missing_test_encoders",
        "missing_opencv_samples",
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if ci {
        return;
    }

    let encoders = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let ffprobe = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    match encoders {
        Some(out) if ffprobe => {
            let list = String::from_utf8_lossy(&out.stdout);
            let words: Vec<&str> = list.split_whitespace().collect();
            if !ENCODERS.iter().all(|e| words.contains(e)) {
                println!("cargo::rustc-cfg=missing_test_encoders");
            }
        }
        _ => {
            println!("cargo::rustc-cfg=missing_ffmpeg_tool");
            println!("cargo::rustc-cfg=missing_test_encoders");
            // Installing the tool changes /usr/bin: look again then.
            println!("cargo::rerun-if-changed=/usr/bin");
        }
    }
    if Path::new(OPENCV_DATA).join("vtest.avi").exists() {
        println!("cargo::rerun-if-changed={OPENCV_DATA}");
    } else {
        println!("cargo::rustc-cfg=missing_opencv_samples");
        println!("cargo::rerun-if-changed=/usr/share/doc");
    }
}
