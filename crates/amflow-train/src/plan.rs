//! `amflow train --plan`: a dry run. It validates the config and the data (sample counts and
//! classes of each split, a few clips decoded), builds the model (its weights loaded, as
//! training would), and reports the trainable and frozen parameters, FLOPs per clip, steps per
//! epoch, and an estimate of the memory one device needs for the chosen micro-batch; then it
//! stops without training.
//!
//! The memory estimate ([`MemoryEstimate`]) counts, in bytes:
//! - weights: the frozen backbone (f32, or bf16 matrices with `backbone.precision = "bf16"`)
//!   and the trainable additions (f32);
//! - optimizer: a gradient and AdamW's two moments per trainable value (f32);
//! - activations kept for the backward pass, per frame and block: the gradient of every
//!   adapter flows back through the blocks above it, so each block keeps what the backward
//!   pass of a pre-norm ViT block needs: the two LayerNorm inputs, query, key, value, the
//!   attention output and the two MLP tensors (`8 N D + 2 N M` values for `N` tokens, width
//!   `D`, MLP width `M`) and the attention probabilities (`h N N`), plus the adapters'
//!   bottlenecks and the AM flow of temporal blocks. Batch clips times frames times blocks.
//!
//! What it leaves out (the host's own code and buffers, the loader's prefetched batches, the
//! allocator's slack) is why it is checked against measured peaks (`docs/training.md`).

use serde::Serialize;

use amflow::info::{compute_per_clip, param_counts};
use amflow::{AmFlowModel, ModelConfig};
use amflow_video::VideoDataset;
use burn::prelude::*;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// One split of the data as the plan found it.
#[derive(Debug, Clone, Serialize)]
pub struct SplitPlan {
    /// Clips the loader yields per epoch (a test split's views each count).
    pub clips: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Clips decoded as a probe.
    pub probed: usize,
    /// Errors of the probed clips (`path: reason`).
    pub probe_errors: Vec<String>,
}

/// Bytes one device needs, by part.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct MemoryEstimate {
    /// Frozen and trainable weights.
    pub weights: u64,
    /// Gradients and AdamW moments of the trainable values.
    pub optimizer: u64,
    /// Activations kept for the backward pass of one micro-batch.
    pub activations: u64,
}

impl MemoryEstimate {
    /// The sum.
    pub fn total(&self) -> u64 {
        self.weights + self.optimizer + self.activations
    }
}

/// What `--plan` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The model as it would train (class count filled in).
    #[serde(skip)]
    pub model: ModelConfig,
    /// Training split.
    pub train: SplitPlan,
    /// Validation split.
    pub val: SplitPlan,
    /// Trainable values.
    pub trainable_params: usize,
    /// Frozen values.
    pub frozen_params: usize,
    /// FLOPs of one clip's forward pass (2 per multiply-add).
    pub flops_per_clip: u64,
    /// Clips per micro-batch.
    pub batch_size: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Epochs.
    pub epochs: u64,
    /// Memory per device for one micro-batch.
    pub memory: MemoryEstimate,
}

/// The memory one device needs to train `model` on micro-batches of `batch` clips.
pub fn estimate_memory(model: &ModelConfig, batch: usize) -> Result<MemoryEstimate> {
    let counts = param_counts(model)?;
    let arch = &model.backbone.arch;
    let trainable = counts.trainable() as u64;
    let frozen = if counts.backbone_trains {
        0
    } else {
        counts.backbone as u64
    };
    let frozen_bytes = if model.backbone.precision.is_f32() {
        4
    } else {
        2
    };
    let weights = frozen * frozen_bytes + trainable * 4;
    let optimizer = trainable * 4 * 3;
    let n = model.tokens_per_frame() as u64;
    let (d, m, h) = (
        arch.hidden_size as u64,
        arch.mlp_dim as u64,
        arch.num_heads as u64,
    );
    let r = model.adapter.bottleneck as u64;
    let temporal = model.temporal_mask()?;
    let mut per_frame = 0u64;
    for &is_temporal in &temporal {
        let block = 8 * n * d + 2 * n * m + h * n * n;
        let adapters = 4 * n * r;
        let flow = if is_temporal {
            2 * n * h + 2 * n * r
        } else {
            0
        };
        per_frame += block + adapters + flow;
    }
    let frames = (batch * model.num_frames) as u64;
    Ok(MemoryEstimate {
        weights,
        optimizer,
        activations: per_frame * frames * 4,
    })
}

