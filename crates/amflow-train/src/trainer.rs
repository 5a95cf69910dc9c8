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
use std::path::{Path, PathBuf};
use std::time::Instant;

use amflow::checkpoint;
use amflow::{AmFlowModel, HostTensor, ModelConfig, TensorFile};
use amflow_video::Loader;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{InputContract, Position};
use crate::config::{ModelChoice, SelectBy, TrainConfig};
use crate::error::{Result, TrainError};
use crate::input::{pixels_on, Pixels};
use crate::metrics::{Evaluation, Summary, ViewAverager};
use crate::optim::AdamW;
use crate::parallel::{forward_backward, PassSettings};
use crate::schedule::WarmupCosine;
use crate::step::Stepper;

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
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
    /// Batches of this epoch done.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// Mean loss of the micro-batches since the last logged step, at logging steps (every
    /// `log_every` steps, the epoch's last step and before each checkpoint); `None` between
    /// them, where the loss stays on the device.
    pub loss: Option<f64>,
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

/// Receives progress from every training loop of the crate (video training and image
/// pretraining); the CLI draws progress bars and writes TensorBoard files from it.
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

/// Running totals of an epoch's training batches.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct EpochTotals {
    /// Sum over clips of the loss.
    pub loss_sum: f64,
    /// Clips predicted right.
    pub correct: u64,
    /// Clips trained on.
    pub clips: u64,
    /// Clips skipped as unusable.
    pub skipped: usize,
}

impl EpochTotals {
    /// Adds one batch: its mean loss, predictions, labels and skipped samples.
    pub fn add(&mut self, loss: f64, predictions: &[usize], labels: &[usize], skipped: usize) {
        let n = labels.len() as u64;
        self.loss_sum += loss * n as f64;
        self.correct += predictions
            .iter()
            .zip(labels)
            .filter(|(p, y)| p == y)
            .count() as u64;
        self.clips += n;
        self.skipped += skipped;
    }

    /// Mean loss per clip (0 without clips).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.clips.max(1) as f64
    }

    /// Top-1 accuracy (0 without clips).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.clips.max(1) as f64
    }
}

/// The losses and right-prediction counts of the micro-batches since the last read, still on
/// the device. They are read in one go and summed on the host in batch order, so the totals are
/// the same whichever steps the reads fall on (a resumed run's equal an uninterrupted one's).
#[derive(Default)]
struct PendingBatches {
    /// Per micro-batch: `[mean loss, clips right]` and the clips.
    batches: Vec<(Tensor<1>, usize)>,
}

impl PendingBatches {
    fn add(&mut self, pass: &crate::parallel::PassOutput, clips: usize) {
        let pair = Tensor::cat(vec![pass.loss.clone(), pass.correct.clone()], 0);
        self.batches.push((pair, clips));
    }
}

/// Where a run stands: what a resume restores besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct RunState {
    /// The epoch in progress (or next to start).
    epoch: u64,
    /// Batch positions of `epoch` already trained (the resume continues at this position).
    batch: usize,
    /// Optimizer steps taken.
    step: u64,
    /// Best validation metric so far.
    best: Option<f64>,
    /// Finished epochs' records.
    history: Vec<EpochRecord>,
    /// Totals of the epoch in progress.
    totals: EpochTotals,
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
    let mut run = Run::start(config, run_dir, resume, devices)?;
    while run.state.epoch < run.config.optim.epochs {
        let started = Instant::now();
        run.train_epoch(observer)?;
        run.end_epoch(started, observer)?;
    }
    Ok(TrainOutcome {
        history: run.state.history,
        model: run.model,
    })
}

/// A run in progress: the model, the optimizer, the data and where the run stands.
struct Run {
    config: TrainConfig,
    run_dir: PathBuf,
    model: AmFlowModel,
    stepper: Stepper,
    state: RunState,
    replicas: Vec<Device>,
    train_loader: Loader,
    val_loader: Loader,
    class_names: Vec<String>,
    input: InputContract,
    classes: usize,
    pass_settings: PassSettings,
    pending: PendingBatches,
}

