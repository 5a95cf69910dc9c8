//! `amflow flow`: the AM flow of one pair of consecutive frames, per block, reduced to RGB by a
//! PCA over its channels and drawn below the two frames (the paper's Figure 5). Blocks that
//! compute aligned AM flow show it; every other block shows vanilla AM flow computed from its
//! own attention logits. Patch tokens only (class and register tokens have no position).

use std::process::ExitCode;

use amflow::flow::vanilla_am_flow;
use amflow::{AmFlowModel, HostTensor, Preset};
use amflow_report::{compose_grid, pca_rgb, RgbImage};
use amflow_train::checkpoint::{self, InputContract, Trained};
use amflow_train::TrainConfig;
use amflow_video::transform::Normalization;
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use super::video_input::{contract, read_views};
use crate::cli::FlowArgs;

/// The model and how to make its clips: the checkpoint's, else the untrained
/// `synthetic-small` model with the embedded default run's input contract.
fn model_and_contract(args: &FlowArgs, device: &Device) -> Result<(AmFlowModel, InputContract)> {
    match &args.checkpoint {
        Some(p) => {
            let trained: Trained = checkpoint::load(p, device)
                .with_context(|| format!("loading checkpoint {}", p.display()))?;
            let input = contract(&trained, args.input.as_deref(), p)?;
            Ok((trained.model, input))
        }
        None => {
            let model = AmFlowModel::new(&Preset::SyntheticSmall.config(), device)?.0;
            let input = match &args.input {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    InputContract::from_toml(&text)?
                }
                None => InputContract::of_run(&TrainConfig::embedded_default().data, &model.config),
            };
            Ok((model, input))
        }
    }
}

fn frame_image(unit_clip: &HostTensor, t: usize) -> RgbImage {
    let (h, w) = (unit_clip.shape[3], unit_clip.shape[4]);
    let plane = h * w;
    let base = t * 3 * plane;
    let mut img = RgbImage::new(w, h);
    for p in 0..plane {
        for c in 0..3 {
            img.data[p * 3 + c] =
                (unit_clip.data[base + c * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    img
}

/// Runs `amflow flow`.
pub fn run(args: &FlowArgs, device: &Device) -> Result<ExitCode> {
    let (model, input) = model_and_contract(args, device)?;
    let config = &model.config;
    if config.num_frames < 2 {
        bail!(
            "AM flow needs at least two frames; the model takes {}",
            config.num_frames
        );
    }
    let t = args.frame.min(config.num_frames - 2);
    // The first test view, normalised for the model and as plain [0, 1] values for the picture.
    let first = |norm| -> Result<HostTensor> {
        read_views(&args.video, config, &input, norm)?
            .into_iter()
            .next()
            .context("the input contract makes no view")
    };
    let clip = first(None)?;
    let unit = first(Some(Normalization::Unit))?;
    let out = model.forward_detailed(clip.to_tensor::<5>(device)?, true)?;
    let arch = &config.backbone.arch;
    let (gh, gw) = (
        config.image_size[0] / arch.patch_size,
        config.image_size[1] / arch.patch_size,
    );
    let first_patch = 1 + arch.num_registers;
    let mut flows = Vec::new();
    let mut labels = Vec::new();
    for (l, block) in out
        .intermediates
        .expect("asked for intermediates")
        .blocks
        .iter()
        .enumerate()
    {
        let [b, tt, h, n, _] = block.attn_logits.dims();
        let (flow, kind): (Tensor<4>, &str) = match &block.am_flow {
            Some(f) if f.dims()[3] != h => (f.clone(), "aligned"),
            _ => {
                let logits: Tensor<4> = block.attn_logits.clone().reshape([b * tt, h, n, n]);
                (vanilla_am_flow(logits, b).reshape([b, tt, n, h]), "vanilla")
            }
        };
        let channels = flow.dims()[3];
        let pair: Tensor<2> = flow
            .narrow(1, t, 1)
            .narrow(2, first_patch, gh * gw)
            .reshape([gh * gw, channels]);
        let host = HostTensor::from_tensor(&pair);
        flows.push(pca_rgb(&host.data, gh, gw, channels)?);
        labels.push(format!("block {} {kind}", l + 1));
    }
    let frames = [frame_image(&unit, t), frame_image(&unit, t + 1)];
    let grid = compose_grid(&frames, &flows, &labels)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join(format!("am_flow_t{t}.png"));
    grid.save_png(&path)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
