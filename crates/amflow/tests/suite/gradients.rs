//! Gradients: the frozen backbone never receives a weight gradient (it is not even computed),
//! every trainable parameter receives a non-zero one after one optimizer step on random data,
//! and finite differences agree with autodiff for AM flow (vanilla and aligned, through the
//! attention into its inputs) and for an adapter.

use std::cell::RefCell;
use std::collections::BTreeMap;

use amflow::adapter::ScaledParallelAdapter;
use amflow::flow::{aligned_am_flow, vanilla_am_flow, AligningEncoder, AligningEncoderConfig};
use amflow::nn::{RandomSource, TensorSource, VarBuilder};
use amflow::tpm::TpmConfig;
use amflow::{AmFlowModel, HostTensor, Preset};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::Gradients;

/// Records, per parameter path, whether it has a gradient and its L1 norm.
struct GradProbe<'a> {
    grads: &'a Gradients,
    stack: Vec<String>,
    seen: BTreeMap<String, Option<f32>>,
}

impl ModuleVisitor for GradProbe<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        if !container.starts_with("Enum:") {
            self.stack.push(name.into());
        }
    }
    fn exit_module(&mut self, _: &str, container: &str) {
        if !container.starts_with("Enum:") {
            self.stack.pop();
        }
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let g = param.val().grad(self.grads).map(|g| {
            HostTensor::from_tensor(&g)
                .data
                .iter()
                .map(|v| v.abs())
                .sum()
        });
        self.seen.insert(self.stack.join("."), g);
    }
}

fn probe<M: Module>(module: &M, grads: &Gradients) -> BTreeMap<String, Option<f32>> {
    let mut p = GradProbe {
        grads,
        stack: vec![],
        seen: BTreeMap::new(),
    };
    module.visit(&mut p);
    p.seen
}

fn loss(model: &AmFlowModel, clip: Tensor<5>, weights: Tensor<2>) -> Tensor<1> {
    (model.forward(clip).unwrap() * weights).sum()
}

