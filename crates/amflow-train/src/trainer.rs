//! The training loop (model spec, section 5: only the additions train), validation with
//! multi-view averaging of softmax scores, and the run directory.
//!
//! A run directory holds `config.toml` (the resolved config), `state.safetensors` (everything a
//! resume needs: trainable tensors `model.*`, optimizer moments `optim.*`, the position in the
//! schedule and the metrics history, written atomically), `last.safetensors` and
//! `best.safetensors` (ordinary checkpoints) and `metrics.jsonl` (one line per epoch). The data
//! order and augmentation are functions of `(seed, epoch, index)` and the model's numerics are
//! deterministic on CPU, so a killed run resumed from its state ends with the same weights as
//! an uninterrupted one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use amflow::checkpoint;
use amflow::{AmFlowModel, HostTensor, ModelConfig, TensorFile};
use amflow_video::Loader;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{SelectBy, TrainConfig};
use crate::error::{Result, TrainError};
use crate::metrics::{Evaluation, Summary};
use crate::optim::{AdamW, Gradients};
use crate::parallel::{forward_backward, PassSettings};
use crate::schedule::WarmupCosine;

/// File names inside a run directory.
pub mod files {
    /// The resolved training config.
    pub const CONFIG: &str = "config.toml";
    /// Resume state.
    pub const STATE: &str = "state.safetensors";
    /// Checkpoint after the latest epoch (or step checkpoint).
    pub const LAST: &str = "last.safetensors";
    /// Checkpoint with the best validation metric.
    pub const BEST: &str = "best.safetensors";
    /// One JSON object per epoch.
    pub const METRICS: &str = "metrics.jsonl";
}

/// What happened in one optimizer step.
#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Optimizer steps taken so far (after this one).
    pub step: u64,
    /// Batches of this epoch done.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// Mean loss of the step's micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// One epoch's record (a line of `metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Optimizer steps at the end of the epoch.
    pub step: u64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training top-1 accuracy (on the augmented clips, during the epoch).
    pub train_top1: f64,
    /// Validation top-1.
    pub val_top1: f64,
    /// Validation top-5.
    pub val_top5: f64,
    /// Validation mean class accuracy.
    pub val_mean_class_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Clips skipped as unusable in the epoch.
    pub skipped: usize,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
}

/// Receives progress; the CLI draws progress bars and writes TensorBoard files from it.
pub trait Observer {
    /// An epoch starts with `batches` batches.
    fn epoch_start(&mut self, _epoch: u64, _batches: usize) {}
    /// One optimizer step was taken.
    fn step(&mut self, _info: &StepInfo) {}
    /// Validation starts with `batches` batches.
    fn eval_start(&mut self, _batches: usize) {}
    /// One validation batch was evaluated.
    fn eval_batch(&mut self, _done: usize) {}
    /// An epoch ended.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    /// Asked after every optimizer step: `true` stops training there. The state after that
    /// step and the `last` checkpoint are saved first, so `--resume` continues exactly
    /// (e.g. Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Where a run stands: what a resume restores besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct RunState {
    /// The epoch in progress (or next to start).
    epoch: u64,
    /// Batches of `epoch` already trained.
    batch: usize,
    /// Optimizer steps taken.
    step: u64,
    /// Best validation metric so far.
    best: Option<f64>,
    /// Finished epochs' records.
    history: Vec<EpochRecord>,
    /// Running sums of the epoch in progress (loss sum, correct, clips, skipped).
    partial: (f64, u64, u64, usize),
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Every epoch's record.
    pub history: Vec<EpochRecord>,
    /// The trained model (on the training device).
    pub model: AmFlowModel,
}

/// Runs (or resumes) training in `run_dir` on `device` (an autodiff device is derived).
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    train_data_parallel(
        config,
        run_dir,
        resume,
        std::slice::from_ref(device),
        observer,
    )
}

