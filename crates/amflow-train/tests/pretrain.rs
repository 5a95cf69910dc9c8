//! Image pretraining on a tiny ViT and few steps: the loss goes down, and the output directory
//! is a `transformers` DINOv2 model that `Vit::load_hf` reads back to the trained weights.

use std::path::PathBuf;

use amflow::backbone::{Vit, VitConfig};
use amflow::{HostTensor, Preset};
use amflow_train::pretrain::{pretrain_image, PretrainConfig};
use amflow_train::trainer::{EpochRecord, Observer, Silent, StepInfo};
use amflow_train::TrainError;
use amflow_video::synthetic::SyntheticMotionConfig;
use burn::prelude::*;
use burn::tensor::Distribution;

fn tiny() -> PretrainConfig {
    PretrainConfig {
        seed: 1,
        samples: 512,
        val_samples: 64,
        epochs: 3,
        batch_size: 32,
        lr: 3e-3,
        warmup_epochs: 0.25,
        workers: 2,
        arch: Preset::Tiny.config().backbone.arch,
        data: SyntheticMotionConfig {
            size: 16,
            num_frames: 2,
            max_distractors: 0,
            fresh_each_call: true,
            ..SyntheticMotionConfig::default()
        },
        ..PretrainConfig::default()
    }
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("amflow-pretrain-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn loss_decreases_and_the_output_loads_as_a_hf_model() {
    let config = tiny();
    let out = dir("run");
    let device = Device::flex();
    let mut seen = Recorder::default();
    let outcome = pretrain_image(&config, &out, &device, &mut seen).unwrap();
    let (losses, epochs) = (seen.losses, seen.epochs);
    assert_eq!(epochs, 3);
    assert_eq!(losses.len(), 3 * 16);
    assert_eq!(outcome.steps, 48);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&losses[..8]), mean(&losses[losses.len() - 8..]));
    assert!(last < first - 0.05, "loss {first} -> {last}");
    assert!(outcome.history[2].train_loss < outcome.history[0].train_loss);
    assert!((0.0..=1.0).contains(&outcome.val_top1));

    // config.json reads back to the architecture, the weights to the trained ViT.
    let text = std::fs::read_to_string(out.join("config.json")).unwrap();
    let arch = VitConfig::from_hf_config(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(arch, config.arch);
    let (vit, report) = Vit::load_hf(&out.join("model.safetensors"), &arch, &device).unwrap();
    assert!(report.ignored.is_empty());
    let pixels = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let (a, _) = vit.forward_plain(pixels.clone()).unwrap();
    let (b, _) = outcome.vit.forward_plain(pixels).unwrap();
    assert_eq!(
        HostTensor::from_tensor(&a).max_abs_diff(&HostTensor::from_tensor(&b)),
        0.0
    );
    // The position embedding trained (its correction was folded into the export).
    let random = Vit::random(&arch, config.seed, &device).unwrap();
    assert!(vit.pos_embed.max_abs_diff(&random.pos_embed) > 1e-4);

    // pretrain.toml is the config used.
    let text = std::fs::read_to_string(out.join("pretrain.toml")).unwrap();
    assert_eq!(PretrainConfig::from_toml(&text).unwrap(), config);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn invalid_configs_are_errors_before_training() {
    let device = Device::flex();
    let out = dir("bad");
    let mut wrong_size = tiny();
    wrong_size.data.size = 24;
    let mut clip = tiny();
    clip.arch.family = amflow::backbone::BackboneFamily::Clip;
    let mut no_batch = tiny();
    no_batch.batch_size = 0;
    for config in [wrong_size, clip, no_batch] {
        let err = pretrain_image(&config, &out, &device, &mut Silent).unwrap_err();
        assert!(
            matches!(err, TrainError::Config(_) | TrainError::Model(_)),
            "{err}"
        );
    }
    assert!(!out.exists());
    assert!(PretrainConfig::from_toml("epochs = 2\nbogus = 1\n").is_err());
    assert_eq!(
        PretrainConfig::from_toml("").unwrap(),
        PretrainConfig::default()
    );
}

/// Records the step losses and counts the epochs.
#[derive(Default)]
struct Recorder {
    losses: Vec<f64>,
    epochs: usize,
}

impl Observer for Recorder {
    fn step(&mut self, info: &StepInfo) {
        self.losses
            .push(info.loss.expect("pretraining reads every step's loss"));
    }
    fn epoch_end(&mut self, _record: &EpochRecord) {
        self.epochs += 1;
    }
}