#[test]
fn backbone_is_frozen_and_every_trainable_parameter_learns() {
    let device = Device::flex().autodiff();
    for (mode, tpm, precision) in [
        ("aligned", "transformer", "f32"),
        ("vanilla", "tcn", "f32"),
        ("vanilla", "lstm", "f32"),
        ("aligned", "transformer", "bf16"), // mixed-precision frozen backbone
    ] {
        let mut config = Preset::Tiny.config();
        config.backbone.precision = serde_json::from_value(serde_json::json!(precision)).unwrap();
        config.am_flow = config
            .am_flow
            .with_mode(serde_json::from_value(serde_json::json!(mode)).unwrap());
        config.tpm = TpmConfig::new(serde_json::from_value(serde_json::json!(tpm)).unwrap());
        config.temporal_blocks = "AM/1(2)".parse().unwrap(); // block 1 plain, block 2 temporal
        let (mut model, _) = AmFlowModel::new(&config, &device).unwrap();
        let clip = Tensor::<5>::random([2, 4, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let weights = Tensor::<2>::random([2, 5], Distribution::Normal(0.0, 1.0), &device);

        let grads = loss(&model, clip.clone().require_grad(), weights.clone()).backward();
        let backbone = probe(&model.backbone, &grads);
        assert!(!backbone.is_empty());
        for (name, g) in &backbone {
            assert!(
                g.is_none(),
                "{mode}/{tpm}: frozen `{name}` received a gradient"
            );
        }
        // Gradients flow through the backbone's activations down to the input pixels.
        let input_grad_flows = {
            let clip = clip.clone().require_grad();
            let grads = loss(&model, clip.clone(), weights.clone()).backward();
            clip.grad(&grads)
                .map(|g| HostTensor::from_tensor(&g).data.iter().any(|v| *v != 0.0))
        };
        assert_eq!(
            input_grad_flows,
            Some(true),
            "{mode}/{tpm}: no gradient reached the input"
        );

        // One AdamW step makes Up non-zero; then every trainable parameter has a gradient.
        let mut optim = AdamWConfig::new().init();
        let grads_params = GradientsParams::from_grads(grads, &model.additions);
        model.additions = optim.step(1e-2, model.additions, grads_params);
        let grads = loss(&model, clip, weights).backward();
        let trainable = probe(&model.additions, &grads);
        assert!(trainable.len() > 20);
        for (name, g) in &trainable {
            match g {
                Some(v) if *v > 0.0 => {}
                other => panic!("{mode}/{tpm}: trainable `{name}` got gradient {other:?}"),
            }
        }
    }
}

#[test]
fn abs_has_zero_derivative_at_zero() {
    let device = Device::flex().autodiff();
    let x = Tensor::<1>::from_floats([0.0, 2.0, -3.0], &device).require_grad();
    let grads = x.clone().abs().sum().backward();
    assert_eq!(
        HostTensor::from_tensor(&x.grad(&grads).unwrap()).data,
        vec![0.0, 1.0, -1.0]
    );
}

/// Central finite differences of `f` at `x` versus autodiff, on a few coordinates.
fn check_fd(what: &str, x: HostTensor, f: impl Fn(Tensor<4>) -> Tensor<1>) {
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    let xt = x.to_tensor::<4>(&ad).unwrap().require_grad();
    let grads = f(xt.clone()).backward();
    let analytic = HostTensor::from_tensor(&xt.grad(&grads).unwrap());
    let eval = |v: &HostTensor| -> f64 {
        let out = f(v.to_tensor::<4>(&plain).unwrap());
        HostTensor::from_tensor(&out).data[0] as f64
    };
    let eps = 1e-2f32;
    let step = (x.data.len() / 13).max(1);
    let mut checked = 0;
    for i in (0..x.data.len()).step_by(step) {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus.data[i] += eps;
        minus.data[i] -= eps;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * eps as f64);
        let a = analytic.data[i] as f64;
        assert!(
            (numeric - a).abs() <= 2e-3 + 2e-2 * a.abs().max(numeric.abs()),
            "{what}[{i}]: finite difference {numeric} vs autodiff {a}"
        );
        checked += 1;
    }
    assert!(checked >= 10);
}

fn random_host(shape: Vec<usize>, seed: u64) -> HostTensor {
    let mut rng = amflow::init::seed_rng(seed);
    let n = shape.iter().product();
    HostTensor::new(shape, (0..n).map(|_| rng.normal() as f32).collect()).unwrap()
}

#[test]
fn finite_differences_agree_for_vanilla_am_flow() {
    let (b, t, h, n) = (1, 3, 2, 4);
    let w = random_host(vec![b * t, n, h], 1);
    check_fd(
        "vanilla AM flow",
        random_host(vec![b * t, h, n, n], 2),
        |logits| {
            let wt = w.to_tensor::<3>(&logits.device()).unwrap();
            (vanilla_am_flow(logits, b) * wt).sum()
        },
    );
}

#[test]
fn finite_differences_agree_for_aligned_am_flow() {
    let (b, t, h, n, d) = (1, 3, 2, 4, 12);
    let w = random_host(vec![b * t, n, d], 3);
    let build = |device: &Device| {
        let source = RefCell::new(RandomSource::new(9));
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        AligningEncoder::new(
            &vb,
            &AligningEncoderConfig {
                dim: d,
                layers: 1,
                heads: 12,
                mlp_ratio: 4,
            },
            h,
            n,
        )
        .unwrap()
    };
    check_fd(
        "aligned AM flow",
        random_host(vec![b * t, h, n, n], 4),
        |logits| {
            let device = logits.device();
            let encoder = build(&device);
            let probs = burn::tensor::activation::softmax(logits, 3);
            let wt = w.to_tensor::<3>(&device).unwrap();
            (aligned_am_flow(probs, b, &encoder) * wt).sum()
        },
    );
}

#[test]
fn finite_differences_agree_for_an_adapter() {
    let (rows, d_in, r, d) = (2, 6, 3, 5);
    let w = random_host(vec![1, 1, rows, d], 5);
    let build = |device: &Device| {
        let source = RefCell::new(RandomSource::new(10));
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        let a = ScaledParallelAdapter::new(&vb, d_in, r, d).unwrap();
        // A non-zero Up, so that the input gradient is not trivially zero.
        let up = a.up.weight.val().ones_like().mul_scalar(0.3);
        ScaledParallelAdapter {
            up: amflow::nn::Linear {
                weight: Param::from_tensor(up),
                bias: a.up.bias,
            },
            ..a
        }
    };
    check_fd("adapter", random_host(vec![1, 1, rows, d_in], 6), |x| {
        let device = x.device();
        let adapter = build(&device);
        let wt = w.to_tensor::<4>(&device).unwrap();
        (adapter.project(adapter.bottleneck(x)) * wt).sum()
    });
}
