//! `amflow ablate`: the paper's ablations in miniature ([`amflow_train::ablation`]). Trains
//! every variant × seed with the training command's progress bars and run directories, then
//! writes `results.json` (every run and the summaries), `results.md` (the table),
//! `curves.png` (validation top-1 and training loss per epoch, mean over seeds) and prints the
//! table on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use amflow_report::{Panel, Series};
use amflow_train::ablation::{
    self, AblationConfig, AblationObserver, AblationPreset, RunResult, Variant, VariantSummary,
};
use amflow_train::trainer::EpochRecord;
use amflow_train::TrainConfig;
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use crate::cli::AblateArgs;

struct CliAblation<'a> {
    device: &'a Device,
}

impl AblationObserver for CliAblation<'_> {
    fn run_start(&mut self, variant: &Variant, seed: u64, index: usize, total: usize) {
        tracing::info!(
            "run {}/{total}: {} (seed {seed}) - {}",
            index + 1,
            variant.name,
            variant.claim
        );
    }

    fn train(
        &mut self,
        config: &TrainConfig,
        run_dir: &Path,
        resume: bool,
    ) -> amflow_train::Result<Vec<EpochRecord>> {
        super::train::train_observed(config, run_dir, resume, std::slice::from_ref(self.device))
    }

    fn run_end(&mut self, r: &RunResult) {
        if let Some(last) = r.history.last() {
            tracing::info!(
                "{} seed {}: val top-1 {:.3}, mean class {:.3} ({:.0}s)",
                r.variant,
                r.seed,
                last.val_top1,
                last.val_mean_class_accuracy,
                r.seconds
            );
        }
    }
}

fn study(args: &AblateArgs) -> Result<(AblationConfig, PathBuf)> {
    let (mut config, default_out) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "custom".into());
            (
                AblationConfig::from_toml(&text)
                    .with_context(|| format!("ablation config {}", path.display()))?,
                stem,
            )
        }
        None => {
            let name = if args.quick { "quick" } else { &args.preset };
            let Some(preset) = AblationPreset::from_name(name) else {
                bail!("unknown ablation preset `{name}` (known: mini, quick)");
            };
            (preset.config()?, preset.name().to_string())
        }
    };
    if !args.overrides.is_empty() {
        config.base = TrainConfig::from_toml(&config.base.to_toml(), &args.overrides)?;
        config.validate()?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("ablation").join(default_out));
    Ok((config, out))
}

fn curves(results: &[RunResult], summaries: &[VariantSummary], path: &Path) -> Result<()> {
    let mean_loss = |name: &str| -> Vec<f64> {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.variant == name).collect();
        let epochs = runs.iter().map(|r| r.history.len()).min().unwrap_or(0);
        (0..epochs)
            .map(|e| runs.iter().map(|r| r.history[e].train_loss).sum::<f64>() / runs.len() as f64)
            .collect()
    };
    let points = |ys: &[f64]| -> Vec<(f64, f64)> {
        ys.iter()
            .enumerate()
            .map(|(e, &y)| ((e + 1) as f64, y))
            .collect()
    };
    let panels = [
        Panel {
            title: "validation top-1 (mean over seeds)".into(),
            x_label: "epoch".into(),
            y_label: "top-1".into(),
            series: summaries
                .iter()
                .map(|s| {
                    let ys: Vec<f64> = s.curve.iter().map(|m| m.mean).collect();
                    Series::new(s.name.clone(), points(&ys))
                })
                .collect(),
        },
        Panel {
            title: "training loss (mean over seeds)".into(),
            x_label: "epoch".into(),
            y_label: "cross-entropy".into(),
            series: summaries
                .iter()
                .map(|s| Series::new(s.name.clone(), points(&mean_loss(&s.name))))
                .collect(),
        },
    ];
    amflow_report::plot_panels(path, &panels, 2)?;
    Ok(())
}

/// Runs `amflow ablate`.
pub fn run(args: &AblateArgs, device: &Device) -> Result<ExitCode> {
    let started = Instant::now();
    let (config, out) = study(args)?;
    tracing::info!(
        "{} runs ({} variants x {} seeds) in {}",
        config.num_runs(),
        config.variants.len(),
        config.seeds.len(),
        out.display()
    );
    let results = ablation::run(&config, &out, &mut CliAblation { device })?;
    let summaries = ablation::summarise(&config, &results);
    let table = ablation::markdown_table(&summaries);
    let json = serde_json::json!({ "runs": results, "summaries": summaries });
    let write = |name: &str, text: String| -> Result<()> {
        let path = out.join(name);
        amflow::fs_util::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    };
    write("results.json", serde_json::to_string_pretty(&json)?)?;
    write("results.md", table.clone())?;
    curves(&results, &summaries, &out.join("curves.png"))?;
    print!("{table}");
    tracing::info!(
        "done in {:.0}s; results in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
