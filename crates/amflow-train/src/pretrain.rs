//! Image pretraining of the small ViT that the embedded default run uses as its frozen
//! backbone: a ViT trained from scratch, supervised, to name the main object's shape in single
//! frames of the synthetic motion data (6 shapes), then exported in the `transformers` DINOv2
//! layout so that it loads like any Hugging Face backbone.
//!
//! The recipe follows supervised ViT training (Dosovitskiy et al. 2021; DeiT, Touvron et al.
//! 2021) at toy scale: a linear head on `LN_final` of the class token, AdamW with decoupled
//! weight decay, linear warm-up then cosine decay per step, label smoothing, global gradient
//! clipping. Every weight of the ViT trains, including the position embedding (a trainable
//! correction added to the random initial one and folded into it on export). Training frames
//! are freshly drawn each epoch ([`SyntheticMotionConfig::fresh_each_call`]); validation uses
//! fixed frames of another seed.
//!
//! The output directory receives `model.safetensors` and `config.json` (see
//! [`amflow::backbone::Vit::save_hf`]) and `pretrain.toml` (the config used, with the results
//! as comments), each written atomically.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use amflow::backbone::{AttentionMaps, Vit, VitConfig, HF_WEIGHTS_FILE};
use amflow::nn::{Linear, RandomSource, TensorSource, VarBuilder};
use amflow::{HostTensor, Preset};
use amflow_video::synthetic::{SyntheticAppearanceDataset, SyntheticMotionConfig};
use amflow_video::{Batch, Loader, LoaderConfig};
use burn::module::{Module, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::input::pixels_on;
use crate::loss::cross_entropy;
use crate::metrics::{argmax, Evaluation};
use crate::optim::{AdamW, AdamWConfig, Gradients};
use crate::schedule::WarmupCosine;
use crate::step::{GradClip, Stepper};
use crate::trainer::{EpochRecord, EpochTotals, Observer, StepInfo};

/// The file holding the pretraining config inside the output directory.
pub const PRETRAIN_CONFIG_FILE: &str = "pretrain.toml";

/// Number of appearance classes (the shapes of the synthetic data).
pub fn num_shape_classes() -> usize {
    amflow_video::synthetic::SyntheticMotionDataset::appearance_class_names().len()
}

/// The pretraining config (TOML; every field has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Seed of the initial weights, the head and the training data order.
    pub seed: u64,
    /// Training frames per epoch (rounded up to whole clips of `data.num_frames`).
    pub samples: usize,
    /// Validation frames (rounded up to whole clips of `data.num_frames`).
    pub val_samples: usize,
    /// Seed of the validation scenes (held out: training uses `data.seed`).
    pub val_seed: u64,
    /// Epochs.
    pub epochs: u64,
    /// Frames per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine decay.
    pub min_lr: f64,
    /// Linear warm-up length, in epochs.
    pub warmup_epochs: f64,
    /// Decoupled weight decay (not on biases, norms, LayerScale, class token, position
    /// embedding).
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Global gradient-norm clipping: a maximum norm, or `"off"`.
    pub clip_grad_norm: GradClip,
    /// Loader worker threads (0: one per core).
    pub workers: usize,
    /// The architecture trained (default: the `synthetic-small` preset's backbone).
    pub arch: VitConfig,
    /// The frames: synthetic motion scenes, whose main object's shape is the label.
    /// `num_samples` is ignored (`samples` and `val_samples` set it) and `seed` is the
    /// training seed; `size` must equal `arch.native_image_size`.
    pub data: SyntheticMotionConfig,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            samples: 4096,
            val_samples: 1024,
            val_seed: 1_000_003,
            epochs: 6,
            batch_size: 64,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_epochs: 0.5,
            weight_decay: 0.05,
            label_smoothing: 0.1,
            clip_grad_norm: GradClip::MaxNorm(1.0),
            workers: 0,
            arch: Preset::SyntheticSmall.config().backbone.arch,
            data: SyntheticMotionConfig {
                size: 56,
                fresh_each_call: true,
                ..SyntheticMotionConfig::default()
            },
        }
    }
}

