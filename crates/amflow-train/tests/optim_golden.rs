//! Golden test of [`AdamW`] and [`Gradients::clip_global_norm`] against PyTorch
//! (`torch.optim.AdamW` + `torch.nn.utils.clip_grad_norm_`): five steps on a tiny module with a
//! rank-2 parameter (weight decay) and a rank-1 one (no weight decay), a learning rate that
//! changes every step, global-norm clipping that triggers on four steps and not on the third,
//! and gradients that depend on the parameters (so every step's error carries into the next).
//! The gradients come from a real backward pass; the expected numbers are hard-coded below with
//! the PyTorch snippet that produced them.

use amflow::HostTensor;
use amflow_train::optim::{AdamW, AdamWConfig, Gradients};
use burn::module::{Module, Param};
use burn::prelude::*;

/// A rank-2 parameter (decayed) and a rank-1 one (not decayed, `decays` says rank <= 1).
#[derive(Module, Debug)]
struct Toy {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

/// The learning rate of each step (a schedule).
const LRS: [f64; 5] = [0.1, 0.05, 0.02, 0.08, 0.01];
/// The loss's scale at each step: the global norm clips at steps 1, 2, 4, 5, not at step 3.
const SCALES: [f32; 5] = [4.0, 1.0, 0.0625, 2.0, 0.5];
const MAX_NORM: f64 = 1.0;

/// Tolerance, relative to max(|expected|, 0.1) (the floor keeps entries near zero from asking
/// more than f32 can give): f32 carries ~6e-8 relative per operation and the two
/// implementations round differently (torch's `lerp_`/`addcdiv_` and per-tensor norms vs. our
/// `mul`/`add`/`div` and summed squares). Measured over these five steps: at most 2.2e-7 for the
/// parameters (2.2e-8 absolute on a bias entry near 0.1: a few ulps) and 5.1e-8 for the norms, so 1e-6
/// leaves a ~4.5x margin, while a wrong formula is off by 1e-3 or more (no weight decay: 1.4e-2
/// at step 1; no clipping: 3.9e-2 at step 2; both checked by mutating this test).
const TOL: f64 = 1e-6;

/// Expected (global norm before clipping, weight after the step, bias after the step) of each
/// step, printed by this snippet with PyTorch 2.15.0+cu132 on the CPU (float32):
///
/// ```python
/// import torch
///
/// LRS = [0.1, 0.05, 0.02, 0.08, 0.01]
/// SCALES = [4.0, 1.0, 0.0625, 2.0, 0.5]
/// MAX_NORM = 1.0
/// w = torch.tensor([((i * 5) % 7 - 3) * 0.125 for i in range(6)]).reshape(2, 3).requires_grad_()
/// b = torch.tensor([0.5, -0.25, 0.125], requires_grad=True)
/// opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1},
///                          {"params": [b], "weight_decay": 0.0}],
///                         lr=0.0, betas=(0.9, 0.999), eps=1e-8)
/// for t, (lr, s) in enumerate(zip(LRS, SCALES)):
///     cw = torch.tensor([((i * 7 + t * 3) % 11 - 5) * 0.25 for i in range(6)]).reshape(2, 3)
///     cb = torch.tensor([((j * 3 + t * 5) % 7 - 3) * 0.5 for j in range(3)])
///     loss = s * ((w * cw).sum() + (b * cb).sum()) + 0.5 * ((w * w).sum() + (b * b).sum())
///     opt.zero_grad()
///     loss.backward()
///     norm = torch.nn.utils.clip_grad_norm_([w, b], MAX_NORM)
///     for group in opt.param_groups:
///         group["lr"] = lr
///     opt.step()
///     f = lambda x: ", ".join(f"{v:.9e}" for v in x.detach().flatten().tolist())
///     print(f"({norm.item():.9e}, [{f(w)}], [{f(b)}]),")
/// ```
#[allow(clippy::excessive_precision)]
const EXPECTED: [(f64, [f64; 6], [f64; 3]); 5] = [
    (
        1.176860237e+01,
        [
            -2.712500095e-01,
            1.475000083e-01,
            9.999997914e-02,
            -3.474999964e-01,
            2.712500095e-01,
            2.237499952e-01,
        ],
        [6.000000238e-01, -1.500000656e-01, 2.499999851e-02],
    ),
    (
        3.114338636e+00,
        [
            -2.227032483e-01,
            9.940387309e-02,
            1.069106013e-01,
            -3.465163112e-01,
            2.249069959e-01,
            2.442691922e-01,
        ],
        [5.950090885e-01, -1.109313443e-01, -1.834130287e-02],
    ),
    (
        8.138461113e-01,
        [
            -2.039710730e-01,
            8.327721059e-02,
            1.002854481e-01,
            -3.390769958e-01,
            2.068994790e-01,
            2.385619283e-01,
        ],
        [5.855216980e-01, -9.827113152e-02, -3.053314425e-02],
    ),
    (
        5.038582802e+00,
        [
            -1.768388450e-01,
            2.888506278e-02,
            1.254614443e-01,
            -3.313800395e-01,
            1.540883332e-01,
            2.607273757e-01,
        ],
        [5.694605112e-01, -8.117773384e-02, -2.310055122e-02],
    ),
    (
        1.943550110e+00,
        [
            -1.717386395e-01,
            2.150077373e-02,
            1.280778795e-01,
            -3.274167776e-01,
            1.467571259e-01,
            2.629591823e-01,
        ],
        [5.649175048e-01, -7.741924375e-02, -2.392376401e-02],
    ),
];

fn tensor<const D: usize>(shape: [usize; D], data: Vec<f32>, device: &Device) -> Tensor<D> {
    HostTensor::new(shape.to_vec(), data)
        .unwrap()
        .to_tensor::<D>(device)
        .unwrap()
}

/// `(k % m - off) * scale`, the snippet's exact-in-f32 integer patterns.
fn pattern(n: usize, k: impl Fn(usize) -> usize, m: usize, off: f32, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((k(i) % m) as f32 - off) * scale).collect()
}

