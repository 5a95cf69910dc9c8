//! Training on the tiny preset with generated clips: the loss goes down, the run directory holds
//! what it should, and a run interrupted mid-epoch and resumed ends with exactly the weights of
//! an uninterrupted run.

use std::path::PathBuf;

use amflow::checkpoint::named_tensors;
use amflow::TensorFile;
use amflow_train::trainer::{files, train, Observer, Silent, StepInfo};
use amflow_train::{TrainConfig, TrainError};
use burn::prelude::*;

fn config() -> TrainConfig {
    let text = r#"
seed = 3
model = "tiny"
checkpoint_every = 2

[data.synthetic]
val_samples = 10
[data.synthetic.train]
num_samples = 24
num_frames = 4
size = 16
classes = ["static", "left", "right", "up", "down"]

[optim]
epochs = 2
batch_size = 4
accumulate = 2
lr = 3e-3
warmup_epochs = 0.5

[loader]
workers = 2
"#;
    TrainConfig::from_toml(text, &[]).unwrap()
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("amflow-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

struct StopAfter(u64, u64);
impl Observer for StopAfter {
    fn step(&mut self, info: &StepInfo) {
        self.1 = info.step;
    }
    fn should_stop(&mut self) -> bool {
        self.1 >= self.0
    }
}

#[test]
fn interrupted_and_resumed_run_ends_with_the_same_weights() {
    let device = Device::flex();
    let a = dir("a");
    let full = train(&config(), &a, false, &device, &mut Silent).unwrap();
    assert_eq!(full.history.len(), 2);
    for f in [
        files::CONFIG,
        files::STATE,
        files::LAST,
        files::BEST,
        files::METRICS,
    ] {
        assert!(a.join(f).exists(), "{f} missing");
    }
    assert_eq!(
        std::fs::read_to_string(a.join(files::METRICS))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // Interrupt at step 5 (mid-epoch 2: 6 batches = 3 steps per epoch); the state of step 5 is
    // saved on the way out.
    let b = dir("b");
    let err = train(&config(), &b, false, &device, &mut StopAfter(5, 0)).unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { step: 5 }), "{err}");
    let resumed = train(&config(), &b, true, &device, &mut Silent).unwrap();
    assert_eq!(resumed.history.len(), 2);
    let wa = named_tensors(&full.model.additions);
    let wb = named_tensors(&resumed.model.additions);
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    for (name, t) in &wa {
        assert_eq!(t, &wb[name], "{name} differs after resume");
    }
    assert_eq!(
        full.history,
        resumed
            .history
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.seconds = full.history[r.epoch as usize].seconds;
                r
            })
            .collect::<Vec<_>>()
    );
    // The saved last checkpoint equals the in-memory weights.
    let last = TensorFile::read(&b.join(files::LAST)).unwrap();
    for (name, t) in &wb {
        assert_eq!(t, &last.tensors[name], "{name}");
    }
}

#[test]
fn training_reduces_the_loss() {
    let mut c = config();
    c.optim.epochs = 4;
    c.checkpoint_every = 0;
    let out = train(&c, &dir("loss"), false, &Device::flex(), &mut Silent).unwrap();
    let first = out.history.first().unwrap().train_loss;
    let last = out.history.last().unwrap().train_loss;
    assert!(last < first, "loss {first} -> {last}");
}

#[test]
fn resume_without_state_is_a_clear_error() {
    let err = train(
        &config(),
        &dir("nostate"),
        true,
        &Device::flex(),
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Resume { .. }), "{err}");
}

#[test]
fn overrides_and_unknown_keys() {
    let c = TrainConfig::from_toml(
        &config().to_toml(),
        &[
            "optim.lr=0.5".into(),
            "data.synthetic.train.noise=1.0".into(),
        ],
    )
    .unwrap();
    assert_eq!(c.optim.lr, 0.5);
    let err = TrainConfig::from_toml(&config().to_toml(), &["optim.learning_rate=0.5".into()])
        .unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
}

