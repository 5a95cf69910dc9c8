//! Synthetic clip generation speed on one thread:
//! `cargo run --release -p amflow-video --example synthetic_bench -- [size] [frames] [clips]`.

use amflow_video::{CameraMotion, SyntheticMotionConfig, SyntheticMotionDataset, VideoDataset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(56);
    let frames: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let clips: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let ds = SyntheticMotionDataset::new(SyntheticMotionConfig {
        num_samples: clips,
        num_frames: frames,
        size,
        camera: CameraMotion {
            pan: 0.02,
            jitter: 0.005,
        },
        ..SyntheticMotionConfig::default()
    })?;
    let start = std::time::Instant::now();
    let mut sum = 0f64;
    for i in 0..ds.len() {
        sum += ds.get(i, 0)?.data[0] as f64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "synthetic {frames}x{size}x{size}: {clips} clips in {secs:.3}s = {:.0} clips/s (checksum {sum:.3})",
        clips as f64 / secs
    );
    Ok(())
}
