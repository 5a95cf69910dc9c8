//! Loader throughput on stored videos versus a prepared copy of them, for `bench/prepared/`
//! (not a test). Usage:
//! - `loader_bench prepare LIST OUT CODEC` writes a prepared copy of the `path label` list
//!   `LIST` into `OUT` (CODEC `jpeg:Q` for JPEG at quantiser Q, or `raw`) on 2 workers and
//!   prints its size and the CPU time it took;
//! - `loader_bench read MANIFEST SAMPLER WORKERS ROUNDS` runs `ROUNDS` epochs of the
//!   [`Loader`] (batches of 4, training draws) over `MANIFEST` (a list, or a prepared
//!   folder) with SAMPLER `segment` (TSN, 8) or `dense` (8 x stride 8): frames decoded at
//!   short side 256, centre-cropped to 224x224, normalised `f32`. Prints
//!   `clips=N cpu_seconds=S clips_per_cpu_s=R wall_seconds=W clips_per_s=X`.
//!
//! CPU time (user + system of the process, /proc/self/stat) is what "per core" means
//! here; it is robust to other load on the machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use amflow_video::dataset::{FileDatasetConfig, FileVideoDataset};
use amflow_video::{
    prepare, ClipReadConfig, FrameCodec, Loader, LoaderConfig, ManifestSpec, Normalization,
    PrepareConfig, PrepareSettings, Resize, Sampler, Stage, TransformConfig,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("prepare") if args.len() == 4 => prepare_copy(&args[1], &args[2], &args[3]),
        Some("read") if args.len() == 5 => {
            read(&args[1], &args[2], args[3].parse()?, args[4].parse()?)
        }
        _ => Err(
            "usage: loader_bench prepare LIST OUT CODEC | read MANIFEST SAMPLER WORKERS ROUNDS"
                .into(),
        ),
    }
}

fn prepare_copy(list: &str, out: &str, codec: &str) -> Res<()> {
    let codec = match codec.split_once(':') {
        Some(("jpeg", q)) => FrameCodec::Jpeg { qscale: q.parse()? },
        _ if codec == "raw" => FrameCodec::Raw,
        _ => return Err(format!("unknown codec {codec}").into()),
    };
    let manifest = ManifestSpec::from_path(Path::new(list))?.load()?;
    let config = PrepareConfig {
        settings: PrepareSettings {
            codec,
            videos_per_shard: 4,
            ..PrepareSettings::default()
        },
        workers: 2,
        ..PrepareConfig::default()
    };
    let (start, cpu0) = (Instant::now(), cpu_seconds()?);
    let outcome = prepare(&manifest, Path::new(out), &config, &|_| {})?;
    let source: u64 = manifest
        .entries
        .iter()
        .map(|e| std::fs::metadata(&e.path).map_or(0, |m| m.len()))
        .sum();
    let r = &outcome.report;
    println!(
        "prepare {codec:?} videos={} bytes={} source_bytes={source} ratio={:.2} bytes_per_video={} cpu_seconds={:.2} wall_seconds={:.2}",
        r.prepared,
        r.bytes,
        r.bytes as f64 / source as f64,
        r.bytes / r.prepared.max(1) as u64,
        cpu_seconds()? - cpu0,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read(manifest: &str, sampler: &str, workers: usize, rounds: u64) -> Res<()> {
    let sampler = match sampler {
        "dense" => Sampler::Dense {
            num_frames: 8,
            stride: 8,
        },
        _ => Sampler::Segment { num_segments: 8 },
    };
    let spec = ManifestSpec::from_path(&PathBuf::from(manifest))?;
    let config = FileDatasetConfig {
        read: ClipReadConfig {
            sampler,
            resize: Resize::ShortSide(256),
            ..ClipReadConfig::default()
        },
        transform: TransformConfig {
            stages: vec![Stage::CenterCrop { size: 224 }],
            normalization: Normalization::ImageNet,
        },
        ..FileDatasetConfig::default()
    };
    let ds = Arc::new(FileVideoDataset::from_spec(&spec, config)?);
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 4,
            workers,
            ..LoaderConfig::default()
        },
    )?;
    let (start, cpu0) = (Instant::now(), cpu_seconds()?);
    let mut clips = 0usize;
    for epoch in 0..rounds {
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            assert_eq!(batch.shape[1..], [8, 3, 224, 224]);
            clips += batch.len();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu0;
    println!(
        "clips={clips} cpu_seconds={cpu:.2} clips_per_cpu_s={:.2} wall_seconds={wall:.2} clips_per_s={:.2}",
        clips as f64 / cpu,
        clips as f64 / wall
    );
    Ok(())
}

/// User + system CPU time of this process, in seconds (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn cpu_seconds() -> Res<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or("short stat")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("short stat")?.parse()?;
    Ok((utime + stime) / 100.0)
}
