//! Writes a contact sheet of synthetic motion clips (one row per class, one column per
//! frame) as a binary PPM image: `cargo run -p amflow-video --example synthetic_preview -- out.ppm [size] [pan]`.

use amflow_video::{CameraMotion, SyntheticMotionConfig, SyntheticMotionDataset, VideoDataset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "synthetic.ppm".into());
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(56);
    let pan: f32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.0);
    let config = SyntheticMotionConfig {
        num_samples: 11,
        size,
        camera: CameraMotion {
            pan,
            jitter: pan / 3.0,
        },
        ..SyntheticMotionConfig::default()
    };
    let ds = SyntheticMotionDataset::new(config)?;
    let t = ds.config().num_frames;
    let (w, h) = (t * size, ds.len() * size);
    let mut img = vec![0u8; w * h * 3];
    for i in 0..ds.len() {
        for (k, f) in ds.render(i)?.iter().enumerate() {
            for y in 0..size {
                let dst = ((i * size + y) * w + k * size) * 3;
                img[dst..dst + size * 3].copy_from_slice(&f.data[y * size * 3..(y + 1) * size * 3]);
            }
        }
        eprintln!("row {i}: {}", ds.class_names()[ds.labels(i)?.0]);
    }
    let mut bytes = format!("P6\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(&img);
    std::fs::write(&out, bytes)?;
    Ok(())
}
