//! Decode + sample + resize throughput of amflow-video on one core, for the side-by-side
//! comparison in `bench/video/` (not a test). Usage:
//! `decode_bench SAMPLER ROUNDS FILE...` with SAMPLER `segment` (TSN, 8 segment centres)
//! or `dense` (8 frames, stride 8, centred), optionally suffixed `-plain` to turn seeking
//! and frame skipping off; frames are resized to short side 128. Prints one line:
//! `amflow-video <sampler> clips=N cpu_seconds=S clips_per_cpu_s=R wall_seconds=W`.
//! CPU time (user + system, from /proc/self/stat) is what "per core" means here, and it
//! is robust to other load on the machine.

use std::path::PathBuf;
use std::time::Instant;

use amflow_video::{
    read_clip_frames, ClipReadConfig, DecodeConfig, MediaKind, Resize, SampleMode, Sampler,
    SplitMix64,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_default();
    let plain = arg.ends_with("-plain");
    let sampler = if arg.starts_with("dense") {
        Sampler::Dense {
            num_frames: 8,
            stride: 8,
        }
    } else {
        Sampler::Segment { num_segments: 8 }
    };
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let config = ClipReadConfig {
        sampler,
        resize: Resize::ShortSide(128),
        decode: DecodeConfig {
            threads: 1,
            seek: !plain,
            skip_unneeded: !plain,
            ..DecodeConfig::default()
        },
        ..ClipReadConfig::default()
    };
    let mode = SampleMode::Test { view: 0, views: 1 };
    let start = Instant::now();
    let cpu_start = cpu_seconds()?;
    let mut clips = 0usize;
    let mut checksum = 0u64;
    for _ in 0..rounds {
        for f in &files {
            let frames =
                read_clip_frames(f, MediaKind::Video, &config, mode, &mut SplitMix64::new(0))?;
            checksum += frames
                .iter()
                .map(|fr| fr.data[fr.data.len() / 2] as u64)
                .sum::<u64>();
            clips += 1;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_start;
    println!(
        "amflow-video {arg} clips={clips} cpu_seconds={cpu:.2} clips_per_cpu_s={:.2} wall_seconds={wall:.2} checksum={checksum}",
        clips as f64 / cpu
    );
    Ok(())
}

/// User + system CPU time of this process, in seconds (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn cpu_seconds() -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let utime: f64 = fields.get(11).ok_or("short stat")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("short stat")?.parse()?;
    Ok((utime + stime) / 100.0)
}
