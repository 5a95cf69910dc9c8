//! The model on a GPU backend: burn's wgpu backend over OpenGL (on a machine without a GPU,
//! Mesa's llvmpipe), against the CPU backend on the same weights and inputs. Built only with
//! `--features wgpu` (`cargo test -p amflow-train --features wgpu --profile gpu-test --test
//! wgpu_gl`; `.ci/run` and docs/performance.md say what it costs).
//!
//! Forward parity on the tiny presets (vanilla and aligned AM flow, each TPM), the gradient of
//! every trainable parameter, no gradient for a frozen one, one optimizer step, and the bf16
//! backbone. Tolerances: the GPU kernels sum in other orders (tiled products, tree reductions),
//! so values agree to float rounding of sums of a few hundred terms, not bit for bit.
#![cfg(feature = "wgpu")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use amflow::backbone::BackbonePrecision;
use amflow::flow::AmFlowMode;
use amflow::tpm::{TpmConfig, TpmKind};
use amflow::{AmFlowModel, HostTensor, ModelConfig, Preset};
use amflow_train::loss::cross_entropy;
use amflow_train::optim::{AdamW, AdamWConfig, Gradients};
use burn::prelude::*;
use burn::tensor::wgpu::WgpuBackend;

/// Largest absolute difference allowed between the backends' logits and gradients, relative
/// to the largest value (floored at 1): f32 sums in another order.
const TOL: f32 = 1e-4;

/// The wgpu device over OpenGL, initialised once per process (a second `init` is an error).
fn gl() -> Device {
    static GL: OnceLock<Device> = OnceLock::new();
    GL.get_or_init(|| {
        Device::wgpu_options()
            .graphics_api(WgpuBackend::Gl)
            .init()
            .expect("wgpu over OpenGL (install mesa: scripts/setup.sh)")
    })
    .clone()
}

fn tiny(mode: AmFlowMode, tpm: TpmKind) -> ModelConfig {
    let mut c = Preset::Tiny.config();
    c.am_flow = c.am_flow.with_mode(mode);
    c.tpm = TpmConfig::new(tpm);
    c
}

fn clip() -> HostTensor {
    let shape = vec![2, 4, 3, 16, 16];
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
        .collect();
    HostTensor::new(shape, data).unwrap()
}

fn relative(a: &HostTensor, b: &HostTensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    let scale = b.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    a.max_abs_diff(b) / scale
}

/// The gradients of `cross_entropy(model(clip))` by parameter path, on the host, and whether the
/// backbone received any.
fn gradients(config: &ModelConfig, device: &Device) -> (BTreeMap<String, HostTensor>, bool) {
    let ad = device.clone().autodiff();
    let (model, _) = AmFlowModel::new(config, &ad).unwrap();
    let logits = model.forward(clip().to_tensor::<5>(&ad).unwrap()).unwrap();
    let loss = cross_entropy(logits, &[1, 3], 0.1).unwrap();
    let backward = loss.backward();
    let mut additions = Gradients::default();
    additions.accumulate(&model.additions, &backward);
    let mut backbone = Gradients::default();
    backbone.accumulate_under(&model.backbone, &backward, "backbone.");
    let host = additions
        .iter()
        .map(|(name, g)| (name.to_string(), HostTensor::from_tensor(g)))
        .collect();
    (host, !backbone.is_empty())
}

#[test]
fn forward_matches_the_cpu_backend_for_every_am_flow_and_tpm() {
    let gpu = gl();
    for mode in [AmFlowMode::Vanilla, AmFlowMode::Aligned, AmFlowMode::Off] {
        for tpm in [TpmKind::Transformer, TpmKind::Tcn, TpmKind::Lstm] {
            let config = tiny(mode, tpm);
            let logits = |device: &Device| {
                let (model, _) = AmFlowModel::new(&config, device).unwrap();
                let out = model
                    .forward(clip().to_tensor::<5>(device).unwrap())
                    .unwrap();
                HostTensor::from_tensor(&out)
            };
            let e = relative(&logits(&gpu), &logits(&Device::flex()));
            assert!(e <= TOL, "{mode:?}/{tpm:?}: logits differ by {e:e}");
        }
    }
}

