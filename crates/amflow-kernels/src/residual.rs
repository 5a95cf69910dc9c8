//! A block's residual update with its two scaled branches as one operation (model spec,
//! section 1): `x' = x + g * att + s * Up(E)`, `g` the sub-layer's LayerScale (`[D]`, ones when
//! the backbone has none) and `s` the adapter's scalar scale.
//!
//! burn computes it as four element-wise ops (two products, two sums), each a pass over the
//! `[B T, N, D]` residual stream on one thread of its CPU backend, and its backward as more of
//! them (the product with `s` keeps `Up(E)` and sums `grad * Up(E)`). Here the forward is one
//! pass, in place on `x` when the tensor is held alone, with the rows split over the cores, and
//! the backward writes each gradient in one pass: `dx = grad`, `d att = g * grad`,
//! `d Up(E) = s grad`, `ds = sum(grad * Up(E))`, `dg = sum_rows(grad * att)` (the last only with
//! a trainable backbone). The forward rounds as burn does (`(x + att g) + Up(E) s`, no fused
//! multiply-add), so both give the same values.

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
    /// `x + gamma * a + s * u` for `x`, `a`, `u` `[..., d]`, `gamma` `[d]`, `s` `[1]`. The
    /// backward keeps `a` only when `keep_a` (`gamma` trains) and `u` only when `keep_u` (`s`
    /// trains).
    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        u: FloatTensor<Self>,
        s: FloatTensor<Self>,
        keep_a: bool,
        keep_u: bool,
    ) -> FloatTensor<Self>;
}

impl ResidualOps for Flex {
    fn fused_residual(
        x: FlexTensor,
        a: FlexTensor,
        gamma: FlexTensor,
        u: FlexTensor,
        s: FlexTensor,
        _: bool,
        _: bool,
    ) -> FlexTensor {
        forward(
            x,
            &contiguous(a),
            &contiguous(gamma),
            &contiguous(u),
            &contiguous(s),
        )
    }
}

fn forward(
    x: FlexTensor,
    a: &FlexTensor,
    gamma: &FlexTensor,
    u: &FlexTensor,
    s: &FlexTensor,
) -> FlexTensor {
    let (a, gamma, u, s) = (values(a), values(gamma), values(u), values(s)[0]);
    let d = gamma.len();
    map_in_place(contiguous(x), |x| {
        assert!(x.len() == a.len() && x.len() == u.len() && x.len() % d.max(1) == 0);
        let rows = rows_per_part(x.len() / d.max(1), d) * d;
        run_parts(
            x.chunks_mut(rows.max(1))
                .zip(a.chunks(rows.max(1)).zip(u.chunks(rows.max(1)))),
            Update { gamma, s },
        );
    })
}

/// `x <- (x + a gamma) + u s`, row by row.
#[derive(Clone, Copy)]
struct Update<'g> {
    gamma: &'g [f32],
    s: f32,
}

impl<'p> Kernel<(&'p mut [f32], (&'p [f32], &'p [f32]))> for Update<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, (x, (a, u)): (&'p mut [f32], (&'p [f32], &'p [f32]))) {
        let d = self.gamma.len();
        for ((x, a), u) in x
            .chunks_exact_mut(d)
            .zip(a.chunks_exact(d))
            .zip(u.chunks_exact(d))
        {
            for (((x, &a), &u), &g) in x.iter_mut().zip(a).zip(u).zip(self.gamma) {
                *x = (*x + a * g) + u * self.s;
            }
        }
    }
}

#[derive(Debug)]
struct ResidualBackward;

/// What the backward needs: `a` (for `dgamma`) and `u` (for `ds`) when those train, `gamma`
/// and `s` always (they are small).
#[derive(Debug, Clone)]
struct ResidualState {
    a: Option<FlexTensor>,
    u: Option<FlexTensor>,
    gamma: FlexTensor,
    s: f32,
}

impl Backward<Flex, 5> for ResidualBackward {
    type State = ResidualState;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_a, node_gamma, node_u, node_s] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let ResidualState { a, u, gamma, s } = ops.state;
        let shape = grad.layout().shape().clone();
        let g = values(&grad);
        let gamma_values = values(&gamma);
        let d = gamma_values.len();
        if let Some(node) = node_a {
            let mut da = vec![0.0f32; g.len()];
            rowwise(&mut da, g, d, ScaleRows(RowScale::Columns(gamma_values)));
            grads.register::<Flex>(node.id, tensor_of(da, shape.clone()));
        }
        if let Some(node) = node_u {
            let mut du = vec![0.0f32; g.len()];
            rowwise(&mut du, g, d, ScaleRows(RowScale::Scalar(s)));
            grads.register::<Flex>(node.id, tensor_of(du, shape.clone()));
        }
        if let Some(node) = node_s {
            let u = u.expect("kept when s trains");
            let ds = crate::host_kernels::dot_parallel(g, values(&u));
            grads.register::<Flex>(node.id, tensor_of(vec![ds], [1]));
        }
        if let Some(node) = node_gamma {
            let a = a.expect("kept when gamma trains");
            let dgamma = crate::host_kernels::column_dots(g, values(&a), d);
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
    let rows = rows_per_part(g.len() / d.max(1), d) * d;
    run_parts(
        out.chunks_mut(rows.max(1)).zip(g.chunks(rows.max(1))),
        kernel,
    );
}

