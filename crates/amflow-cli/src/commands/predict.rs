//! `amflow predict`: classify video files with a checkpoint; top-k labels with probabilities,
//! as text or one JSON object per video (`--json`). An unreadable video is reported on stderr
//! and makes the exit code non-zero, the other videos are still classified.

use std::process::ExitCode;

use amflow::{checkpoint, HostTensor};
use amflow_train::trainer::checkpoint_classes;
use anyhow::{Context, Result};
use burn::prelude::*;

use super::video_input::{normalization_for, read_clip};
use crate::cli::PredictArgs;

/// Runs `amflow predict`.
pub fn run(args: &PredictArgs, device: &Device) -> Result<ExitCode> {
    let loaded = checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let model = loaded.model;
    let classes = checkpoint_classes(&loaded.metadata).unwrap_or_else(|| {
        (0..model.config.num_classes)
            .map(|k| k.to_string())
            .collect()
    });
    let norm = normalization_for(&model.config);
    let mut failed = 0;
    for video in &args.videos {
        let clip = match read_clip(video, &model.config, norm) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        let logits = model.forward(clip.to_tensor::<5>(device)?)?;
        let probs = HostTensor::from_tensor(&burn::tensor::activation::softmax(logits, 1));
        let mut order: Vec<usize> = (0..probs.data.len()).collect();
        order.sort_by(|&a, &b| probs.data[b].total_cmp(&probs.data[a]));
        let top: Vec<(String, f32)> = order
            .iter()
            .take(args.top_k)
            .map(|&k| {
                (
                    classes.get(k).cloned().unwrap_or_else(|| k.to_string()),
                    probs.data[k],
                )
            })
            .collect();
        if args.json {
            let items: Vec<serde_json::Value> = top
                .iter()
                .map(|(label, p)| serde_json::json!({ "label": label, "probability": p }))
                .collect();
            println!(
                "{}",
                serde_json::json!({ "video": video.display().to_string(), "top": items })
            );
        } else {
            let items: Vec<String> = top.iter().map(|(l, p)| format!("{l} {p:.3}")).collect();
            println!("{}\t{}", video.display(), items.join("\t"));
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
