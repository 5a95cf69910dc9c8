//! A block's residual update with its two scaled branches as one operation (model spec,
//! section 1): `x' = x + g * (att + b_att) + s * (Up(E) + b_up)`, `g` the sub-layer's LayerScale
//! (`[D]`, ones when the backbone has none), `s` the adapter's scalar scale, and the biases of
//! the two branches' last linear layers added here rather than by the layers (whose products
//! then write their outputs without a bias-filled start: two memory passes fewer per branch).
//!
//! burn computes it as four element-wise ops (two products, two sums), each a pass over the
//! `[B T, N, D]` residual stream on one thread of its CPU backend, and its backward as more of
//! them (the product with `s` keeps `Up(E)` and sums `grad * Up(E)`). Here the forward is one
//! pass, in place on `x` when the tensor is held alone, with the rows split over the cores, and
//! the backward writes each gradient in one pass: `dx = grad`, `d att = g * grad`,
//! `d Up(E) = s grad`, `ds = sum(grad * (Up(E) + b_up))`, `dg = sum_rows(grad * (att + b_att))`,
//! the biases' gradients the column sums of their branches' (each only when it trains). The
//! forward rounds as the linear layer and burn do (`(x + (att + b_att) g) + (Up(E) + b_up) s`,
//! no fused multiply-add), so both give the same values.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;

use crate::flex_host::{contiguous, map_in_place, on_cpu_f32, tensor_of, values, with_backward};
use crate::host_kernels::{rows_per_part, run_parts, Kernel};

/// The fused residual update as a backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait ResidualOps: burn::backend::Backend {
    /// `x + gamma * (a + a_bias) + s * (u + u_bias)` for `x`, `a`, `u` `[..., d]`, `gamma` and
    /// the biases `[d]`, `s` `[1]`. The backward keeps `a` only when `keep_a` (`gamma` trains)
    /// and `u` only when `keep_u` (`s` trains).
    #[allow(clippy::too_many_arguments)]
    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        a_bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        u: FloatTensor<Self>,
        u_bias: FloatTensor<Self>,
        s: FloatTensor<Self>,
        keep_a: bool,
        keep_u: bool,
    ) -> FloatTensor<Self>;
}

/// The small operands, contiguous: the two biases, `gamma` (`[d]` each) and `s`.
#[derive(Debug, Clone)]
struct Small {
    a_bias: FlexTensor,
    gamma: FlexTensor,
    u_bias: FlexTensor,
    s: f32,
}

impl Small {
    fn of(a_bias: FlexTensor, gamma: FlexTensor, u_bias: FlexTensor, s: FlexTensor) -> Self {
        Self {
            a_bias: contiguous(a_bias),
            gamma: contiguous(gamma),
            u_bias: contiguous(u_bias),
            s: values(&contiguous(s))[0],
        }
    }

    fn update(&self) -> Update<'_> {
        Update {
            a_bias: values(&self.a_bias),
            gamma: values(&self.gamma),
            u_bias: values(&self.u_bias),
            s: self.s,
        }
    }
}

impl ResidualOps for Flex {
    fn fused_residual(
        x: FlexTensor,
        a: FlexTensor,
        a_bias: FlexTensor,
        gamma: FlexTensor,
        u: FlexTensor,
        u_bias: FlexTensor,
        s: FlexTensor,
        _: bool,
        _: bool,
    ) -> FlexTensor {
        let small = Small::of(a_bias, gamma, u_bias, s);
        forward(x, &contiguous(a), &contiguous(u), small.update())
    }
}

fn forward(x: FlexTensor, a: &FlexTensor, u: &FlexTensor, update: Update<'_>) -> FlexTensor {
    let (a, u) = (values(a), values(u));
    let d = update.gamma.len().max(1);
    map_in_place(contiguous(x), |x| {
        assert!(x.len() == a.len() && x.len() == u.len() && x.len() % d == 0);
        let rows = (rows_per_part(x.len() / d, d) * d).max(1);
        run_parts(
            x.chunks_mut(rows).zip(a.chunks(rows).zip(u.chunks(rows))),
            update,
        );
    })
}

/// `x <- (x + (a + a_bias) gamma) + (u + u_bias) s`, row by row.
#[derive(Clone, Copy)]
struct Update<'g> {
    a_bias: &'g [f32],
    gamma: &'g [f32],
    u_bias: &'g [f32],
    s: f32,
}