/// [`train`] with every micro-batch split over `devices` (data parallel, see
/// [`crate::parallel`]); the weights, the optimizer and validation live on `devices[0]`.
/// One device is ordinary training.
pub fn train_data_parallel(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    devices: &[Device],
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    let config = config.resolved()?;
    let model_config = config.model.resolve(None)?;
    let replicas: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
    let ad = replicas
        .first()
        .cloned()
        .ok_or_else(|| TrainError::Config("no training device".into()))?;
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    let state_path = run_dir.join(files::STATE);

    let (mut model, mut opt, mut state) = if resume {
        load_state(&state_path, &model_config, &ad)?
    } else {
        let (model, report) = AmFlowModel::new(&model_config, &ad)?;
        if let Some(report) = report {
            tracing::info!("backbone weights: {report}");
        }
        let state = RunState {
            epoch: 0,
            batch: 0,
            step: 0,
            best: None,
            history: vec![],
            partial: (0.0, 0, 0, 0),
        };
        (model, AdamW::new(config.optim.adamw.clone()), state)
    };
    write_text(&run_dir.join(files::CONFIG), &config.to_toml())?;

    let datasets = crate::data::build(&config.data, &model_config)?;
    let class_names = datasets.train.class_names().to_vec();
    let o = &config.optim;
    if o.batch_size == 0 || o.accumulate == 0 {
        return Err(TrainError::Config(
            "batch_size and accumulate must be at least 1".into(),
        ));
    }
    let train_loader = crate::data::loader(
        datasets.train,
        &config.loader,
        o.batch_size,
        true,
        config.seed,
    )?;
    let val_loader = crate::data::loader(
        datasets.val,
        &config.loader,
        o.batch_size,
        false,
        config.seed,
    )?;
    let batches = train_loader.num_batches();
    let steps_per_epoch = batches.div_ceil(o.accumulate) as u64;
    let schedule = WarmupCosine {
        lr: o.lr,
        min_lr: o.min_lr,
        warmup_steps: (o.warmup_epochs * steps_per_epoch as f64).round() as u64,
        total_steps: o.epochs * steps_per_epoch,
    };
    let classes = model_config.num_classes;
    let pass_settings = PassSettings {
        label_smoothing: o.label_smoothing,
        trains_backbone: model_config.backbone.trainable,
    };

    while state.epoch < o.epochs {
        let epoch = state.epoch;
        let started = Instant::now();
        observer.epoch_start(epoch, batches);
        let mut iter = train_loader.epoch(epoch);
        let mut grads = Gradients::default();
        let (mut micro, mut micro_loss) = (0usize, 0.0f64);
        let mut index = 0usize;
        for batch in iter.by_ref() {
            let batch = batch?;
            index += 1;
            if index <= state.batch {
                continue; // trained before the resume
            }
            let pass = forward_backward(
                &model,
                batch.shape,
                &batch.data,
                &batch.labels,
                &replicas,
                pass_settings,
                &mut grads,
            )?;
            let (preds, loss_value) = (pass.predictions, pass.loss);
            if !loss_value.is_finite() {
                return Err(TrainError::NonFiniteLoss { step: state.step });
            }
            micro += 1;
            micro_loss += loss_value;
            let n = batch.labels.len() as u64;
            state.partial.0 += loss_value * n as f64;
            state.partial.1 += preds
                .iter()
                .zip(&batch.labels)
                .filter(|(p, y)| p == y)
                .count() as u64;
            state.partial.2 += n;
            state.partial.3 += batch.skipped.len();
            if micro == o.accumulate || index == batches {
                grads.scale(1.0 / micro as f64);
                let grad_norm = match o.clip_grad_norm {
                    Some(max) => grads.clip_global_norm(max),
                    None => grads.global_norm(),
                };
                let lr = schedule.at(state.step);
                opt.next_step();
                model.additions = opt.update(model.additions, &grads, lr, "");
                if pass_settings.trains_backbone {
                    model.backbone =
                        opt.update(model.backbone, &grads, lr, checkpoint::BACKBONE_PREFIX);
                }
                state.step += 1;
                state.batch = index;
                observer.step(&StepInfo {
                    epoch,
                    step: state.step,
                    batch: index,
                    batches,
                    loss: micro_loss / micro as f64,
                    lr,
                    grad_norm,
                });
                grads = Gradients::default();
                micro = 0;
                micro_loss = 0.0;
                if config.checkpoint_every > 0
                    && state.step % config.checkpoint_every == 0
                    && index < batches
                {
                    save_resume_point(run_dir, &model, &opt, &state, &class_names)?;
                }
                if observer.should_stop() {
                    save_resume_point(run_dir, &model, &opt, &state, &class_names)?;
                    return Err(TrainError::Interrupted { step: state.step });
                }
            }
        }
        drop(iter);

        let eval = evaluate(&model.valid(), &val_loader, classes, observer)?;
        let summary = eval.summary();
        let (loss_sum, correct, clips, skipped) = state.partial;
        let record = EpochRecord {
            epoch,
            step: state.step,
            train_loss: loss_sum / clips.max(1) as f64,
            train_top1: correct as f64 / clips.max(1) as f64,
            val_top1: summary.top1,
            val_top5: summary.top5,
            val_mean_class_accuracy: summary.mean_class_accuracy,
            lr: schedule.at(state.step.saturating_sub(1)),
            skipped,
            seconds: started.elapsed().as_secs_f64(),
        };
        let metric = match config.select_by {
            SelectBy::Top1 => summary.top1,
            SelectBy::MeanClassAccuracy => summary.mean_class_accuracy,
        };
        state.history.push(record.clone());
        state.epoch += 1;
        state.batch = 0;
        state.partial = (0.0, 0, 0, 0);
        if state.best.is_none_or(|b| metric > b) {
            state.best = Some(metric);
            checkpoint::save(
                &model,
                &run_dir.join(files::BEST),
                &state_meta(&state, &class_names),
            )?;
        }
        save_resume_point(run_dir, &model, &opt, &state, &class_names)?;
        write_metrics(&run_dir.join(files::METRICS), &state.history)?;
        observer.epoch_end(&record);
    }
    Ok(TrainOutcome {
        history: state.history,
        model,
    })
}

