//! Sets `missing_ffmpeg_tool` when the `ffmpeg` tool cannot be run, so that the CLI tests that
//! feed a live source through it are reported as `ignored` with the reason instead of passing
//! without running (the convention of `crates/amflow-video/build.rs`). Under CI (`CI` set and
//! not `false`/`0`) it is never set: a test whose tool is absent runs and fails. The binary
//! itself never uses this cfg.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(missing_ffmpeg_tool)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let found = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ci && !found {
        println!("cargo::rustc-cfg=missing_ffmpeg_tool");
        // Installing the tool changes /usr/bin: look again then.
        println!("cargo::rerun-if-changed=/usr/bin");
    }
}
