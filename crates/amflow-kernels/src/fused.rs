//! Softmax, layer norm, GELU and the linear layer as single operations with their own backward
//! pass, for tensors in the autodiff graph on the CPU backend (the frozen backbone during
//! training: its weights do not train, but the residual stream depends on the adapters, so
//! gradients flow through it).
//!
//! burn 0.22's autodiff backend has no softmax or layer norm of its own: it differentiates their
//! decompositions into element-wise ops, each a pass over memory that allocates its output and
//! keeps what its backward needs (softmax: five forward passes over the `N x N` attention map,
//! `exp` recomputed with `libm` in the backward, and two maps kept per block where one is needed).
//! These ops are burn backend extensions (`#[backend_extension]`) implemented for `Flex` and for
//! `Autodiff<Flex>`, whose backward steps are written out:
//!
//! - softmax over the last axis, `p = softmax(x)`: keeps `p`; backward `dx = p (g - sum_j p g)`
//!   (one pass per row). Its forward also serves untracked tensors: flex's softmax calls `libm`'s
//!   `expf` per element, this one a vectorised `exp`;
//! - layer norm over the last axis, `y = xhat gamma + beta` with `xhat = (x - mean) rstd`,
//!   `rstd = 1 / sqrt(var + eps)` (biased variance, PyTorch's `nn.LayerNorm`): keeps `xhat` and
//!   `rstd`; backward `dx = rstd (g' - mean(g') - xhat mean(xhat g'))` with `g' = gamma g`,
//!   `dgamma = sum_rows g xhat`, `dbeta = sum_rows g` (Ba et al. 2016);
//! - exact GELU `x Phi(x)`: keeps `gelu'(x)` (from [`crate::host_kernels`]); backward `dx = g
//!   gelu'(x)`;
//! - the linear layer `y = x W^T + b`: one `gemm` call whose output starts as the bias rows,
//!   written in parallel when large ([`gemm::bias_rows`]) (burn adds the bias in a pass of its
//!   own, and its CPU backend zero-fills each product's output and then copies it into an
//!   aligned buffer); keeps `x` and `W`; backward `dx = g W`,
//!   `dW = g^T x`, `db = sum_rows g`, each only when that input is tracked;
//! - the linear layer with a frozen bf16 weight (the mixed-precision backbone),
//!   `y = bf16(x) W^T + b` in [`crate::bf16_gemm`] (f32 out, not rounded to bf16), the output
//!   starting as the bias rows: keeps `W`; backward `dx = bf16(g) W` (the upstream gradient
//!   rounded to bf16, as autocast does; f32 out) and `db = sum_rows g`. A bf16 weight never
//!   trains (the bf16 backbone is frozen): [`crate::ops::linear`] sends a tracked one to burn's
//!   ops.
//!
//! Everything else (other backends, other dtypes) takes burn's ops; the wrappers below choose. Tests compare values and gradients with burn's decompositions and
//! with finite differences.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;
use burn::tensor::activation;

use super::bf16_gemm::{self, Bf16Ref};
use super::flex_host::{
    bf16_values, contiguous, map_in_place, on_cpu_f32, tensor_of, values, with_backward,
};
use super::gemm::{self, MatMut, MatRef};
use crate::host_kernels;