fn assert_close(what: &str, got: f64, want: f64) {
    let err = (got - want).abs() / want.abs().max(0.1);
    assert!(
        err <= TOL,
        "{what}: got {got:.9e}, want {want:.9e} (relative error {err:.1e} > {TOL:e})"
    );
}

#[test]
fn adamw_with_global_norm_clipping_matches_pytorch() {
    let device = Device::flex().autodiff();
    let mut toy = Toy {
        weight: Param::from_tensor(
            tensor([2, 3], pattern(6, |i| i * 5, 7, 3.0, 0.125), &device).require_grad(),
        ),
        bias: Param::from_tensor(tensor([3], vec![0.5, -0.25, 0.125], &device).require_grad()),
    };
    let mut opt = AdamW::new(AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    });
    for (t, ((lr, s), (norm, w, b))) in LRS.iter().zip(SCALES).zip(EXPECTED).enumerate() {
        let cw = tensor(
            [2, 3],
            pattern(6, |i| i * 7 + t * 3, 11, 5.0, 0.25),
            &device,
        );
        let cb = tensor([3], pattern(3, |j| j * 3 + t * 5, 7, 3.0, 0.5), &device);
        let (wv, bv) = (toy.weight.val(), toy.bias.val());
        let loss = ((wv.clone() * cw).sum() + (bv.clone() * cb).sum()).mul_scalar(s)
            + ((wv.clone() * wv).sum() + (bv.clone() * bv).sum()).mul_scalar(0.5);
        let backward = loss.backward();
        let mut grads = Gradients::default();
        grads.accumulate(&toy, &backward);
        assert_eq!(
            grads.len(),
            2,
            "step {}: both parameters have gradients",
            t + 1
        );
        let got_norm = grads.clip_global_norm(MAX_NORM);
        assert_close(&format!("step {} global norm", t + 1), got_norm, norm);
        let clipped = grads.global_norm();
        if norm > MAX_NORM {
            // clip_grad_norm_ scales by max_norm / (norm + 1e-6), as ours does.
            let want = MAX_NORM * norm / (norm + 1e-6);
            assert_close(&format!("step {} clipped norm", t + 1), clipped, want);
        } else {
            assert_eq!(clipped, got_norm, "step {}: not clipped", t + 1);
        }
        toy = opt.step(toy, &grads, *lr);
        assert_eq!(opt.step, t as u64 + 1);
        let got_w = HostTensor::from_tensor(&toy.weight.val());
        let got_b = HostTensor::from_tensor(&toy.bias.val());
        assert_eq!(got_w.shape, vec![2, 3]);
        for (i, (g, e)) in got_w.data.iter().zip(w).enumerate() {
            assert_close(&format!("step {} weight[{i}]", t + 1), *g as f64, e);
        }
        for (i, (g, e)) in got_b.data.iter().zip(b).enumerate() {
            assert_close(&format!("step {} bias[{i}]", t + 1), *g as f64, e);
        }
    }
}