impl PretrainConfig {
    /// Parses a TOML config.
    ///
    /// # Errors
    /// [`TrainError::Config`] on a syntax error, an unknown key or an invalid value.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self =
            toml::from_str(text).map_err(|e| TrainError::Config(format!("pretrain: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Config(format!("pretrain: {e}")))
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(TrainError::Config(format!("pretrain: {m}")));
        self.arch.validate()?;
        self.data.validate()?;
        if self.data.size != self.arch.native_image_size {
            return fail(format!(
                "data.size {} must equal arch.native_image_size {}",
                self.data.size, self.arch.native_image_size
            ));
        }
        if self.samples < self.batch_size || self.batch_size == 0 {
            return fail(format!(
                "samples {} must hold at least one batch of batch_size {} (>= 1)",
                self.samples, self.batch_size
            ));
        }
        if self.val_samples == 0 || self.epochs == 0 {
            return fail("val_samples and epochs must be at least 1".into());
        }
        let finite_pos = |v: f64| v.is_finite() && v >= 0.0;
        if !(finite_pos(self.lr) && finite_pos(self.min_lr) && self.lr > 0.0) {
            return fail("lr must be positive and min_lr non-negative".into());
        }
        if !(finite_pos(self.warmup_epochs) && finite_pos(self.weight_decay)) {
            return fail("warmup_epochs and weight_decay must be non-negative".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return fail("label_smoothing must be in [0, 1)".into());
        }
        self.clip_grad_norm.validate("pretrain: clip_grad_norm")
    }

    fn dataset(&self, frames: usize, seed: u64, fresh: bool) -> Result<SyntheticAppearanceDataset> {
        let data = SyntheticMotionConfig {
            num_samples: frames.div_ceil(self.data.num_frames),
            seed,
            fresh_each_call: fresh,
            ..self.data.clone()
        };
        Ok(SyntheticAppearanceDataset::new(data)?)
    }
}

/// The ViT with a linear classification head, every parameter trainable.
///
/// # Shapes
/// - pixels `[frames, 3, size, size]` (normalised), logits `[frames, classes]`
#[derive(Module, Debug)]
pub struct ImageClassifier {
    /// The backbone being trained.
    pub vit: Vit,
    /// Trainable correction of the position embedding `[1 + g*g, D]` (class first), added
    /// to `vit.pos_embed` (which is kept on the host and does not train).
    pub pos_embed: Param<Tensor<2>>,
    /// The head on `LN_final` of the class token.
    pub head: Linear,
}

impl ImageClassifier {
    /// A randomly initialised classifier on `device`, with gradients enabled.
    pub fn new(arch: &VitConfig, classes: usize, seed: u64, device: &Device) -> Result<Self> {
        let vit = Vit::random(arch, seed, device)?.unfreeze();
        let source: RefCell<RandomSource> = RefCell::new(RandomSource::new(seed ^ 0x4EAD));
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        let head = Linear::new(&vb.pp("head"), arch.hidden_size, classes, true)?;
        let n = 1 + arch.native_grid() * arch.native_grid();
        let pos_embed = Param::from_tensor(Tensor::<2>::zeros([n, arch.hidden_size], device));
        Ok(Self {
            vit,
            pos_embed,
            head,
        }
        .unfreeze())
    }

    /// Class logits of frames at the native size.
    ///
    /// # Errors
    /// [`amflow::AmflowError::Input`] for frames of another size or without 3 channels.
    pub fn forward(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        let [f, _, h, w] = pixels.dims();
        let c = &self.vit.config;
        if h != c.native_image_size || w != c.native_image_size {
            return Err(amflow::AmflowError::Input(format!(
                "pretraining frames must be {n}x{n}, got {h}x{w}",
                n = c.native_image_size
            ))
            .into());
        }
        let d = c.hidden_size;
        let mut x = self.vit.embed(pixels)?;
        x = x + self
            .vit
            .pad_token_rows(self.pos_embed.val())
            .unsqueeze::<3>();
        for block in &self.vit.blocks {
            x = block.forward(x, AttentionMaps::None).0;
        }
        let cls: Tensor<2> = x.slice([0..f, 0..1, 0..d]).reshape([f, d]);
        Ok(self.head.forward(self.vit.final_norm.forward(cls)))
    }

    /// The trained ViT alone, frozen, with the position-embedding correction folded in.
    pub fn into_vit(self) -> Result<Vit> {
        let delta = HostTensor::from_tensor(&self.pos_embed.val());
        let mut vit = self.vit.no_grad();
        if delta.data.len() != vit.pos_embed.data.len() {
            return Err(TrainError::Config(format!(
                "position embedding correction {:?} does not fit {:?}",
                delta.shape, vit.pos_embed.shape
            )));
        }
        for (p, d) in vit.pos_embed.data.iter_mut().zip(&delta.data) {
            *p += d;
        }
        Ok(vit)
    }
}

/// The result of [`pretrain_image`].
#[derive(Debug, Clone)]
pub struct PretrainOutcome {
    /// Final validation top-1 accuracy on the shapes.
    pub val_top1: f64,
    /// Final validation mean class accuracy.
    pub val_mean_class_accuracy: f64,
    /// Every epoch (`val_top1` is the shape accuracy; chance is 1/6).
    pub history: Vec<EpochRecord>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// The trained ViT (frozen, on the plain `device`), as it was written.
    pub vit: Vit,
}

fn frames_of(batch: &Batch, device: &Device) -> Result<Tensor<4>> {
    let [b, t, c, h, w] = batch.shape;
    pixels_on(batch.data.clone(), [b * t, c, h, w], &batch.norm, device)
}

/// Top-1 evaluation of `model` on every frame of `loader`.
fn evaluate(model: &ImageClassifier, loader: &Loader, classes: usize) -> Result<Evaluation> {
    let device = model.head.weight.val().device();
    let mut eval = Evaluation::new(classes);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let logits = HostTensor::from_tensor(&model.forward(frames_of(&batch, &device)?)?);
        for (row, &y) in logits.data.chunks(classes).zip(&batch.labels) {
            eval.add(row, y)?;
        }
    }
    Ok(eval)
}

/// Trains a ViT of `config.arch` from scratch on the shape labels of synthetic frames and
/// writes `out_dir/model.safetensors`, `out_dir/config.json` and `out_dir/pretrain.toml`
/// (each atomically; `out_dir` is created). `device` is a plain device; an autodiff device is
/// derived from it. `observer` sees every step and epoch (it cannot stop this run: there is no
/// resume).
///
/// # Errors
/// An invalid config, a data error, a non-finite loss, or a file that cannot be written.
pub fn pretrain_image(
    config: &PretrainConfig,
    out_dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<PretrainOutcome> {
    config.validate()?;
    // Fails early (before training) when the architecture cannot be exported.
    let hf_config = config.arch.to_hf_config_json()?;
    let started = Instant::now();
    let classes = num_shape_classes();
    let ad = device.clone().autodiff();
    let mut model = ImageClassifier::new(&config.arch, classes, config.seed, &ad)?;

    let loader = |name: &str, frames: usize, seed: u64, fresh: bool, shuffle: bool| {
        let dataset = config.dataset(frames, seed, fresh)?;
        Ok(Loader::new(
            Arc::new(dataset),
            LoaderConfig {
                batch_size: config.batch_size,
                workers: config.workers,
                shuffle,
                drop_last: shuffle,
                seed: config.seed,
                name: name.into(),
                ..LoaderConfig::default()
            },
        )?) as Result<Loader>
    };
    let train_loader = loader(
        "pretrain",
        config.samples,
        config.data.seed,
        config.data.fresh_each_call,
        true,
    )?;
    let val_loader = loader(
        "validation",
        config.val_samples,
        config.val_seed,
        false,
        false,
    )?;
    let steps_per_epoch = train_loader.num_batches() as u64;
    let schedule = WarmupCosine {
        lr: config.lr,
        min_lr: config.min_lr,
        warmup_steps: (config.warmup_epochs * steps_per_epoch as f64).round() as u64,
        total_steps: config.epochs * steps_per_epoch,
    };
    let opt = AdamW::new(AdamWConfig {
        weight_decay: config.weight_decay,
        ..AdamWConfig::default()
    });
    let mut stepper = Stepper::new(opt, schedule, config.clip_grad_norm, 1)?;

    let batches = train_loader.num_batches();
    let mut history = Vec::new();
    let mut last_eval = None;
    for epoch in 0..config.epochs {
        let epoch_started = Instant::now();
        observer.epoch_start(epoch, batches);
        let mut totals = EpochTotals::default();
        for batch in train_loader.epoch(epoch) {
            let batch = batch?;
            let logits = model.forward(frames_of(&batch, &ad)?)?;
            let host = HostTensor::from_tensor(&logits.clone().detach());
            let predictions: Vec<usize> = host.data.chunks(classes).map(argmax).collect();
            let loss = cross_entropy(logits, &batch.labels, config.label_smoothing)?;
            let loss_value = f64::from(loss.clone().detach().into_scalar::<f32>());
            if !loss_value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: stepper.opt.step,
                });
            }
            let g = loss.backward();
            let mut grads = Gradients::default();
            grads.accumulate(&model, &g);
            stepper.add(grads, &ad);
            totals.add(loss_value, &predictions, &batch.labels, batch.skipped.len());
            let (stepped, taken) =
                stepper.step(model, |opt, m, grads, lr| opt.update(m, grads, lr, ""));
            model = stepped;
            observer.step(&StepInfo {
                epoch,
                step: taken.step,
                total_steps: stepper.schedule().total_steps,
                batch: batch.position + 1,
                batches,
                loss: Some(loss_value),
                lr: taken.lr,
                grad_norm: taken.grad_norm,
            });
        }
        let eval = evaluate(&model.valid(), &val_loader, classes)?.summary();
        let record = EpochRecord {
            epoch,
            step: stepper.opt.step,
            train_loss: totals.mean_loss(),
            train_top1: totals.accuracy(),
            val_top1: eval.top1,
            val_top5: eval.top5,
            val_mean_class_accuracy: eval.mean_class_accuracy,
            lr: stepper.last_lr(),
            skipped: totals.skipped,
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        observer.epoch_end(&record);
        history.push(record);
        last_eval = Some(eval);
    }
    let eval = last_eval.ok_or_else(|| TrainError::Config("pretrain: no epoch ran".into()))?;
    let vit = model.valid().into_vit()?;
    let seconds = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(out_dir).map_err(|e| TrainError::io(out_dir, e))?;
    let header = format!(
        "# amflow image pretraining of a {family:?} ViT (width {w}, {l} blocks, patch {p}, \
         {s}x{s}) on the synthetic shapes ({classes} classes)\n\
         # result: validation top-1 {acc:.4}, mean class accuracy {mca:.4}, after {steps} steps \
         in {seconds:.0} s\n",
        family = config.arch.family,
        w = config.arch.hidden_size,
        l = config.arch.num_layers,
        p = config.arch.patch_size,
        s = config.arch.native_image_size,
        acc = eval.top1,
        mca = eval.mean_class_accuracy,
        steps = stepper.opt.step,
    );
    crate::trainer::write_text(
        &out_dir.join(PRETRAIN_CONFIG_FILE),
        &format!("{header}{}", config.to_toml()?),
    )?;
    let json = serde_json::to_string_pretty(&hf_config)
        .map_err(|e| TrainError::Config(format!("config.json: {e}")))?;
    crate::trainer::write_text(
        &out_dir.join(amflow::backbone::HF_CONFIG_FILE),
        &format!("{json}\n"),
    )?;
    let mut file = vit.to_hf_tensors()?;
    file.metadata.insert(
        "amflow.pretrain.val_top1".into(),
        format!("{:.4}", eval.top1),
    );
    file.write_atomic(&out_dir.join(HF_WEIGHTS_FILE))?;

    Ok(PretrainOutcome {
        val_top1: eval.top1,
        val_mean_class_accuracy: eval.mean_class_accuracy,
        history,
        steps: stepper.opt.step,
        seconds,
        vit,
    })
}