impl Run {
    /// Builds the model (or restores it from the run directory), the loaders and the schedule,
    /// and records the resolved config.
    fn start(
        config: &TrainConfig,
        run_dir: &Path,
        resume: bool,
        devices: &[Device],
    ) -> Result<Self> {
        let mut config = config.resolved()?;
        let mut model_config = config.model.resolve(None)?;
        // The data first: a model config that leaves `num_classes` out takes the training
        // data's class count.
        if model_config.num_classes == 0 {
            model_config.num_classes = crate::data::train_class_count(&config.data)?;
        }
        let datasets = crate::data::build(&config.data, &model_config)?;
        let replicas: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
        let ad = replicas
            .first()
            .cloned()
            .ok_or_else(|| TrainError::Config("no training device".into()))?;
        let o = &config.optim;
        if o.batch_size == 0 {
            return Err(TrainError::Config("batch_size must be at least 1".into()));
        }
        std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
        let (model, opt, state) = if resume {
            load_state(&run_dir.join(files::STATE), &model_config, &ad)?
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
                totals: EpochTotals::default(),
            };
            (model, AdamW::new(o.adamw.clone()), state)
        };
        // The run records the model as built: the class count filled in, Hub weights pinned
        // to the commit they were loaded from.
        let model_config = model.config.clone();
        config.model = ModelChoice::Inline(Box::new(model_config.clone()));
        write_text(&run_dir.join(files::CONFIG), &config.to_toml())?;
        let o = &config.optim;