/// The from-scratch configuration of the ablation: the backbone trains with the additions, its
/// weights (and position-embedding correction) are in the checkpoints, and an interrupted run
/// resumes to the same weights.
#[test]
fn trainable_backbone_trains_is_saved_and_resumes_exactly() {
    use amflow::checkpoint::{load, named_params, trained_tensors};
    use amflow::model::load_backbone;
    use amflow::Preset;
    use amflow_train::config::ModelChoice;

    let mut model = Preset::Tiny.config();
    model.backbone.trainable = true;
    let mut c = config();
    c.model = ModelChoice::Inline(Box::new(model.clone()));
    let device = Device::flex();
    let a = dir("bb-a");
    let full = train(&c, &a, false, &device, &mut Silent).unwrap();

    let initial = named_params(&load_backbone(&model, &device).unwrap().0);
    let trained = named_params(&full.model.backbone);
    assert_eq!(
        initial.keys().collect::<Vec<_>>(),
        trained.keys().collect::<Vec<_>>()
    );
    for (name, t) in &initial {
        assert_ne!(t, &trained[name], "backbone tensor {name} did not train");
    }
    let delta = full.model.additions.pos_embed_delta.as_ref().unwrap();
    assert!(delta.val().abs().max().into_scalar::<f32>() > 0.0);

    let b = dir("bb-b");
    let err = train(&c, &b, false, &device, &mut StopAfter(5, 0)).unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { step: 5 }), "{err}");
    let resumed = train(&c, &b, true, &device, &mut Silent).unwrap();
    let wa = trained_tensors(&full.model);
    let wb = trained_tensors(&resumed.model);
    assert!(wa.keys().any(|k| k.starts_with("backbone.blocks.")));
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    for (name, t) in &wa {
        assert_eq!(t, &wb[name], "{name} differs after resume");
    }

    // The checkpoint alone rebuilds the trained model.
    let loaded = load(&b.join(files::LAST), &device).unwrap();
    let wl = trained_tensors(&loaded.model);
    for (name, t) in &wb {
        assert_eq!(t, &wl[name], "{name} differs in the checkpoint");
    }
}

/// Data parallel passes: the batch split over 2 or 3 replicas (uneven shards) gives the loss,
/// predictions and gradients of the single-device pass; a short data-parallel run trains.
#[test]
fn data_parallel_pass_matches_one_device_and_trains() {
    use amflow::{AmFlowModel, Preset};
    use amflow_train::input::Pixels;
    use amflow_train::optim::Gradients;
    use amflow_train::parallel::{forward_backward, PassSettings};
    use amflow_train::trainer::train_data_parallel;

    let mut model_config = Preset::Tiny.config();
    model_config.backbone.trainable = true; // the backbone's gradients too
    let ad = Device::flex().autodiff();
    let (model, _) = AmFlowModel::new(&model_config, &ad).unwrap();
    let shape = [5, 4, 3, 16, 16];
    let n: usize = shape.iter().product();
    let data: Vec<u8> = (0..n).map(|i| ((i * 7919) % 256) as u8).collect();
    let norm = amflow_video::transform::Normalization::ImageNet.pixel_norm();
    let labels = [0, 3, 1, 4, 2];
    let settings = PassSettings {
        label_smoothing: 0.1,
        trains_backbone: true,
        mix: Default::default(),
        mix_seed: [0, 0, 0],
    };
    let pass = |k: usize| {
        let mut g = Gradients::default();
        let out = forward_backward(
            &model,
            Pixels {
                data: &data,
                shape,
                norm: &norm,
            },
            &labels,
            &vec![ad.clone(); k],
            settings,
            &mut g,
        )
        .unwrap();
        (out, g)
    };
    let (one, g1) = pass(1);
    assert!(g1.iter().any(|(k, _)| k.starts_with("backbone.")));
    for k in [2, 3] {
        let (out, gk) = pass(k);
        let ints = |t: &Tensor<1, Int>| {
            t.clone()
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap()
        };
        let value = |t: &Tensor<1>| t.clone().into_scalar::<f32>();
        assert_eq!(
            ints(&out.predictions),
            ints(&one.predictions),
            "{k} devices"
        );
        assert!(
            (value(&out.loss) - value(&one.loss)).abs() < 1e-6,
            "{k} devices: loss"
        );
        assert_eq!(
            value(&out.correct),
            value(&one.correct),
            "{k} devices: right"
        );
        assert_eq!(gk.len(), g1.len());
        for ((name, a), (_, b)) in g1.iter().zip(gk.iter()) {
            // (absolute floor: some gradients are zero in exact arithmetic, e.g. key biases)
            let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-2);
            let diff = (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
            assert!(
                diff <= 1e-4 * scale,
                "{k} devices: {name} differs by {diff}"
            );
        }
    }

    let mut c = config();
    c.optim.epochs = 3;
    let out = train_data_parallel(
        &c,
        &dir("dp"),
        false,
        &[Device::flex(), Device::flex()],
        &mut Silent,
    )
    .unwrap();
    let first = out.history.first().unwrap().train_loss;
    let last = out.history.last().unwrap().train_loss;
    assert!(last < first, "loss {first} -> {last}");
}