impl<'p> Kernel<(&'p mut [f32], (&'p [f32], &'p [f32]))> for Update<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, (x, (a, u)): (&'p mut [f32], (&'p [f32], &'p [f32]))) {
        let d = self.gamma.len();
        let columns = self.a_bias.iter().zip(self.gamma).zip(self.u_bias);
        for ((x, a), u) in x
            .chunks_exact_mut(d)
            .zip(a.chunks_exact(d))
            .zip(u.chunks_exact(d))
        {
            for (((x, &a), &u), ((&ba, &g), &bu)) in x.iter_mut().zip(a).zip(u).zip(columns.clone())
            {
                *x = (*x + (a + ba) * g) + (u + bu) * self.s;
            }
        }
    }
}

#[derive(Debug)]
struct ResidualBackward;

/// What the backward needs: `a` (for `dgamma`) and `u` (for `ds`) when those train, and the
/// small operands.
#[derive(Debug, Clone)]
struct ResidualState {
    a: Option<FlexTensor>,
    u: Option<FlexTensor>,
    small: Small,
}

impl Backward<Flex, 7> for ResidualBackward {
    type State = ResidualState;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_a, node_a_bias, node_gamma, node_u, node_u_bias, node_s] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let ResidualState { a, u, small } = ops.state;
        let shape = grad.layout().shape().clone();
        let g = values(&grad);
        let update = small.update();
        let d = update.gamma.len();
        if node_a.is_some() || node_a_bias.is_some() {
            let mut da = vec![0.0f32; g.len()];
            rowwise(&mut da, g, d, ScaleRows(RowScale::Columns(update.gamma)));
            if let Some(node) = node_a_bias {
                let db = crate::host_kernels::column_sums(&da, d);
                grads.register::<Flex>(node.id, tensor_of(db, [d]));
            }
            if let Some(node) = node_a {
                grads.register::<Flex>(node.id, tensor_of(da, shape.clone()));
            }
        }
        if node_u.is_some() || node_u_bias.is_some() {
            let mut du = vec![0.0f32; g.len()];
            rowwise(&mut du, g, d, ScaleRows(RowScale::Scalar(update.s)));
            if let Some(node) = node_u_bias {
                let db = crate::host_kernels::column_sums(&du, d);
                grads.register::<Flex>(node.id, tensor_of(db, [d]));
            }
            if let Some(node) = node_u {
                grads.register::<Flex>(node.id, tensor_of(du, shape.clone()));
            }
        }
        // sum_rows(grad), for ds and dgamma (both only with a trainable backbone's LayerScale
        // or the adapter's scale): computed once.
        let grad_columns = std::cell::OnceCell::new();
        if let Some(node) = node_s {
            // sum(grad * (u + u_bias)) = sum(grad * u) + sum_j u_bias_j sum_rows(grad)_j
            let u = u.expect("kept when s trains");
            let columns = grad_columns.get_or_init(|| crate::host_kernels::column_sums(g, d));
            let with_bias: f32 = columns.iter().zip(update.u_bias).map(|(c, b)| c * b).sum();
            let ds = crate::host_kernels::dot_parallel(g, values(&u)) + with_bias;
            grads.register::<Flex>(node.id, tensor_of(vec![ds], [1]));
        }
        if let Some(node) = node_gamma {
            // sum_rows(grad * (a + a_bias)) = sum_rows(grad * a) + a_bias sum_rows(grad)
            let a = a.expect("kept when gamma trains");
            let columns = grad_columns.get_or_init(|| crate::host_kernels::column_sums(g, d));
            let dgamma: Vec<f32> = crate::host_kernels::column_dots(g, values(&a), d)
                .into_iter()
                .zip(columns.iter().zip(update.a_bias))
                .map(|(ga, (c, b))| ga + c * b)
                .collect();
            grads.register::<Flex>(node.id, tensor_of(dgamma, [d]));
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, grad);
        }
    }
}

/// How [`ScaleRows`] scales each row.
#[derive(Clone, Copy)]
enum RowScale<'g> {
    /// Element `j` of every row by `gamma[j]`.
    Columns(&'g [f32]),
    /// Every element by one number.
    Scalar(f32),
}

/// `out = g * scale`, row by row.
#[derive(Clone, Copy)]
struct ScaleRows<'g>(RowScale<'g>);

