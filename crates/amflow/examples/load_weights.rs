//! Loads a `transformers` ViT (`model.safetensors` with its `config.json` beside it) onto the
//! CPU device and prints the load time and the process's peak resident memory (`VmHWM`), for
//! `docs/performance.md`, "Loading weights". Run with `--release`:
//!
//! ```sh
//! cargo run --release -p amflow --example load_weights -- /path/to/model.safetensors
//! ```

use std::path::PathBuf;
use std::time::Instant;

use amflow::backbone::{Vit, VitConfig};
use burn::prelude::*;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: load_weights MODEL.safetensors"),
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path.with_file_name("config.json")).expect("config.json beside"),
    )
    .expect("config.json parses");
    let arch = VitConfig::from_hf_config(&json).expect("a supported architecture");
    let device = Device::flex();
    let before = peak_rss_mib();
    let start = Instant::now();
    let (vit, report) = Vit::load_hf(&path, &arch, &device).expect("loads");
    let vit = vit.with_input_size(224, 224, &device).expect("resizes");
    let secs = start.elapsed().as_secs_f64();
    let file_mib = std::fs::metadata(&path).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0);
    println!(
        "file_mib={file_mib:.1} load_s={secs:.3} peak_rss_mib={:.1} rss_before_mib={before:.1} \
         tensors={}",
        peak_rss_mib(),
        report.applied
    );
    drop(vit);
}
