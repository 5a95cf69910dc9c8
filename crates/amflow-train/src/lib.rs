//! Training and evaluation of AM Flow models.
//!
//! - [`config`]: the training config (TOML, any key overridable with `section.key=value`);
//! - [`optim`]: AdamW over the trainable parameters only, with weight-decay exclusions, global
//!   gradient-norm clipping and gradient accumulation; its state is saved by parameter name;
//! - [`schedule`]: linear warm-up then cosine decay, per optimizer step;
//! - [`step`]: the optimizer step both training loops share (accumulation, clipping, AdamW);
//! - [`mixing`]: Mixup and CutMix per clip, with their soft targets;
//! - [`loss`]: cross-entropy with label smoothing on the averaged logits (model spec, section 4);
//! - [`metrics`]: top-k, per-class and mean class accuracy, confusion matrix, multi-view
//!   averaging (the project's one home for them);
//! - [`data`]: datasets named by the config (synthetic motion data or a manifest);
//! - [`input`]: the loader's 8-bit batches as model input, normalised on the device;
//! - [`checkpoint`]: checkpoints with their input contract (class names, clip pipeline);
//! - [`plan`]: the dry run of `amflow train --plan` (data, model, FLOPs, memory estimate);
//! - [`trainer`]: the loop, validation every epoch, best and last checkpoints, exact resume.

pub mod ablation;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod input;
pub mod loss;
pub mod metrics;
pub mod mixing;
pub mod optim;
pub mod parallel;
pub mod plan;
pub mod pretrain;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use error::{Result, TrainError};