impl<'p> Kernel<(&'p mut [f32], &'p [f32])> for ScaleRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, (out, g): (&'p mut [f32], &'p [f32])) {
        match self.0 {
            RowScale::Columns(gamma) => {
                let d = gamma.len();
                for (out, g) in out.chunks_exact_mut(d).zip(g.chunks_exact(d)) {
                    for ((o, &g), &c) in out.iter_mut().zip(g).zip(gamma) {
                        *o = g * c;
                    }
                }
            }
            RowScale::Scalar(s) => {
                for (o, &g) in out.iter_mut().zip(g) {
                    *o = g * s;
                }
            }
        }
    }
}

/// Runs `kernel` on `(out, g)` in parts of whole rows of `d` values, over the cores.
fn rowwise<'p, K: Kernel<(&'p mut [f32], &'p [f32]), Output = ()>>(
    out: &'p mut [f32],
    g: &'p [f32],
    d: usize,
    kernel: K,
) {
    let rows = (rows_per_part(g.len() / d.max(1), d) * d).max(1);
    run_parts(out.chunks_mut(rows).zip(g.chunks(rows)), kernel);
}

impl<C: CheckpointStrategy> ResidualOps for Autodiff<Flex, C> {
    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        a_bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        u: FloatTensor<Self>,
        u_bias: FloatTensor<Self>,
        s: FloatTensor<Self>,
        keep_a: bool,
        keep_u: bool,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ResidualBackward,
            [x, a, a_bias, gamma, u, u_bias, s],
            |[x, a, a_bias, gamma, u, u_bias, s]| {
                let (a, u) = (contiguous(a), contiguous(u));
                let small = Small::of(a_bias, gamma, u_bias, s);
                let y = forward(x, &a, &u, small.update());
                let state = ResidualState {
                    a: keep_a.then_some(a),
                    u: keep_u.then_some(u),
                    small,
                };
                (state, y)
            },
            |[x, a, a_bias, gamma, u, u_bias, s]| {
                Flex::fused_residual(x, a, a_bias, gamma, u, u_bias, s, keep_a, keep_u)
            },
        )
    }
}

/// The operands of [`residual`]: the residual stream and its two branches (`[rows, tokens, d]`
/// each), the branches' biases and the LayerScale (`[d]`, none for zeros and ones), the scale.
#[derive(Debug, Clone)]
pub struct Residual {
    /// The residual stream `x`.
    pub x: Tensor<3>,
    /// The frozen sub-layer's output before its bias.
    pub branch: Tensor<3>,
    /// The sub-layer's last bias.
    pub branch_bias: Option<Tensor<1>>,
    /// The sub-layer's LayerScale `g`.
    pub layer_scale: Option<Tensor<1>>,
    /// The adapter's `Up(E)` before its bias.
    pub up: Tensor<3>,
    /// `Up`'s bias.
    pub up_bias: Option<Tensor<1>>,
    /// The adapter's scale `s`, `[1]`.
    pub scale: Tensor<1>,
}

/// `x + g (branch + b) + s (up + b_up)`: the fused op for `f32` CPU tensors, burn's ops
/// otherwise.
pub fn residual(r: Residual) -> Tensor<3> {
    let d = r.x.dims()[2];
    let device = r.x.device();
    let smalls = [&r.branch_bias, &r.layer_scale, &r.up_bias];
    let cpu = [&r.x, &r.branch, &r.up].iter().all(|t| on_cpu_f32(t))
        && on_cpu_f32(&r.scale)
        && smalls.iter().all(|t| t.as_ref().is_none_or(on_cpu_f32));
    if !cpu {
        return with_burn_ops(r);
    }
    let zeros = || Tensor::zeros([d], &device);
    let gamma = r.layer_scale.unwrap_or_else(|| Tensor::ones([d], &device));
    let (keep_a, keep_u) = (gamma.is_tracked(), r.scale.is_tracked());
    Tensor::from_dispatch(<Dispatch as ResidualOps>::fused_residual(
        r.x.into_dispatch(),
        r.branch.into_dispatch(),
        r.branch_bias.unwrap_or_else(zeros).into_dispatch(),
        gamma.into_dispatch(),
        r.up.into_dispatch(),
        r.up_bias.unwrap_or_else(zeros).into_dispatch(),
        r.scale.into_dispatch(),
        keep_a,
        keep_u,
    ))
}