/// Device reads seen at each step, with whether the step logged its loss.
#[derive(Default)]
struct ReadCounter {
    steps: Vec<(u64, usize, Option<f64>, u64)>,
}

impl Observer for ReadCounter {
    fn step(&mut self, info: &StepInfo) {
        self.steps
            .push((info.epoch, info.batch, info.loss, amflow::device_reads()));
    }
}

/// A training step reads one number back from the device (the clipping norm); the loss and
/// accuracy stay on the device until a logging step, which reads them once more.
#[test]
fn a_training_step_reads_the_device_once_and_a_logging_step_twice() {
    let mut c = config();
    c.optim.accumulate = 1; // 6 steps per epoch
    c.checkpoint_every = 0;
    c.log_every = 4;
    let mut seen = ReadCounter::default();
    train(&c, &dir("reads"), false, &Device::flex(), &mut seen).unwrap();
    assert_eq!(seen.steps.len(), 12);
    for pair in seen.steps.windows(2) {
        let [(epoch_a, _, _, reads_a), (epoch_b, batch_b, loss_b, reads_b)] = pair else {
            unreachable!()
        };
        if epoch_a != epoch_b {
            continue; // validation runs between the epochs
        }
        // Batch 4 is the 4th step of the run's first epoch and batch 6 ends an epoch; in
        // the second epoch steps 8 and 12 log (and batch 6 ends it).
        let logs = loss_b.is_some();
        let step = epoch_b * 6 + *batch_b as u64;
        assert_eq!(logs, step.is_multiple_of(4) || *batch_b == 6, "step {step}");
        assert_eq!(
            reads_b - reads_a,
            1 + u64::from(logs),
            "device reads at step {step}"
        );
    }
}

#[test]
fn mixup_and_cutmix_train_deterministically_and_change_the_run() {
    let device = Device::flex();
    let mut mixed = config();
    mixed.optim.epochs = 1;
    mixed.optim.mix = amflow_train::mixing::MixConfig {
        mixup_alpha: 0.8,
        cutmix_alpha: 1.0,
        ..Default::default()
    };
    let mut plain = mixed.clone();
    plain.optim.mix = Default::default();
    let weights = |c: &TrainConfig, tag: &str| {
        let out = train(c, &dir(tag), false, &device, &mut Silent).unwrap();
        assert!(out.history[0].train_loss.is_finite(), "{tag}");
        named_tensors(&out.model.additions)
    };
    let a = weights(&mixed, "mix-a");
    let b = weights(&mixed, "mix-b");
    assert_eq!(a, b, "the same seed mixes the same way");
    let p = weights(&plain, "mix-off");
    let moved = a
        .iter()
        .map(|(k, t)| t.max_abs_diff(&p[k]))
        .fold(0f32, f32::max);
    assert!(moved > 1e-4, "mixing changed nothing ({moved:e})");
}