/// The fused ops (see the module docs). Shapes: `x` is `[..., d]`, `gamma` and `beta` `[d]`.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: burn::backend::Backend {
    /// Softmax over the last axis.
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Layer norm over the last axis with an affine transform.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;
    /// Exact GELU.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Exact GELU of `x + bias` (`bias` `[d]`, added along the last axis).
    fn fused_gelu_bias(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `x W^T + b` for `x` `[rows, in]`, `W` `[out, in]` (PyTorch's layout), `b` `[out]`.
    /// The backward keeps `x` only when `keep_input` (`W` trains) and `W` only when
    /// `keep_weight` (`x` needs a gradient).
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        keep_input: bool,
        keep_weight: bool,
    ) -> FloatTensor<Self>;
    /// `bf16(x) W^T + b` for `x` `[rows, in]` f32, a frozen `W` `[out, in]` bf16 and `b`
    /// `[out]` f32, f32 out. The backward gives `x` and `b` their gradients, never `W`.
    fn fused_linear_bf16(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl FusedOps for Flex {
    fn fused_softmax(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        let d = last_dim(&x);
        let mut p = vec![0.0f32; x.layout().num_elements()];
        host_kernels::softmax_rows(values(&x), &mut p, d);
        tensor_of(p, x.layout().shape().clone())
    }

    fn fused_layer_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
    ) -> FlexTensor {
        <Flex as ModuleOps<Flex>>::layer_norm(x, gamma, Some(beta), eps)
    }

    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        map_in_place(x, host_kernels::gelu_in_place)
    }

    fn fused_gelu_bias(x: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let bias = contiguous(bias);
        map_in_place(contiguous(x), |v| {
            host_kernels::gelu_bias_in_place(v, values(&bias))
        })
    }

    fn fused_linear(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        _: bool,
        _: bool,
    ) -> FlexTensor {
        linear_forward(&contiguous(x), &contiguous(weight), &contiguous(bias))
    }

    fn fused_linear_bf16(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_bf16_forward(&contiguous(x), &contiguous(weight), &contiguous(bias))
    }
}

/// `[rows, in]`, `[out, in]` as (rows, in, out).
fn linear_dims(x: &FlexTensor, weight: &FlexTensor) -> (usize, usize, usize) {
    let (xs, ws) = (x.layout().shape(), weight.layout().shape());
    (xs[0], xs[1], ws[0])
}

/// `x W^T + b`: the output starts as `b` in every row and the product accumulates onto it, so
/// the bias costs no pass of its own.
fn linear_forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let (rows, d_in, d_out) = linear_dims(x, weight);
    if values(bias).iter().all(|&b| b == 0.0) {
        // No bias (or a zero one, as `Up` starts): the product alone, written without a fill.
        let y = gemm::product(
            MatRef::row_major(values(x), rows, d_in),
            MatRef::row_major(values(weight), d_out, d_in).t(),
            1.0,
        );
        return tensor_of(y, [rows, d_out]);
    }
    let mut y = gemm::bias_rows(values(bias), rows);
    gemm::matmul(
        MatMut::row_major(&mut y, rows, d_out),
        true,
        MatRef::row_major(values(x), rows, d_in),
        MatRef::row_major(values(weight), d_out, d_in).t(),
        1.0,
    );
    tensor_of(y, [rows, d_out])
}

/// `bf16(x) W^T + b` for a bf16 `W`: the output starts as `b` in every row.
fn linear_bf16_forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let (rows, d_in, d_out) = linear_dims(x, weight);
    let mut y = gemm::bias_rows(values(bias), rows);
    let w = Bf16Ref::row_major(bf16_values(weight), d_out, d_in);
    bf16_gemm::matmul(&mut y, values(x), w.t(), rows);
    tensor_of(y, [rows, d_out])
}

#[derive(Debug)]
struct LinearBf16Backward;

/// The bf16 linear layer's backward: the weight (a shared buffer) and `(rows, in, out)`.
#[derive(Debug, Clone)]
struct LinearBf16State {
    weight: FlexTensor,
    dims: (usize, usize, usize),
}

