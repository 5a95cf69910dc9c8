//! `amflow pretrain-image`: train a small ViT from scratch on single synthetic frames with
//! their appearance (shape) labels, and write it in the `transformers` DINOv2 layout. This is
//! the command that reproduces the embedded `synthetic-vit-s8` backbone.

use std::process::ExitCode;

use amflow_train::pretrain::{pretrain_image, PretrainConfig, PretrainEvent};
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
    let mut observer = |event: &PretrainEvent| match event {
        PretrainEvent::Step {
            step,
            total_steps,
            loss,
            ..
        } => {
            bar.set_length(*total_steps);
            bar.set_position(*step);
            bar.set_message(format!("loss {loss:.4}"));
        }
        PretrainEvent::Epoch(e) => {
            bar.suspend(|| {
                tracing::info!(
                    "epoch {}: train loss {:.4} accuracy {:.3} | val accuracy {:.3} (mean class {:.3}) | {:.1}s",
                    e.epoch + 1,
                    e.train_loss,
                    e.train_accuracy,
                    e.val_accuracy,
                    e.val_mean_class_accuracy,
                    e.seconds
                )
            });
        }
        #[allow(unreachable_patterns)]
        _ => {}
    };
    let outcome = pretrain_image(&config, &args.out, device, &mut observer)?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&outcome_json(&outcome))?);
    tracing::info!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn outcome_json(o: &amflow_train::pretrain::PretrainOutcome) -> serde_json::Value {
    serde_json::json!({
        "val_accuracy": o.val_accuracy,
        "val_mean_class_accuracy": o.val_mean_class_accuracy,
        "steps": o.steps,
        "seconds": o.seconds,
    })
}
