//! `amflow data check`: scan a dataset manifest (or a prepared copy) in parallel before
//! training and report every missing or undecodable file with its reason, and the totals;
//! exit code 1 when any file is unusable. `amflow data prepare`: decode a manifest's videos
//! once into a prepared copy (progress on stderr, summary and bad inputs on stdout).

use std::process::ExitCode;

use amflow_video::dataset::ManifestSpec;
use amflow_video::{
    prepare as prepare_dataset, scan_manifest, scan_prepared, FrameCodec, PrepareConfig,
    PrepareSettings, PreparedStore, ScanConfig, ScanDepth, ShardPart,
};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{CodecArg, DataCheckArgs, DataPrepareArgs};

fn bar(len: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}  {{msg}}"
        ))
        .expect("a valid progress template"),
    );
    bar
}

/// Runs `amflow data check`.
pub fn check(args: &DataCheckArgs) -> Result<ExitCode> {
    let spec = ManifestSpec::from_path(&args.manifest)?;
    let config = ScanConfig {
        workers: args.workers,
        depth: if args.full {
            ScanDepth::Full
        } else {
            ScanDepth::FirstFrame
        },
        ..ScanConfig::default()
    };
    let store = match &spec {
        ManifestSpec::Prepared { dir } => Some(PreparedStore::open(dir)?),
        _ => None,
    };
    let manifest = match &store {
        Some(s) => s.manifest().clone(),
        None => spec.load()?,
    };
    let bar = bar(manifest.entries.len(), "files");
    let progress = |p: amflow_video::ScanProgress| {
        bar.set_position(p.done as u64);
        if p.problems > 0 {
            bar.set_message(format!("{} unusable", p.problems));
        }
    };
    let report = match &store {
        Some(s) => scan_prepared(s, &config, &progress),
        None => scan_manifest(&manifest, &config, &progress),
    };
    bar.finish_and_clear();
    println!("{report}");
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `amflow data prepare`.
pub fn prepare(args: &DataPrepareArgs) -> Result<ExitCode> {
    let spec = ManifestSpec::from_path(&args.manifest)?;
    let manifest = spec.load()?;
    let part = match &args.shard {
        Some(s) => s.parse::<ShardPart>()?,
        None => ShardPart::default(),
    };
    let config = PrepareConfig {
        settings: PrepareSettings {
            short_side: (args.short_side > 0).then_some(args.short_side),
            max_fps: args.max_fps,
            codec: match args.codec {
                CodecArg::Jpeg => FrameCodec::Jpeg {
                    qscale: args.qscale,
                },
                CodecArg::Raw => FrameCodec::Raw,
            },
            videos_per_shard: args.videos_per_shard,
            min_frames: args.min_frames,
            ..PrepareSettings::default()
        },
        workers: args.workers,
        part,
        max_shards: args.max_shards,
    };
    let bar = bar(0, "videos");
    let outcome = prepare_dataset(&manifest, &args.out, &config, &|p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if p.bad > 0 {
            bar.set_message(format!("{} left out", p.bad));
        }
    })
    .with_context(|| format!("preparing {}", args.out.display()))?;
    bar.finish_and_clear();
    let r = &outcome.report;
    for b in &r.bad {
        println!("{:<22} {}", b.kind, b.reason);
    }
    println!(
        "{}: {} of {} shards complete ({} written now, {} already there); {} videos \
         prepared, {} left out, {} frames, {:.1} MB",
        args.out.display(),
        r.shards_complete,
        r.shards_total,
        outcome.written,
        outcome.reused,
        r.prepared,
        r.bad.len(),
        r.frames,
        r.bytes as f64 / 1e6
    );
    if outcome.remaining > 0 {
        tracing::warn!(
            "{} shards of this part left for a later run (--max-shards)",
            outcome.remaining
        );
    } else if !r.shards_missing.is_empty() {
        tracing::info!(
            "{} shards are written by other parts (--shard)",
            r.shards_missing.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