impl Backward<Flex, 3> for LinearBf16Backward {
    type State = LinearBf16State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        assert!(
            node_w.is_none(),
            "a bf16 weight does not train (ops::linear gives a tracked one to burn's ops)"
        );
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let LinearBf16State { weight, dims } = ops.state;
        let (rows, d_in, d_out) = dims;
        if let Some(node) = node_x {
            // dx = bf16(g) W
            let mut dx = vec![0.0f32; rows * d_in];
            let w = Bf16Ref::row_major(bf16_values(&weight), d_out, d_in);
            bf16_gemm::matmul(&mut dx, values(&grad), w, rows);
            grads.register::<Flex>(node.id, tensor_of(dx, [rows, d_in]));
        }
        if let Some(node) = node_b {
            let db = host_kernels::column_sums(values(&grad), d_out);
            grads.register::<Flex>(node.id, tensor_of(db, [d_out]));
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

/// The linear layer's inputs that its backward needs (shared buffers, not copies): `x` for
/// `dW` (none for a frozen layer: its input is not kept alive for the backward, which saved
/// 0.9 GB of a 4-clip train step), `W` for `dx`.
#[derive(Debug, Clone)]
struct LinearState {
    x: Option<FlexTensor>,
    weight: Option<FlexTensor>,
    /// `(rows, in, out)`.
    dims: (usize, usize, usize),
}

impl Backward<Flex, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let LinearState { x, weight, dims } = ops.state;
        let (rows, d_in, d_out) = dims;
        let g = MatRef::row_major(values(&grad), rows, d_out);
        if let Some(node) = node_x {
            // dx = g W
            let weight = weight.expect("kept when x is tracked");
            let w = MatRef::row_major(values(&weight), d_out, d_in);
            let dx = gemm::product(g, w, 1.0);
            grads.register::<Flex>(node.id, tensor_of(dx, [rows, d_in]));
        }
        if let Some(node) = node_w {
            // dW = g^T x
            let x = x.expect("kept when W is tracked");
            let xm = MatRef::row_major(values(&x), rows, d_in);
            let dw = gemm::product(g.t(), xm, 1.0);
            grads.register::<Flex>(node.id, tensor_of(dw, [d_out, d_in]));
        }
        if let Some(node) = node_b {
            let db = host_kernels::column_sums(values(&grad), d_out);
            grads.register::<Flex>(node.id, tensor_of(db, [d_out]));
        }
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    /// The probabilities `p`.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let p = ops.state;
        let d = last_dim(&p);
        let dx = map_in_place(grad, |g| {
            host_kernels::softmax_backward_rows(values(&p), g, d)
        });
        grads.register::<Flex>(parent.id, dx);
    }
}

#[derive(Debug)]
struct LayerNormBackward;

/// What the layer norm's backward needs: `xhat`, `rstd` per row and `gamma`.
#[derive(Debug, Clone)]
struct LayerNormState {
    xhat: FlexTensor,
    rstd: Vec<f32>,
    gamma: Vec<f32>,
}

impl Backward<Flex, 3> for LayerNormBackward {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let state = ops.state;
        let shape = state.xhat.layout().shape().clone();
        let d = state.gamma.len();
        let sums = host_kernels::layer_norm_backward(
            values(&state.xhat),
            &state.rstd,
            &state.gamma,
            values(&grad),
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor_of(sums.dx, shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor_of(sums.dgamma, [d]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor_of(sums.dbeta, [d]));
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// `gelu'(x)`.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let dx = map_in_place(grad, |g| host_kernels::mul_in_place(g, values(&ops.state)));
        grads.register::<Flex>(parent.id, dx);
    }
}

#[derive(Debug)]
struct GeluBiasBackward;

impl Backward<Flex, 2> for GeluBiasBackward {
    /// `gelu'(x + bias)`.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if node_x.is_none() && node_bias.is_none() {
            return;
        }
        let d = last_dim(&ops.state);
        let dx = map_in_place(grad, |g| host_kernels::mul_in_place(g, values(&ops.state)));
        if let Some(node) = node_bias {
            // `map_in_place` returned a contiguous tensor.
            let db = host_kernels::column_sums(values(&dx), d);
            grads.register::<Flex>(node.id, tensor_of(db, [d]));
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
    }
}

