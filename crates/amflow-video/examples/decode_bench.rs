//! Decode + sample + resize throughput of amflow-video on one core, for the side-by-side
//! comparison in `bench/video/` (not a test). Usage:
//! `decode_bench SAMPLER ROUNDS FILE...` with SAMPLER `segment` (TSN, 8 segment centres)
//! or `dense` (8 frames, stride 8, centred); frames are resized to short side 128.
//! Prints one line: `amflow-video <sampler> clips=N seconds=S clips_per_s=R`.

use std::path::PathBuf;
use std::time::Instant;

use amflow_video::{
    read_clip_frames, ClipReadConfig, DecodeConfig, MediaKind, Resize, SampleMode, Sampler, SeedRng,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let sampler = match args.next().as_deref() {
        Some("dense") => Sampler::Dense {
            num_frames: 8,
            stride: 8,
        },
        _ => Sampler::Segment { num_segments: 8 },
    };
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let config = ClipReadConfig {
        sampler,
        resize: Resize::ShortSide(128),
        decode: DecodeConfig {
            threads: 1,
            ..DecodeConfig::default()
        },
        ..ClipReadConfig::default()
    };
    let mode = SampleMode::Test { view: 0, views: 1 };
    let start = Instant::now();
    let mut clips = 0usize;
    let mut checksum = 0u64;
    for _ in 0..rounds {
        for f in &files {
            let frames =
                read_clip_frames(f, MediaKind::Video, &config, mode, &mut SeedRng::new(0))?;
            checksum += frames
                .iter()
                .map(|fr| fr.data[fr.data.len() / 2] as u64)
                .sum::<u64>();
            clips += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let name = match sampler {
        Sampler::Segment { .. } => "segment",
        Sampler::Dense { .. } => "dense",
    };
    println!(
        "amflow-video {name} clips={clips} seconds={secs:.3} clips_per_s={:.2} checksum={checksum}",
        clips as f64 / secs
    );
    Ok(())
}
