//! `amflow data check`: scan a dataset manifest in parallel before training and report every
//! missing or undecodable file with its reason, and the totals. Exit code 1 when any file is
//! unusable.

use std::process::ExitCode;

use amflow_video::dataset::ManifestSpec;
use amflow_video::{scan_manifest, ScanConfig, ScanDepth};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::DataCheckArgs;

/// Runs `amflow data check`.
pub fn check(args: &DataCheckArgs) -> Result<ExitCode> {
    let spec = ManifestSpec::from_path(&args.manifest)?;
    let manifest = spec.load()?;
    let config = ScanConfig {
        workers: args.workers,
        depth: if args.full {
            ScanDepth::Full
        } else {
            ScanDepth::FirstFrame
        },
        ..ScanConfig::default()
    };
    let bar = ProgressBar::new(manifest.entries.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}  {msg}")
            .expect("a valid progress template"),
    );
    let report = scan_manifest(&manifest, &config, &|p| {
        bar.set_position(p.done as u64);
        if p.problems > 0 {
            bar.set_message(format!("{} unusable", p.problems));
        }
    });
    bar.finish_and_clear();
    println!("{report}");
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