fn last_dim(t: &FlexTensor) -> usize {
    let shape = t.layout().shape();
    shape[shape.num_dims() - 1]
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            SoftmaxBackward,
            [x],
            |[x]| {
                let p = Flex::fused_softmax(x);
                (p.clone(), p)
            },
            |[x]| Flex::fused_softmax(x),
        )
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            LayerNormBackward,
            [x, gamma, beta],
            |[x, gamma, beta]| {
                let x = contiguous(x);
                let shape = x.layout().shape().clone();
                let gamma = values(&contiguous(gamma)).to_vec();
                let beta = contiguous(beta);
                let forward =
                    host_kernels::layer_norm_forward(values(&x), &gamma, values(&beta), eps);
                let state = LayerNormState {
                    xhat: tensor_of(forward.xhat, shape.clone()),
                    rstd: forward.rstd,
                    gamma,
                };
                (state, tensor_of(forward.y, shape))
            },
            |[x, gamma, beta]| Flex::fused_layer_norm(x, gamma, beta, eps),
        )
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            GeluBackward,
            [x],
            |[x]| {
                let shape = x.layout().shape().clone();
                let mut slope = vec![0.0f32; shape.num_elements()];
                let y = map_in_place(x, |v| host_kernels::gelu_and_slope_in_place(v, &mut slope));
                (tensor_of(slope, shape), y)
            },
            |[x]| Flex::fused_gelu(x),
        )
    }

    fn fused_gelu_bias(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            GeluBiasBackward,
            [x, bias],
            |[x, bias]| {
                let (x, bias) = (contiguous(x), contiguous(bias));
                let shape = x.layout().shape().clone();
                let mut slope = vec![0.0f32; shape.num_elements()];
                let y = map_in_place(x, |v| {
                    host_kernels::gelu_bias_and_slope_in_place(v, &mut slope, values(&bias))
                });
                (tensor_of(slope, shape), y)
            },
            |[x, bias]| Flex::fused_gelu_bias(x, bias),
        )
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        keep_input: bool,
        keep_weight: bool,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            LinearBackward,
            [x, weight, bias],
            |[x, weight, bias]| {
                let (x, weight) = (contiguous(x), contiguous(weight));
                let y = linear_forward(&x, &weight, &contiguous(bias));
                let state = LinearState {
                    dims: linear_dims(&x, &weight),
                    x: keep_input.then_some(x),
                    weight: keep_weight.then_some(weight),
                };
                (state, y)
            },
            |[x, weight, bias]| Flex::fused_linear(x, weight, bias, keep_input, keep_weight),
        )
    }

    fn fused_linear_bf16(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            LinearBf16Backward,
            [x, weight, bias],
            |[x, weight, bias]| {
                let (x, weight) = (contiguous(x), contiguous(weight));
                let y = linear_bf16_forward(&x, &weight, &contiguous(bias));
                let dims = linear_dims(&x, &weight);
                (LinearBf16State { weight, dims }, y)
            },
            |[x, weight, bias]| Flex::fused_linear_bf16(x, weight, bias),
        )
    }
}

/// Whether `x` is a tracked `f32` tensor on the CPU backend.
fn tracked_on_cpu<const D: usize>(x: &Tensor<D>) -> bool {
    x.is_tracked() && on_cpu_f32(x)
}

/// Softmax over the last axis: the fused op for `f32` CPU tensors (with its own backward when
/// tracked), burn's op otherwise.
pub(crate) fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_cpu_f32(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_softmax(x.into_dispatch()))
    } else {
        activation::softmax(x, D - 1)
    }
}

/// Layer norm over the last axis (`gamma`, `beta`: `[d]`): the fused op when any input is a
/// tracked CPU tensor, burn's op otherwise.
pub(crate) fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    let tracked = x.is_tracked() || gamma.is_tracked() || beta.is_tracked();
    if tracked && on_cpu_f32(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_layer_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            eps,
        ))
    } else {
        burn::tensor::module::layer_norm(x, gamma, Some(beta), eps)
    }
}

/// Exact GELU of a tracked tensor: the fused op on the CPU backend, burn's op elsewhere.
pub(crate) fn gelu_tracked<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if tracked_on_cpu(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
    } else {
        activation::gelu(x)
    }
}

/// Exact GELU of `x + bias` (`bias` along the last axis) on `f32` CPU tensors: one pass, in
/// place where `x` is held alone, with its own backward (`dx = g gelu'`, `dbias = sum_rows dx`)
/// when tracked. Callers check the backend and dtypes first ([`crate::ops::gelu_bias`]).
pub(crate) fn gelu_bias<const D: usize>(x: Tensor<D>, bias: Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu_bias(
        x.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// `x W^T + b` (`x` `[rows, in]`, `W` `[out, in]`, `b` `[out]`) as one product that starts from
/// the bias, with its own backward (`dx = g W`, `dW = g^T x`, `db = sum_rows g`). Callers check
/// the dtypes and the backend first ([`crate::ops::linear`]).
pub(crate) fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    let (keep_input, keep_weight) = (weight.is_tracked(), x.is_tracked());
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        keep_input,
        keep_weight,
    ))
}