        let class_names = datasets.train.class_names().to_vec();
        let input = InputContract::of_run(&config.data, &model_config);
        let train_loader = crate::data::loader(
            "train",
            datasets.train,
            &config.loader,
            o.batch_size,
            true,
            config.seed,
        )?;
        let val_loader = crate::data::loader(
            "validation",
            datasets.val,
            &config.loader,
            o.batch_size,
            false,
            config.seed,
        )?;
        let steps_per_epoch = train_loader.num_batches().div_ceil(o.accumulate.max(1)) as u64;
        let schedule = WarmupCosine {
            lr: o.lr,
            min_lr: o.min_lr,
            warmup_steps: (o.warmup_epochs * steps_per_epoch as f64).round() as u64,
            total_steps: o.epochs * steps_per_epoch,
        };
        let stepper = Stepper::new(opt, schedule, o.clip_grad_norm, o.accumulate)?;
        o.mix.validate()?;
        let pass_settings = PassSettings {
            label_smoothing: o.label_smoothing,
            trains_backbone: model_config.backbone.trainable,
            mix: o.mix,
            mix_seed: [config.seed, 0, 0],
        };
        Ok(Self {
            classes: model_config.num_classes,
            run_dir: run_dir.to_path_buf(),
            config,
            model,
            stepper,
            state,
            replicas,
            train_loader,
            val_loader,
            class_names,
            input,
            pass_settings,
            pending: PendingBatches::default(),
        })
    }

    /// Reads the pending micro-batches' losses and counts into the host totals (one device
    /// read) and returns their mean loss.
    ///
    /// # Errors
    /// [`TrainError::NonFiniteLoss`] when a loss since the last read is NaN or infinite.
    fn sync(&mut self) -> Result<Option<f64>> {
        let pending = std::mem::take(&mut self.pending.batches);
        if pending.is_empty() {
            return Ok(None);
        }
        let clips: Vec<usize> = pending.iter().map(|(_, n)| *n).collect();
        let values = amflow::read_values(Tensor::cat(
            pending.into_iter().map(|(pair, _)| pair).collect(),
            0,
        ));
        let mut interval = 0.0;
        for (pair, n) in values.chunks(2).zip(&clips) {
            let loss = f64::from(pair[0]);
            if !loss.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: self.state.step,
                });
            }
            interval += loss;
            self.state.totals.loss_sum += loss * *n as f64;
            self.state.totals.correct += pair[1].round() as u64;
        }
        Ok(Some(interval / clips.len() as f64))
    }

    /// Trains the rest of the current epoch, from the batch position the state records
    /// (batches before it are neither decoded nor trained again).
    fn train_epoch(&mut self, observer: &mut dyn Observer) -> Result<()> {
        let epoch = self.state.epoch;
        let batches = self.train_loader.num_batches();
        observer.epoch_start(epoch, batches);
        let mut iter = self.train_loader.epoch_from(epoch, self.state.batch);
        for batch in iter.by_ref() {
            let batch = batch?;
            let mut settings = self.pass_settings;
            settings.mix_seed = [self.config.seed, epoch, batch.position as u64];
            let pass = forward_backward(
                &self.model,
                Pixels::of(&batch),
                &batch.labels,
                &self.replicas,
                settings,
                self.stepper.gradients_mut(),
            )?;
            self.stepper.count_micro_batch();
            self.pending.add(&pass, batch.labels.len());
            self.state.totals.clips += batch.labels.len() as u64;
            self.state.totals.skipped += batch.skipped.len();
            self.state.batch = batch.position + 1;
            if self.stepper.is_due(self.state.batch == batches) && self.step(observer, batches)? {
                return Err(TrainError::Interrupted {
                    step: self.state.step,
                });
            }
        }
        // The epoch's last batches may all have been unusable: their micro-batches still step.
        if self.stepper.is_due(true) && self.step(observer, batches)? {
            return Err(TrainError::Interrupted {
                step: self.state.step,
            });
        }
        Ok(())
    }

    /// One optimizer step, with its observer call and step checkpoint; `true` when the observer
    /// asked to stop (the resume point is saved then).
    fn step(&mut self, observer: &mut dyn Observer, batches: usize) -> Result<bool> {
        let trains_backbone = self.pass_settings.trains_backbone;
        let model = self.model.clone();
        let (model, taken) = self.stepper.step(model, |opt, mut model, grads, lr| {
            model.additions = opt.update(model.additions, grads, lr, "");
            if trains_backbone {
                model.backbone = opt.update(model.backbone, grads, lr, checkpoint::BACKBONE_PREFIX);
            }
            model
        });
        self.model = model;
        self.state.step = taken.step;
        let every = self.config.checkpoint_every;
        let checkpoint = every > 0 && taken.step % every == 0 && self.state.batch < batches;
        let log_every = self.config.log_every.max(1);
        let loss = if checkpoint || taken.step % log_every == 0 || self.state.batch == batches {
            self.sync()?
        } else {
            None
        };
        observer.step(&StepInfo {
            epoch: self.state.epoch,
            step: taken.step,
            total_steps: self.stepper.schedule().total_steps,
            batch: self.state.batch,
            batches,
            loss,
            lr: taken.lr,
            grad_norm: taken.grad_norm,
        });
        if checkpoint {
            self.save_resume_point()?;
        }
        if observer.should_stop() {
            self.sync()?;
            self.save_resume_point()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Validates, records the epoch, and writes the checkpoints and the metrics file.
    fn end_epoch(&mut self, started: Instant, observer: &mut dyn Observer) -> Result<()> {
        self.sync()?;
        let summary = evaluate(
            &self.model.valid(),
            &self.val_loader,
            self.classes,
            observer,
        )?
        .summary();
        let totals = self.state.totals;
        let record = EpochRecord {
            epoch: self.state.epoch,
            step: self.state.step,
            train_loss: totals.mean_loss(),
            train_top1: totals.accuracy(),
            val_top1: summary.top1,
            val_top5: summary.top5,
            val_mean_class_accuracy: summary.mean_class_accuracy,
            lr: self.stepper.last_lr(),
            skipped: totals.skipped,
            seconds: started.elapsed().as_secs_f64(),
        };
        let metric = match self.config.select_by {
            SelectBy::Top1 => summary.top1,
            SelectBy::MeanClassAccuracy => summary.mean_class_accuracy,
        };
        self.state.history.push(record.clone());
        self.state.epoch += 1;
        self.state.batch = 0;
        self.state.totals = EpochTotals::default();
        if self.state.best.is_none_or(|b| metric > b) {
            self.state.best = Some(metric);
            self.save_checkpoint(files::BEST)?;
        }
        self.save_resume_point()?;
        write_metrics(&self.run_dir.join(files::METRICS), &self.state.history)?;
        observer.epoch_end(&record);
        Ok(())
    }

    /// Saves everything a resume needs (`state.safetensors`) and the `last` checkpoint.
    fn save_resume_point(&self) -> Result<()> {
        save_state(
            &self.run_dir.join(files::STATE),
            &self.model,
            &self.stepper.opt,
            &self.state,
        )?;
        self.save_checkpoint(files::LAST)
    }

    /// Writes the model with its classes and input contract as `name` in the run directory.
    fn save_checkpoint(&self, name: &str) -> Result<()> {
        crate::checkpoint::save(
            &self.model,
            &self.run_dir.join(name),
            &self.class_names,
            &self.input,
            Position {
                epoch: self.state.epoch,
                step: self.state.step,
            },
        )
    }
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
    let mut views = ViewAverager::default();
    observer.eval_start(loader.num_batches());
    for (done, batch) in loader.epoch(0).enumerate() {
        let mut batch = batch?;
        let pixels = std::mem::take(&mut batch.data);
        let clip = pixels_on(pixels, batch.shape, &batch.norm, &device)?;
        let probs =
            HostTensor::from_tensor(&burn::tensor::activation::softmax(model.forward(clip)?, 1));
        for ((row, &sample), &label) in probs
            .data
            .chunks(classes)
            .zip(&batch.samples)
            .zip(&batch.labels)
        {
            views.add(sample, label, row)?;
        }
        observer.eval_batch(done + 1);
    }
    views.evaluate(classes)
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
        checkpoint::model_parts_from_file(model_tensors, config, device)?;
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
