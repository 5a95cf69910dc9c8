//! Image pretraining of the project's small ViT (see `amflow_train::pretrain`): trains it on
//! the synthetic shapes on the CPU and writes a `transformers`-layout model directory.
//!
//! ```text
//! cargo run --release -p amflow-train --example pretrain_image -- OUT_DIR [CONFIG.toml]
//! ```
//!
//! Without a config file the defaults of `PretrainConfig` are used. The shipped
//! `crates/amflow/assets/synthetic-vit-s8` was made with the `pretrain.toml` it contains.

use std::path::PathBuf;
use std::process::ExitCode;

use amflow_train::pretrain::{pretrain_image, PretrainConfig};
use amflow_train::trainer::{EpochRecord, Observer, StepInfo};
use burn::prelude::*;

fn run() -> Result<(), String> {
    let mut args = std::env::args_os().skip(1);
    let out = args
        .next()
        .map(PathBuf::from)
        .ok_or("usage: pretrain_image OUT_DIR [CONFIG.toml]")?;
    let config = match args.next() {
        Some(path) => {
            let path = PathBuf::from(path);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            PretrainConfig::from_toml(&text).map_err(|e| e.to_string())?
        }
        None => PretrainConfig::default(),
    };
    let device = Device::flex();
    let started = std::time::Instant::now();
    let mut observer = Printer { started };
    let outcome =
        pretrain_image(&config, &out, &device, &mut observer).map_err(|e| e.to_string())?;
    println!(
        "validation accuracy {:.4} (mean class {:.4}), {} steps, {:.1} s; written to {}",
        outcome.val_top1,
        outcome.val_mean_class_accuracy,
        outcome.steps,
        outcome.seconds,
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints every tenth step and each epoch to stderr.
struct Printer {
    started: std::time::Instant,
}

impl Observer for Printer {
    fn step(&mut self, i: &StepInfo) {
        if i.step.is_multiple_of(10) || i.step == i.total_steps {
            eprintln!(
                "step {}/{}  loss {:.4}  lr {:.2e}  {:.0} s",
                i.step,
                i.total_steps,
                i.loss.unwrap_or(f64::NAN),
                i.lr,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn epoch_end(&mut self, e: &EpochRecord) {
        eprintln!(
            "epoch {}: train loss {:.4}, train top-1 {:.3}, val top-1 {:.3} (mean class {:.3}), {:.1} s",
            e.epoch, e.train_loss, e.train_top1, e.val_top1, e.val_mean_class_accuracy, e.seconds
        );
    }
}
