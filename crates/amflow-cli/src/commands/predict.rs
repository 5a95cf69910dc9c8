//! `amflow predict`: classify video files with a checkpoint; top-k labels with probabilities,
//! as text or one JSON object per video (`--json`). Clips are made as the checkpoint's input
//! contract says, and the softmax scores of its test views are averaged, exactly as the
//! training run's validation did. An unreadable video is reported on stderr and makes the exit
//! code non-zero, the other videos are still classified. `--timeline` classifies windows slid
//! over one video instead ([`super::timeline`]).

use std::process::ExitCode;

use amflow::{AmFlowModel, HostTensor};
use amflow_train::checkpoint;
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use super::video_input::{contract, read_views};
use crate::cli::PredictArgs;

/// The class probabilities of one video: the mean over its views of the softmax scores.
pub(super) fn scores(
    model: &AmFlowModel,
    views: &[HostTensor],
    device: &Device,
) -> Result<Vec<f32>> {
    let mut mean = vec![0f32; model.config.num_classes];
    for view in views {
        let logits = model.forward(view.to_tensor::<5>(device)?)?;
        let probs = HostTensor::from_tensor(&burn::tensor::activation::softmax(logits, 1));
        for (m, p) in mean.iter_mut().zip(&probs.data) {
            *m += p;
        }
    }
    for m in &mut mean {
        *m /= views.len() as f32;
    }
    Ok(mean)
}

/// Runs `amflow predict`.
pub fn run(args: &PredictArgs, device: &Device) -> Result<ExitCode> {
    let trained = checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let input = contract(&trained, args.input.as_deref(), &args.checkpoint)?;
    if args.timeline {
        let [video] = args.videos.as_slice() else {
            bail!("--timeline takes one video, {} given", args.videos.len());
        };
        super::timeline::run(args, &trained, &input, video, device)?;
        return Ok(ExitCode::SUCCESS);
    }
    let model = &trained.model;
    let mut failed = 0;
    for video in &args.videos {
        let views = match read_views(video, &model.config, &input, None) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        let probs = scores(model, &views, device)?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top: Vec<(&str, f32)> = order
            .iter()
            .take(args.top_k)
            .map(|&k| (trained.classes[k].as_str(), probs[k]))
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
