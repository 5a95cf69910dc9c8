//! `amflow eval`: multi-view evaluation of a checkpoint on a training config's validation data
//! (softmax of the views averaged per sample): top-1, top-5, mean class accuracy, per-class
//! accuracy, the confusion matrix as CSV and PNG, and a JSON summary (also on stdout).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use amflow_train::checkpoint;
use amflow_train::config::DataConfig;
use amflow_train::trainer::{self, files, Silent};
use amflow_train::TrainConfig;
use anyhow::{Context, Result};
use burn::prelude::*;

use crate::cli::EvalArgs;

fn config_for(args: &EvalArgs) -> Result<TrainConfig> {
    if let Some(path) = &args.config {
        return Ok(TrainConfig::from_file(path, &args.overrides)?);
    }
    let beside: Option<PathBuf> = args.checkpoint.parent().map(|d| d.join(files::CONFIG));
    match beside.filter(|p| p.exists()) {
        Some(p) => {
            tracing::info!("validation data from {}", p.display());
            Ok(TrainConfig::from_file(&p, &args.overrides)?)
        }
        None => Ok(TrainConfig::from_toml(
            &TrainConfig::embedded_default().to_toml(),
            &args.overrides,
        )?),
    }
}

/// Runs `amflow eval`.
pub fn run(args: &EvalArgs, device: &Device) -> Result<ExitCode> {
    let trained = checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let mut config = config_for(args)?;
    // Validation clips are made as the model was validated in training, unless asked otherwise.
    if let (DataConfig::Files { val_clips, .. }, Some(input), false) =
        (&mut config.data, &trained.input, args.config_clips)
    {
        *val_clips = input.clips.clone();
    }
    let model = trained.model;
    let datasets = amflow_train::data::build(&config.data, &model.config)?;
    let classes = datasets.val.class_names().to_vec();
    // Labels index the checkpoint's classes: the data must name the same ones in its order.
    if trained.metadata.contains_key(checkpoint::CLASSES_KEY) {
        amflow_train::data::same_classes(&trained.classes, &classes)?;
    }
    let loader = amflow_train::data::loader(
        "eval",
        datasets.val,
        &config.loader,
        config.optim.batch_size,
        false,
        config.seed,
    )?;
    let eval = trainer::evaluate(&model, &loader, model.config.num_classes, &mut Silent)?;
    let summary = eval.summary();
    write_outputs(&args.out, &eval.confusion, &classes, &summary)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&trainer::EvalReport { summary, classes })?
    );
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(
    out: &Path,
    confusion: &[Vec<u64>],
    classes: &[String],
    summary: &amflow_train::metrics::Summary,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    amflow_report::write_confusion_csv(out.join("confusion.csv"), confusion, classes)?;
    amflow_report::save_confusion_png(
        out.join("confusion.png"),
        confusion,
        classes,
        "confusion (rows: true class)",
    )?;
    let mut per_class = String::from("class,accuracy,samples\n");
    for (k, name) in classes.iter().enumerate() {
        let n: u64 = confusion[k].iter().sum();
        let acc = summary.per_class[k]
            .map(|a| format!("{a:.6}"))
            .unwrap_or_default();
        per_class.push_str(&format!("\"{}\",{acc},{n}\n", name.replace('"', "\"\"")));
    }
    std::fs::write(out.join("per_class.csv"), per_class)
        .with_context(|| format!("writing {}", out.display()))?;
    let json = serde_json::to_string_pretty(&trainer::EvalReport {
        summary: summary.clone(),
        classes: classes.to_vec(),
    })?;
    std::fs::write(out.join("summary.json"), json)
        .with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(
        "top-1 {:.4}  top-5 {:.4}  mean class {:.4} on {} samples; outputs in {}",
        summary.top1,
        summary.top5,
        summary.mean_class_accuracy,
        summary.samples,
        out.display()
    );
    Ok(())
}