/// Evaluates `model` on every clip of `loader`; views of the same sample are combined by
/// averaging their softmax scores (multi-view testing).
pub fn evaluate(
    model: &AmFlowModel,
    loader: &Loader,
    classes: usize,
    observer: &mut dyn Observer,
) -> Result<Evaluation> {
    let device = model.additions.final_head.weight.val().device();
    let mut per_sample: BTreeMap<usize, (Vec<f64>, usize, usize)> = BTreeMap::new();
    observer.eval_start(loader.num_batches());
    let iter = loader.epoch(0);
    let mut done = 0;
    for batch in iter {
        let batch = batch?;
        let clip = HostTensor::new(batch.shape.to_vec(), batch.data)?.to_tensor::<5>(&device)?;
        let probs =
            HostTensor::from_tensor(&burn::tensor::activation::softmax(model.forward(clip)?, 1));
        for (i, row) in probs.data.chunks(classes).enumerate() {
            let entry = per_sample
                .entry(batch.samples[i])
                .or_insert_with(|| (vec![0.0; classes], batch.labels[i], 0));
            for (acc, p) in entry.0.iter_mut().zip(row) {
                *acc += *p as f64;
            }
            entry.2 += 1;
        }
        done += 1;
        observer.eval_batch(done);
    }
    let mut eval = Evaluation::new(classes);
    for (scores, label, views) in per_sample.values() {
        let mean: Vec<f32> = scores.iter().map(|s| (s / *views as f64) as f32).collect();
        eval.add(&mean, *label);
    }
    Ok(eval)
}

/// The metrics of an evaluation, with the class names (for JSON output).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The summary numbers.
    #[serde(flatten)]
    pub summary: Summary,
    /// Class names, in label order.
    pub classes: Vec<String>,
}

fn state_meta(state: &RunState, classes: &[String]) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("epoch".to_string(), state.epoch.to_string()),
        ("step".to_string(), state.step.to_string()),
        (
            "classes".to_string(),
            serde_json::to_string(classes).expect("serialisable"),
        ),
    ])
}

/// The class names a checkpoint written by training carries (metadata `classes`).
pub fn checkpoint_classes(metadata: &BTreeMap<String, String>) -> Option<Vec<String>> {
    metadata
        .get("classes")
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Saves everything a resume needs (`state.safetensors`) and the `last` checkpoint.
fn save_resume_point(
    run_dir: &Path,
    model: &AmFlowModel,
    opt: &AdamW,
    state: &RunState,
    class_names: &[String],
) -> Result<()> {
    save_state(&run_dir.join(files::STATE), model, opt, state)?;
    checkpoint::save(
        model,
        &run_dir.join(files::LAST),
        &state_meta(state, class_names),
    )?;
    Ok(())
}

fn save_state(path: &Path, model: &AmFlowModel, opt: &AdamW, state: &RunState) -> Result<()> {
    let mut file = opt.export("optim.");
    for (name, t) in checkpoint::trained_tensors(model) {
        file.tensors.insert(format!("model.{name}"), t);
    }
    file.metadata.insert(
        "run_state".into(),
        serde_json::to_string(state).expect("serialisable"),
    );
    file.metadata
        .insert("config".into(), model.config.to_toml());
    Ok(file.write_atomic(path)?)
}

fn load_state(
    path: &Path,
    config: &ModelConfig,
    device: &Device,
) -> Result<(AmFlowModel, AdamW, RunState)> {
    let bad = |reason: String| TrainError::Resume {
        path: path.parent().unwrap_or(path).to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(bad(format!(
            "{} does not exist (no epoch or step finished yet)",
            path.display()
        )));
    }
    let file = TensorFile::read(path)?;
    let state: RunState = file
        .metadata
        .get("run_state")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("the state file has no run state".into()))?;
    let opt = AdamW::import(&file, "optim.", device, path)?;
    let model_tensors = TensorFile {
        tensors: file
            .tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_string(), v.clone())))
            .collect(),
        metadata: BTreeMap::new(),
    };
    let (backbone, _, additions) =
        checkpoint::model_parts_from_file(model_tensors, config, device, path)?;
    let model = AmFlowModel::from_parts(config, backbone, additions)?;
    tracing::info!(
        "resuming at epoch {} batch {} (step {})",
        state.epoch,
        state.batch,
        state.step
    );
    Ok((model, opt, state))
}

/// Writes `text` to `path` atomically.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(amflow::fs_util::write_atomic(path, text.as_bytes())?)
}

fn write_metrics(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut text = String::new();
    for r in history {
        text.push_str(&serde_json::to_string(r).expect("serialisable"));
        text.push('\n');
    }
    write_text(path, &text)
}