impl<C: CheckpointStrategy> ResidualOps for Autodiff<Flex, C> {
    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        u: FloatTensor<Self>,
        s: FloatTensor<Self>,
        keep_a: bool,
        keep_u: bool,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ResidualBackward,
            [x, a, gamma, u, s],
            |[x, a, gamma, u, s]| {
                let (a, gamma, u, s) = (
                    contiguous(a),
                    contiguous(gamma),
                    contiguous(u),
                    contiguous(s),
                );
                let y = forward(x, &a, &gamma, &u, &s);
                let state = ResidualState {
                    s: values(&s)[0],
                    a: keep_a.then_some(a),
                    u: keep_u.then_some(u),
                    gamma,
                };
                (state, y)
            },
            |[x, a, gamma, u, s]| Flex::fused_residual(x, a, gamma, u, s, keep_a, keep_u),
        )
    }
}

/// `x + gamma * a + s * u` (`x`, `a`, `u` `[rows, tokens, d]`; `gamma` `[d]` or none for ones;
/// `s` `[1]`): the fused op for `f32` CPU tensors, burn's ops otherwise.
pub fn residual(
    x: Tensor<3>,
    a: Tensor<3>,
    gamma: Option<Tensor<1>>,
    u: Tensor<3>,
    s: Tensor<1>,
) -> Tensor<3> {
    let cpu = [&x, &a, &u].iter().all(|t| on_cpu_f32(t)) && on_cpu_f32(&s);
    if !cpu || gamma.as_ref().is_some_and(|g| !on_cpu_f32(g)) {
        return with_burn_ops(x, a, gamma, u, s);
    }
    let d = x.dims()[2];
    let gamma = gamma.unwrap_or_else(|| Tensor::ones([d], &x.device()));
    let (keep_a, keep_u) = (gamma.is_tracked(), s.is_tracked());
    Tensor::from_dispatch(<Dispatch as ResidualOps>::fused_residual(
        x.into_dispatch(),
        a.into_dispatch(),
        gamma.into_dispatch(),
        u.into_dispatch(),
        s.into_dispatch(),
        keep_a,
        keep_u,
    ))
}

/// [`residual`] in burn's ops (any backend and dtype).
fn with_burn_ops(
    x: Tensor<3>,
    a: Tensor<3>,
    gamma: Option<Tensor<1>>,
    u: Tensor<3>,
    s: Tensor<1>,
) -> Tensor<3> {
    let a = match gamma {
        Some(g) => a * g.unsqueeze::<3>(),
        None => a,
    };
    x + a + u * s.unsqueeze::<3>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::testing::{host, random, relative_error};

    /// Values and every gradient match burn's ops, for a stream split over the cores and a
    /// small one, with and without LayerScale, with a trainable and a frozen LayerScale.
    #[test]
    fn values_and_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        for (shape, with_gamma, gamma_trains) in [
            ([16, 257, 384], true, false),
            ([3, 5, 8], true, true),
            ([2, 7, 6], false, false),
        ] {
            let d = shape[2];
            let leaf = |t: Tensor<3>| t.require_grad();
            let (x, a, u) = (
                leaf(random(shape, 1.0, &device)),
                leaf(random(shape, 1.0, &device)),
                leaf(random(shape, 1.0, &device)),
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
            let weights = random(shape, 1.0, &device);
            let fused = residual(x.clone(), a.clone(), gamma.clone(), u.clone(), s.clone());
            let reference =
                with_burn_ops(x.clone(), a.clone(), gamma.clone(), u.clone(), s.clone());
            assert!(relative_error(&host(fused.clone()), &host(reference.clone())) < 1e-7);
            let gf = (fused * weights.clone()).sum().backward();
            let gr = (reference * weights).sum().backward();
            let mut checked = 0;
            for (name, t) in [("x", &x), ("a", &a), ("u", &u)] {
                let (f, r) = (t.grad(&gf).unwrap(), t.grad(&gr).unwrap());
                assert!(
                    relative_error(&host(f), &host(r)) < 1e-6,
                    "d{name} of {shape:?}"
                );
                checked += 1;
            }
            let (f, r) = (s.grad(&gf).unwrap(), s.grad(&gr).unwrap());
            assert!(relative_error(&host(f), &host(r)) < 1e-4, "ds of {shape:?}");
            if let (Some(g), true) = (&gamma, gamma_trains) {
                let (f, r) = (g.grad(&gf).unwrap(), g.grad(&gr).unwrap());
                assert!(
                    relative_error(&host(f), &host(r)) < 1e-5,
                    "dgamma of {shape:?}"
                );
                checked += 1;
            }
            if let (Some(g), false) = (&gamma, gamma_trains) {
                assert!(
                    g.grad(&gf).is_none(),
                    "a frozen LayerScale gets no gradient"
                );
            }
            assert!(checked >= 3);
        }
    }

    /// Outside the graph the op gives burn's values, in place.
    #[test]
    fn untracked_values_match_burns_ops() {
        let device = Device::flex();
        let shape = [8, 257, 384];
        let (x, a, u) = (
            random(shape, 1.0, &device),
            random(shape, 1.0, &device),
            random(shape, 1.0, &device),
        );
        let (gamma, s) = (random([384], 1.0, &device), random([1], 1.0, &device));
        let reference = host(with_burn_ops(
            x.clone(),
            a.clone(),
            Some(gamma.clone()),
            u.clone(),
            s.clone(),
        ));
        assert_eq!(host(residual(x, a, Some(gamma), u, s)), reference);
    }
}
