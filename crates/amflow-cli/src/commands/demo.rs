//! `amflow demo`: the main job until training lands. Renders one synthetic motion clip per
//! motion class (amflow-video's generator), runs an AM Flow model on them, and prints per clip
//! the predicted class and, per block, how far the AM flow is from what identical frames give.
//!
//! With vanilla AM flow, two identical frames give `|L_t - L_{t+1}| = 0`, a uniform softmax and
//! column sums of exactly 1, so `mean |F - 1|` measures the motion the block's attention sees.
//! With aligned AM flow the statistic is `mean |F|`. The model is untrained unless a checkpoint
//! is given, so predictions are at chance; the flow columns are the point.

use std::process::ExitCode;

use amflow::checkpoint;
use amflow::flow::AmFlowMode;
use amflow::{AmFlowModel, HostTensor, ModelConfig, Preset};
use amflow_train::input::pixels_on;
use amflow_video::synthetic::{CameraMotion, SyntheticMotionConfig, SyntheticMotionDataset};
use amflow_video::VideoDataset;
use anyhow::{bail, Result};
use burn::prelude::*;

use super::model_source::ModelSource;
use crate::cli::DemoArgs;

fn build_model(args: &DemoArgs, device: &Device) -> Result<AmFlowModel> {
    match args
        .model
        .as_deref()
        .map(ModelSource::resolve)
        .transpose()?
    {
        Some(ModelSource::Checkpoint(..)) => {
            let path = std::path::Path::new(args.model.as_deref().unwrap_or_default());
            Ok(checkpoint::load(path, device)?.model)
        }
        Some(source) => Ok(AmFlowModel::new(&source.config(), device)?.0),
        None => {
            let mut config: ModelConfig = Preset::SyntheticSmall.config();
            if args.camera_motion {
                config.am_flow = config.am_flow.with_mode(AmFlowMode::Aligned);
            }
            Ok(AmFlowModel::new(&config, device)?.0)
        }
    }
}

/// Runs `amflow demo`.
pub fn run(args: &DemoArgs, device: &Device) -> Result<ExitCode> {
    let model = build_model(args, device)?;
    let config = model.config.clone();
    let [h, w] = config.image_size;
    if h != w {
        bail!("the synthetic clips are square; the model expects {h}x{w}");
    }
    let data_config = SyntheticMotionConfig {
        num_samples: 11,
        num_frames: config.num_frames,
        size: h,
        seed: args.seed,
        camera: if args.camera_motion {
            CameraMotion {
                pan: 0.03,
                jitter: 0.02,
            }
        } else {
            CameraMotion::default()
        },
        ..SyntheticMotionConfig::default()
    };
    let data = SyntheticMotionDataset::new(data_config)?;
    let names = data.class_names().to_vec();
    tracing::info!(
        "model: {} blocks, temporal {}, AM flow {:?}, TPM {:?}; backbone weights {} \
         (additions untrained: predictions are at chance)",
        config.backbone.arch.num_layers,
        config.temporal_blocks,
        config.am_flow.mode(),
        config.tpm.kind(),
        config.backbone.weights
    );
    let blocks = config.backbone.arch.num_layers;
    let flow_header: Vec<String> = (1..=blocks).map(|b| format!("flow_b{b}")).collect();
    println!(
        "{:<12} {:<12} {:>7}  {}",
        "clip",
        "predicted",
        "p",
        flow_header.join("  ")
    );
    for index in 0..data.len() {
        let clip = data.get(index, args.seed)?;
        let [t, c, ch, cw] = clip.shape;
        let input = pixels_on(clip.data, [1, t, c, ch, cw], &clip.norm, device)?;
        let out = model.forward_detailed(input, true)?;
        let probs = HostTensor::from_tensor(&burn::tensor::activation::softmax(out.logits, 1));
        let (best, p) =
            probs.data.iter().enumerate().fold(
                (0, f32::MIN),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            );
        let flows: Vec<String> = out
            .intermediates
            .expect("asked for intermediates")
            .blocks
            .iter()
            .map(|b| match &b.am_flow {
                None => format!("{:>7}", "-"),
                Some(f) => {
                    let f = HostTensor::from_tensor(f);
                    let offset = if config.am_flow.mode() == AmFlowMode::Vanilla {
                        1.0
                    } else {
                        0.0
                    };
                    let dev = f.data.iter().map(|v| (v - offset).abs()).sum::<f32>()
                        / f.data.len() as f32;
                    format!("{dev:>7.4}")
                }
            })
            .collect();
        let predicted = names.get(best).cloned().unwrap_or_else(|| best.to_string());
        println!(
            "{:<12} {:<12} {:>7.3}  {}",
            names[clip.label],
            predicted,
            p,
            flows.join("  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