/// [`residual`] in burn's ops (any backend and dtype).
fn with_burn_ops(r: Residual) -> Tensor<3> {
    let with_bias = |t: Tensor<3>, b: Option<Tensor<1>>| match b {
        Some(b) => t + b.unsqueeze::<3>(),
        None => t,
    };
    let branch = with_bias(r.branch, r.branch_bias);
    let branch = match r.layer_scale {
        Some(g) => branch * g.unsqueeze::<3>(),
        None => branch,
    };
    r.x + branch + with_bias(r.up, r.up_bias) * r.scale.unsqueeze::<3>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::testing::{host, random, relative_error};

    /// Values and every gradient match burn's ops, for a stream split over the cores and small
    /// ones, with and without LayerScale and biases, with a trainable and a frozen LayerScale.
    #[test]
    fn values_and_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        for (shape, with_gamma, gamma_trains, biases) in [
            ([16, 257, 384], true, false, true),
            ([3, 5, 8], true, true, true),
            ([2, 7, 6], false, false, false),
            ([2, 7, 6], true, true, false),
        ] {
            let d = shape[2];
            let leaf3 = |t: Tensor<3>| t.require_grad();
            let (x, a, u) = (
                leaf3(random(shape, 1.0, &device)),
                leaf3(random(shape, 1.0, &device)),
                leaf3(random(shape, 1.0, &device)),
            );
            let s = random([1], 1.0, &device).require_grad();
            let gamma = with_gamma.then(|| {
                let g = random([d], 1.0, &device);
                if gamma_trains {
                    g.require_grad()
                } else {
                    g
                }
            });
            // The branch's bias frozen (the backbone's), Up's trainable.
            let branch_bias = biases.then(|| random([d], 1.0, &device));
            let up_bias = biases.then(|| random([d], 1.0, &device).require_grad());
            let operands = Residual {
                x: x.clone(),
                branch: a.clone(),
                branch_bias,
                layer_scale: gamma.clone(),
                up: u.clone(),
                up_bias: up_bias.clone(),
                scale: s.clone(),
            };
            let fused = residual(operands.clone());
            let reference = with_burn_ops(operands);
            assert!(relative_error(&host(fused.clone()), &host(reference.clone())) < 1e-7);
            let weights = random(shape, 1.0, &device);
            let gf = (fused * weights.clone()).sum().backward();
            let gr = (reference * weights).sum().backward();
            for (name, t) in [("x", &x), ("a", &a), ("u", &u)] {
                let (f, r) = (t.grad(&gf).unwrap(), t.grad(&gr).unwrap());
                assert!(
                    relative_error(&host(f), &host(r)) < 1e-6,
                    "d{name} of {shape:?}"
                );
            }
            let (f, r) = (s.grad(&gf).unwrap(), s.grad(&gr).unwrap());
            assert!(relative_error(&host(f), &host(r)) < 1e-4, "ds of {shape:?}");
            if let Some(b) = &up_bias {
                let (f, r) = (b.grad(&gf).unwrap(), b.grad(&gr).unwrap());
                assert!(
                    relative_error(&host(f), &host(r)) < 1e-5,
                    "dup_bias of {shape:?}"
                );
            }
            match (&gamma, gamma_trains) {
                (Some(g), true) => {
                    let (f, r) = (g.grad(&gf).unwrap(), g.grad(&gr).unwrap());
                    assert!(
                        relative_error(&host(f), &host(r)) < 1e-5,
                        "dgamma of {shape:?}"
                    );
                }
                (Some(g), false) => assert!(g.grad(&gf).is_none(), "a frozen LayerScale"),
                (None, _) => {}
            }
        }
    }

    /// Outside the graph the op gives burn's values.
    #[test]
    fn untracked_values_match_burns_ops() {
        let device = Device::flex();
        let shape = [8, 257, 384];
        let operands = Residual {
            x: random(shape, 1.0, &device),
            branch: random(shape, 1.0, &device),
            branch_bias: Some(random([384], 1.0, &device)),
            layer_scale: Some(random([384], 1.0, &device)),
            up: random(shape, 1.0, &device),
            up_bias: Some(random([384], 1.0, &device)),
            scale: random([1], 1.0, &device),
        };
        let reference = host(with_burn_ops(operands.clone()));
        assert_eq!(host(residual(operands)), reference);
    }
}