fn split_plan(dataset: &dyn VideoDataset, probe: usize) -> SplitPlan {
    let clips = dataset.len();
    let mut probe_errors = Vec::new();
    let step = (clips / probe.max(1)).max(1);
    let mut probed = 0;
    for index in (0..clips).step_by(step).take(probe) {
        probed += 1;
        if let Err(e) = dataset.get(index, 0) {
            probe_errors.push(e.to_string());
        }
    }
    SplitPlan {
        clips,
        classes: dataset.class_names().to_vec(),
        probed,
        probe_errors,
    }
}

/// Makes the plan of `config` on `device`: loads the manifests, decodes `probe` clips of each
/// split, builds the model (loading its weights).
pub fn plan(config: &TrainConfig, device: &Device, probe: usize) -> Result<Plan> {
    let mut model = config.model.resolve(None)?;
    if model.num_classes == 0 {
        model.num_classes = crate::data::train_class_count(&config.data)?;
    }
    let datasets = crate::data::build(&config.data, &model)?;
    let train = split_plan(datasets.train.as_ref(), probe);
    let val = split_plan(datasets.val.as_ref(), probe);
    let (built, report) = AmFlowModel::new(&model, device)?;
    if let Some(report) = report {
        tracing::info!("backbone weights: {report}");
    }
    let model = built.config.clone();
    let counts = param_counts(&model)?;
    let o = &config.optim;
    if o.batch_size == 0 {
        return Err(TrainError::Config("batch_size must be at least 1".into()));
    }
    let batches = train.clips.div_ceil(o.batch_size) as u64;
    Ok(Plan {
        trainable_params: counts.trainable(),
        frozen_params: if counts.backbone_trains {
            0
        } else {
            counts.backbone
        },
        flops_per_clip: compute_per_clip(&model)?.flops(),
        batch_size: o.batch_size,
        steps_per_epoch: batches.div_ceil(o.accumulate.max(1) as u64),
        epochs: o.epochs,
        memory: estimate_memory(&model, o.batch_size)?,
        model,
        train,
        val,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amflow::Preset;

    #[test]
    fn the_memory_estimate_counts_each_part_by_hand() {
        let model = Preset::Tiny.config();
        let e = estimate_memory(&model, 3).unwrap();
        let counts = param_counts(&model).unwrap();
        assert_eq!(
            e.weights,
            4 * (counts.backbone as u64 + counts.trainable() as u64)
        );
        assert_eq!(e.optimizer, 12 * counts.trainable() as u64);
        // Tiny: 16x16 at patch 4 -> N = 17, D = 32, M = 64, h = 4, r = 8, 2 temporal blocks,
        // 4 frames.
        let (n, d, m, h, r) = (17u64, 32u64, 64u64, 4u64, 8u64);
        let per_block = 8 * n * d + 2 * n * m + h * n * n + 4 * n * r + 2 * n * h + 2 * n * r;
        assert_eq!(e.activations, 2 * per_block * 3 * 4 * 4);
        // Linear in the batch, bf16 halves the frozen weights.
        let e6 = estimate_memory(&model, 6).unwrap();
        assert_eq!(e6.activations, 2 * e.activations);
        let mut bf16 = model.clone();
        bf16.backbone.precision = amflow::backbone::BackbonePrecision::Bf16;
        let b = estimate_memory(&bf16, 3).unwrap();
        assert_eq!(e.weights - b.weights, 2 * counts.backbone as u64);
    }
}