/// `bf16(x) W^T + b` for a frozen bf16 `W` (`x`, `b` f32) as one product that starts from the
/// bias ([`crate::bf16_gemm`]), with its own backward for `x` and `b`. Callers check the dtypes,
/// the backend and that `W` is not tracked first ([`crate::ops::linear`]).
pub(crate) fn linear_bf16(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_linear_bf16(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::testing::{host, relative_error};
    use burn::tensor::DType;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        crate::flex_host::testing::random(shape, 1.5, device)
    }

    #[test]
    fn softmax_value_and_gradient_match_burns_decomposition() {
        let device = Device::flex().autodiff();
        // Enough rows for the parallel path; an odd row length for the vector tails.
        let x0 = random([3, 5, 67, 131], &device);
        let weights = random([3, 5, 67, 131], &device);
        let run = |fused: bool| {
            let x = x0.clone().detach().require_grad();
            let p = if fused {
                softmax_last(x.clone())
            } else {
                activation::softmax(x.clone(), 3)
            };
            let grads = (p.clone() * weights.clone()).sum().backward();
            let g = x.grad(&grads).unwrap();
            (host(p), g.into_data().try_to_vec::<f32>().unwrap())
        };
        let (p_fused, g_fused) = run(true);
        let (p_burn, g_burn) = run(false);
        assert!(relative_error(&p_fused, &p_burn) < 1e-6);
        assert!(relative_error(&g_fused, &g_burn) < 1e-5);
    }

    #[test]
    fn untracked_softmax_matches_burns_op() {
        let device = Device::flex();
        let x = random([4, 3, 50, 257], &device).mul_scalar(4.0);
        let want = host(activation::softmax(x.clone(), 3));
        let got = host(softmax_last(x));
        let err = relative_error(&got, &want);
        assert!(err < 3e-6, "{err}"); // a few ulps of 1, where peaked rows sit
    }

    #[test]
    fn layer_norm_value_and_gradients_match_burns_decomposition() {
        let device = Device::flex().autodiff();
        let x0 = random([4, 129, 96], &device).add_scalar(3.0);
        let gamma0 = random([96], &device);
        let beta0 = random([96], &device);
        let weights = random([4, 129, 96], &device);
        let run = |fused: bool| {
            let x = x0.clone().detach().require_grad();
            let gamma = gamma0.clone().detach().require_grad();
            let beta = beta0.clone().detach().require_grad();
            let y = if fused {
                layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-6)
            } else {
                burn::tensor::module::layer_norm(x.clone(), gamma.clone(), Some(beta.clone()), 1e-6)
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            [
                host(y),
                host(x.grad(&grads).unwrap()),
                host(gamma.grad(&grads).unwrap()),
                host(beta.grad(&grads).unwrap()),
            ]
        };
        let fused = run(true);
        let burn = run(false);
        for (name, (a, b)) in ["y", "dx", "dgamma", "dbeta"]
            .iter()
            .zip(fused.iter().zip(&burn))
        {
            let err = relative_error(a, b);
            assert!(err < 2e-5, "{name}: {err}");
        }
    }

    #[test]
    fn layer_norm_gradient_agrees_with_finite_differences() {
        let device = Device::flex().autodiff();
        let x0: Vec<f32> = (0..10)
            .map(|i| ((i * 7) % 10) as f32 * 0.37 - 1.1)
            .collect();
        let gamma = Tensor::<1>::from_floats([0.5, -1.0, 2.0, 1.5, 0.8], &device);
        let beta = Tensor::<1>::from_floats([0.1, 0.2, -0.3, 0.0, 1.0], &device);
        let w = Tensor::<2>::from_floats(
            [[1.0, -2.0, 0.5, 3.0, -1.0], [0.3, 0.7, -0.2, 1.1, 2.0]],
            &device,
        );
        let loss =
            |x: Tensor<2>| (layer_norm(x, gamma.clone(), beta.clone(), 1e-5) * w.clone()).sum();
        let x = Tensor::<1>::from_floats(x0.as_slice(), &device)
            .reshape([2, 5])
            .require_grad();
        let grads = loss(x.clone()).backward();
        let analytic = host(x.grad(&grads).unwrap());
        let value = |v: &[f32]| -> f64 {
            let t = Tensor::<1>::from_floats(v, &device).reshape([2, 5]);
            loss(t).into_scalar::<f32>() as f64
        };
        for i in 0..x0.len() {
            let h = 1e-2f32;
            let (mut plus, mut minus) = (x0.clone(), x0.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (value(&plus) - value(&minus)) / (2.0 * h as f64);
            assert!(
                (numeric - analytic[i] as f64).abs() < 2e-3 * numeric.abs().max(1.0),
                "element {i}: {numeric} vs {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn untracked_and_frozen_inputs_take_burns_ops_with_the_same_values() {
        let device = Device::flex();
        let x = random([7, 33], &device);
        let (gamma, beta) = (random([33], &device), random([33], &device));
        let a = layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-6);
        let autodiff = Device::flex().autodiff();
        // Tracked x, frozen gamma and beta: the fused op, gradient only for x.
        let xt = Tensor::<2>::from_data(x.into_data(), &autodiff).require_grad();
        let gt = Tensor::<1>::from_data(gamma.into_data(), &autodiff);
        let bt = Tensor::<1>::from_data(beta.into_data(), &autodiff);
        let b = layer_norm(xt.clone(), gt.clone(), bt, 1e-6);
        let grads = b.clone().sum().backward();
        assert!(xt.grad(&grads).is_some());
        assert!(gt.grad(&grads).is_none());
        assert!(relative_error(&host(b), &host(a)) < 1e-6);
    }

    /// A random `[rows, d_in]` input, or the transpose of a `[d_in, rows]` one (a
    /// non-contiguous view).
    fn linear_input(rows: usize, d_in: usize, transposed: bool, device: &Device) -> Tensor<2> {
        if transposed {
            random([d_in, rows], device).transpose()
        } else {
            random([rows, d_in], device)
        }
    }

    #[test]
    fn linear_value_and_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        // Large enough for gemm's parallel path; a transposed (non-contiguous) input as well.
        for (rows, d_in, d_out, transposed) in [(300, 97, 200, false), (7, 5, 3, true)] {
            let x0 = linear_input(rows, d_in, transposed, &device);
            let w0 = random([d_out, d_in], &device);
            let b0 = random([d_out], &device);
            let weights = random([rows, d_out], &device);
            let run = |fused: bool| {
                let x = x0.clone().detach().require_grad();
                let w = w0.clone().detach().require_grad();
                let b = b0.clone().detach().require_grad();
                let y = if fused {
                    assert!(w.dtype() == DType::F32 && on_cpu_f32(&x));
                    linear(x.clone(), w.clone(), b.clone())
                } else {
                    x.clone().matmul(w.clone().transpose()) + b.clone().unsqueeze::<2>()
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                [
                    host(y),
                    host(x.grad(&grads).unwrap()),
                    host(w.grad(&grads).unwrap()),
                    host(b.grad(&grads).unwrap()),
                ]
            };
            let (fused, burn) = (run(true), run(false));
            for (name, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(fused.iter().zip(&burn)) {
                let err = relative_error(a, b);
                assert!(err < 1e-5, "{rows}x{d_in}->{d_out} {name}: {err}");
            }
        }
    }

    #[test]
    fn linear_with_frozen_weights_gives_only_the_input_gradient() {
        let device = Device::flex().autodiff();
        let x = random([9, 4], &device).require_grad();
        let (w, b) = (random([6, 4], &device), random([6], &device));
        let y = linear(x.clone(), w.clone(), b.clone());
        let want = x.clone().matmul(w.clone().transpose()) + b.clone().unsqueeze::<2>();
        assert!(relative_error(&host(y.clone()), &host(want)) < 1e-6);
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some());
        assert!(w.grad(&grads).is_none() && b.grad(&grads).is_none());
        // Untracked inputs: the plain forward.
        let plain = Device::flex();
        let xu = Tensor::<2>::from_data(x.into_data(), &plain);
        let wu = Tensor::<2>::from_data(w.into_data(), &plain);
        let bu = Tensor::<1>::from_data(b.into_data(), &plain);
        let y = linear(xu.clone(), wu.clone(), bu.clone());
        let want = xu.matmul(wu.transpose()) + bu.unsqueeze::<2>();
        assert!(relative_error(&host(y), &host(want)) < 1e-6);
    }

    /// `t` on the plain CPU device.
    fn plain<const D: usize>(t: &Tensor<D>) -> Tensor<D> {
        Tensor::from_data(t.clone().into_data(), &Device::flex())
    }

    /// `t` rounded to bf16 values, as f32.
    fn rounded<const D: usize>(t: Tensor<D>) -> Tensor<D> {
        t.cast(DType::BF16).cast(DType::F32)
    }

    #[test]
    fn bf16_linear_values_and_gradients_match_the_rounded_product() {
        let device = Device::flex().autodiff();
        // Parallel sizes (at least 192^3 multiply-adds) with edges; a transposed input.
        for (rows, d_in, d_out, transposed) in [(300, 97, 257, false), (7, 5, 3, true)] {
            let x0 = linear_input(rows, d_in, transposed, &device);
            let w = random([d_out, d_in], &device).cast(DType::BF16);
            let b0 = random([d_out], &device);
            let weights = random([rows, d_out], &device);
            let x = x0.clone().detach().require_grad();
            let b = b0.clone().detach().require_grad();
            let y = linear_bf16(x.clone(), w.clone(), b.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            assert!(w.grad(&grads).is_none());
            // The references, in f32 from bf16-rounded operands: y = bf16(x) W^T + b,
            // dx = bf16(g) W, db = sum_rows g, with g = weights.
            let (g, wf) = (plain(&weights), plain(&w).cast(DType::F32));
            let want_y =
                rounded(plain(&x0)).matmul(wf.clone().transpose()) + plain(&b0).unsqueeze::<2>();
            let want_dx = rounded(g.clone()).matmul(wf);
            let want_db = g.sum_dim(0).reshape([d_out]);
            let got = [
                host(y),
                host(x.grad(&grads).unwrap()),
                host(b.grad(&grads).unwrap()),
            ];
            let want = [host(want_y), host(want_dx), host(want_db)];
            for (name, (a, b)) in ["y", "dx", "db"].iter().zip(got.iter().zip(&want)) {
                let err = relative_error(a, b);
                assert!(err < 1e-5, "{rows}x{d_in}->{d_out} {name}: {err}");
            }
            // burn's bf16 decomposition (products rounded to bf16): within a bf16 step or two.
            let x = x0.clone().detach().require_grad();
            let y = x
                .clone()
                .cast(DType::BF16)
                .matmul(w.clone().transpose())
                .cast(DType::F32)
                + b0.clone().unsqueeze::<2>();
            let grads = (y.clone() * weights.clone()).sum().backward();
            for (name, (a, b)) in [
                ("y", (&got[0], host(y))),
                ("dx", (&got[1], host(x.grad(&grads).unwrap()))),
            ] {
                let err = relative_error(a, &b);
                assert!(
                    err < 2e-2,
                    "{rows}x{d_in}->{d_out} {name} against burn's: {err}"
                );
            }
        }
    }

    #[test]
    fn bf16_linear_of_untracked_inputs_and_tracked_bf16_weights() {
        let device = Device::flex().autodiff();
        let x = random([9, 4], &device);
        let w = random([6, 4], &device).cast(DType::BF16);
        let b = random([6], &device).require_grad();
        // x untracked, the bias tracked: only db.
        let y = crate::ops::linear(x.clone(), w.clone(), Some(b.clone()));
        let want = rounded(plain(&x)).matmul(plain(&w).cast(DType::F32).transpose())
            + plain(&b).unsqueeze::<2>();
        assert!(relative_error(&host(y.clone()), &host(want)) < 1e-5);
        let grads = y.sum().backward();
        assert_eq!(host(b.grad(&grads).unwrap()), vec![9.0; 6]);
        // A tracked bf16 weight (never the model's case) takes burn's ops, which train it.
        let x = x.require_grad();
        let w = w.require_grad();
        let grads = crate::ops::linear(x.clone(), w.clone(), None)
            .sum()
            .backward();
        assert!(x.grad(&grads).is_some() && w.grad(&grads).is_some());
    }
}