#[test]
fn every_trainable_gradient_matches_and_the_frozen_backbone_gets_none() {
    let gpu = gl();
    for (mode, tpm) in [
        (AmFlowMode::Vanilla, TpmKind::Transformer),
        (AmFlowMode::Aligned, TpmKind::Lstm),
        (AmFlowMode::Vanilla, TpmKind::Tcn),
    ] {
        let config = tiny(mode, tpm);
        let (on_gpu, gpu_backbone) = gradients(&config, &gpu);
        let (on_cpu, cpu_backbone) = gradients(&config, &Device::flex());
        assert!(
            !gpu_backbone && !cpu_backbone,
            "a frozen backbone received gradients"
        );
        assert_eq!(
            on_gpu.keys().collect::<Vec<_>>(),
            on_cpu.keys().collect::<Vec<_>>(),
            "{mode:?}/{tpm:?}: every trainable parameter has a gradient on both"
        );
        for (name, g) in &on_gpu {
            let e = relative(g, &on_cpu[name]);
            assert!(
                e <= TOL,
                "{mode:?}/{tpm:?}: gradient of {name} differs by {e:e}"
            );
        }
    }
}

#[test]
fn one_optimizer_step_moves_the_weights_as_on_the_cpu() {
    let config = tiny(AmFlowMode::Aligned, TpmKind::Transformer);
    let step = |device: &Device| {
        let ad = device.clone().autodiff();
        let (model, _) = AmFlowModel::new(&config, &ad).unwrap();
        let logits = model.forward(clip().to_tensor::<5>(&ad).unwrap()).unwrap();
        let backward = cross_entropy(logits, &[0, 4], 0.1).unwrap().backward();
        let mut grads = Gradients::default();
        grads.accumulate(&model.additions, &backward);
        grads.clip_global_norm(1.0);
        // eps 1e-3: AdamW's first step is `lr * g / (|g| + eps)`, a sign for |g| >> eps, so
        // with the default 1e-8 a gradient within float rounding of zero may step either way
        // (2 lr apart); a larger eps makes the step a smooth function of the gradient.
        let mut opt = AdamW::new(AdamWConfig {
            eps: 1e-3,
            ..AdamWConfig::default()
        });
        let additions = opt.step(model.additions, &grads, 1e-3);
        amflow::checkpoint::named_tensors(&additions)
    };
    let (on_gpu, on_cpu) = (step(&gl()), step(&Device::flex()));
    for (name, w) in &on_gpu {
        let e = relative(w, &on_cpu[name]);
        assert!(e <= TOL, "{name} after one step differs by {e:e}");
    }
}

/// The bf16 backbone where the device has bf16 tensors; elsewhere (cubecl's WGSL compiler, as
/// over OpenGL, has none: its kernels failed on the device thread and returned garbage, 0.32
/// relative error) building the model is an error naming the setting.
#[test]
fn the_bf16_backbone_is_close_to_f32_or_refused() {
    use burn::tensor::DType;
    let gpu = gl();
    let config = tiny(AmFlowMode::Vanilla, TpmKind::Transformer);
    let mut half = config.clone();
    half.backbone.precision = BackbonePrecision::Bf16;
    if !gpu.supports_dtype(DType::BF16) {
        let err = AmFlowModel::new(&half, &gpu).unwrap_err().to_string();
        assert!(err.contains("bf16"), "{err}");
        return;
    }
    let logits = |config: &ModelConfig, device: &Device| {
        let (model, _) = AmFlowModel::new(config, device).unwrap();
        HostTensor::from_tensor(
            &model
                .forward(clip().to_tensor::<5>(device).unwrap())
                .unwrap(),
        )
    };
    let e = relative(&logits(&half, &gpu), &logits(&config, &Device::flex()));
    // bf16 keeps 8 significant bits: about 3e-3 per product, a few of them in sequence.
    assert!(e > 0.0 && e < 3e-2, "bf16 logits differ from f32 by {e:e}");
}
