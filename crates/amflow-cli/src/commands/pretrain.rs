//! `amflow pretrain-image`: train a small ViT from scratch on single synthetic frames with
//! their appearance (shape) labels, and write it in the `transformers` DINOv2 layout. This is
//! the command that reproduces the embedded `synthetic-vit-s8` backbone.

use std::process::ExitCode;

use amflow_train::pretrain::{pretrain_image, PretrainConfig};
use amflow_train::trainer::{EpochRecord, Observer, StepInfo};
use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::PretrainImageArgs;

/// Runs `amflow pretrain-image`.
pub fn run(args: &PretrainImageArgs, device: &Device) -> Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            PretrainConfig::from_toml(&text)?
        }
        None => PretrainConfig::default(),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} {bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}",
        )
        .expect("a valid template"),
    );
    bar.set_prefix("pretrain");
    let mut observer = PretrainProgress { bar: &bar };
    let outcome = pretrain_image(&config, &args.out, device, &mut observer)?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&outcome_json(&outcome))?);
    tracing::info!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn outcome_json(o: &amflow_train::pretrain::PretrainOutcome) -> serde_json::Value {
    serde_json::json!({
        "val_top1": o.val_top1,
        "val_mean_class_accuracy": o.val_mean_class_accuracy,
        "steps": o.steps,
        "seconds": o.seconds,
    })
}

/// The progress bar over the run's steps, and one log line per epoch.
struct PretrainProgress<'a> {
    bar: &'a ProgressBar,
}

impl Observer for PretrainProgress<'_> {
    fn step(&mut self, info: &StepInfo) {
        self.bar.set_length(info.total_steps);
        self.bar.set_position(info.step);
        if let Some(loss) = info.loss {
            self.bar.set_message(format!("loss {loss:.4}"));
        }
    }

    fn epoch_end(&mut self, e: &EpochRecord) {
        self.bar.suspend(|| {
            tracing::info!(
                "epoch {}: train loss {:.4} top-1 {:.3} | val top-1 {:.3} (mean class {:.3}) | {:.1}s",
                e.epoch + 1,
                e.train_loss,
                e.train_top1,
                e.val_top1,
                e.val_mean_class_accuracy,
                e.seconds
            )
        });
    }
}
