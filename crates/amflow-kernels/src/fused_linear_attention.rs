//! The core of the aligning encoder's linear attention (model spec, section 2; Katharopoulos
//! et al. 2020) as one fused op on the CPU backend, with its own backward:
//! `out_i = phi(q_i) A / (phi(q_i) . z + eps)` per frame and head, with
//! `A = sum_j phi(k_j)^T v_j` (`d x d`), `z = sum_j phi(k_j)` and `phi(x) = elu(x) + 1`.
//!
//! `q`, `k`, `v` are the projections as they come, `[frames, tokens, width]` with the heads side
//! by side; the output is `[frames, tokens, width]` with the heads merged. burn runs this as a
//! dozen ops (the `phi`s, tiny batched products over `d = 16`, a reduction, a division and a
//! head merge), each a pass over memory and each with its own backward; here each frame and head
//! is one pass over its tokens.
//!
//! Backward, per frame and head, with `Q = phi(q)`, `K = phi(k)`, `n_i = Q_i A`,
//! `s_i = Q_i . z + eps`, output gradient `G`: `dn_i = G_i / s_i`, `ds_i = -(G_i . out_i) / s_i`;
//! `dQ_i = dn_i A^T + ds_i z`; `dA = sum_i Q_i^T dn_i`, `dz = sum_i ds_i Q_i`;
//! `dK_j = v_j dA^T + dz`, `dv_j = K_j dA`; `dq = dQ phi'(q)`, `dk = dK phi'(k)` with
//! `phi'(x) = e^x` below 0 and 1 above.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::flex_host::{contiguous, values, with_backward};
use crate::host_kernels::{rows_per_part, run_parts, Plain};

/// The fused linear attention (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait LinearAttentionOps: burn::backend::Backend {
    /// `phi(q) A / (phi(q) . z + eps)` per frame and head: `[frames, tokens, width]`.
    fn linear_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        eps: f64,
    ) -> FloatTensor<Self>;
}

/// `phi(x) = elu(x) + 1`.
#[inline(always)]
fn phi(x: f32) -> f32 {
    if x > 0.0 {
        x + 1.0
    } else {
        x.exp()
    }
}

/// `phi'(x)`.
#[inline(always)]
fn phi_slope(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        x.exp()
    }
}

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    frames: usize,
    tokens: usize,
    heads: usize,
    head_dim: usize,
    eps: f32,
}

impl Dims {
    fn of(q: &FlexTensor, heads: usize, eps: f64) -> Self {
        let shape = q.layout().shape();
        Self {
            frames: shape[0],
            tokens: shape[1],
            heads,
            head_dim: shape[2] / heads,
            eps: eps as f32,
        }
    }
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }
    fn frame(&self) -> usize {
        self.tokens * self.width()
    }
    /// Row `i`, head `h` of a frame: its `head_dim` values.
    fn at(&self, i: usize, h: usize) -> std::ops::Range<usize> {
        let start = i * self.width() + h * self.head_dim;
        start..start + self.head_dim
    }
}

/// Per head of one frame: `A` (`d x d`, row-major), `z` (`d`) from `phi(k)` and `v`.
fn kv_summary(dims: Dims, kf: &[f32], vf: &[f32], h: usize, a: &mut [f32], z: &mut [f32]) {
    let d = dims.head_dim;
    a.fill(0.0);
    z.fill(0.0);
    let mut kp = vec![0.0f32; d];
    for j in 0..dims.tokens {
        let r = dims.at(j, h);
        for (o, &x) in kp.iter_mut().zip(&kf[r.clone()]) {
            *o = phi(x);
        }
        let vj = &vf[r];
        for (c, &kc) in kp.iter().enumerate() {
            z[c] += kc;
            for (o, &vv) in a[c * d..(c + 1) * d].iter_mut().zip(vj) {
                *o += kc * vv;
            }
        }
    }
}

/// The output of one frame, written into `of`.
fn forward_frame(dims: Dims, qf: &[f32], kf: &[f32], vf: &[f32], of: &mut [f32]) {
    let d = dims.head_dim;
    let (mut a, mut z, mut qp) = (vec![0.0f32; d * d], vec![0.0f32; d], vec![0.0f32; d]);
    for h in 0..dims.heads {
        kv_summary(dims, kf, vf, h, &mut a, &mut z);
        for i in 0..dims.tokens {
            let r = dims.at(i, h);
            for (o, &x) in qp.iter_mut().zip(&qf[r.clone()]) {
                *o = phi(x);
            }
            let s: f32 = qp.iter().zip(&z).map(|(x, y)| x * y).sum::<f32>() + dims.eps;
            let out = &mut of[r];
            out.fill(0.0);
            for (c, &qc) in qp.iter().enumerate() {
                for (o, &av) in out.iter_mut().zip(&a[c * d..(c + 1) * d]) {
                    *o += qc * av;
                }
            }
            let inv = 1.0 / s;
            for o in out.iter_mut() {
                *o *= inv;
            }
        }
    }
}

/// The gradients of one frame, written into `dqf`, `dkf`, `dvf`.
#[allow(clippy::too_many_arguments)]
fn backward_frame(
    dims: Dims,
    qf: &[f32],
    kf: &[f32],
    vf: &[f32],
    gf: &[f32],
    dqf: &mut [f32],
    dkf: &mut [f32],
    dvf: &mut [f32],
) {
    let d = dims.head_dim;
    let (mut a, mut z) = (vec![0.0f32; d * d], vec![0.0f32; d]);
    let (mut da, mut dz) = (vec![0.0f32; d * d], vec![0.0f32; d]);
    let (mut qp, mut num, mut dn) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
    for h in 0..dims.heads {
        kv_summary(dims, kf, vf, h, &mut a, &mut z);
        da.fill(0.0);
        dz.fill(0.0);
        for i in 0..dims.tokens {
            let r = dims.at(i, h);
            for (o, &x) in qp.iter_mut().zip(&qf[r.clone()]) {
                *o = phi(x);
            }
            let s: f32 = qp.iter().zip(&z).map(|(x, y)| x * y).sum::<f32>() + dims.eps;
            num.fill(0.0);
            for (c, &qc) in qp.iter().enumerate() {
                for (o, &av) in num.iter_mut().zip(&a[c * d..(c + 1) * d]) {
                    *o += qc * av;
                }
            }
            let g = &gf[r.clone()];
            // G . out = (G . n) / s
            let gn: f32 = g.iter().zip(&num).map(|(x, y)| x * y).sum();
            let ds = -gn / (s * s);
            for (o, &gv) in dn.iter_mut().zip(g) {
                *o = gv / s;
            }
            // dQ_i = dn A^T + ds z, times phi'(q)
            for (c, ((dq, &x), &zc)) in dqf[r.clone()]
                .iter_mut()
                .zip(&qf[r.clone()])
                .zip(&z)
                .enumerate()
            {
                let row = &a[c * d..(c + 1) * d];
                let dot: f32 = dn.iter().zip(row).map(|(x, y)| x * y).sum();
                *dq = (dot + ds * zc) * phi_slope(x);
            }
            // dA += Q_i^T dn, dz += ds Q_i
            for (c, &qc) in qp.iter().enumerate() {
                dz[c] += ds * qc;
                for (o, &dv) in da[c * d..(c + 1) * d].iter_mut().zip(&dn) {
                    *o += qc * dv;
                }
            }
        }
        for j in 0..dims.tokens {
            let r = dims.at(j, h);
            let vj = &vf[r.clone()];
            // dK_j = v_j dA^T + dz, times phi'(k); dv_j = K_j dA
            for (c, (dk, &x)) in dkf[r.clone()].iter_mut().zip(&kf[r.clone()]).enumerate() {
                let row = &da[c * d..(c + 1) * d];
                let dot: f32 = vj.iter().zip(row).map(|(x, y)| x * y).sum();
                *dk = (dot + dz[c]) * phi_slope(x);
            }
            let dv = &mut dvf[r.clone()];
            dv.fill(0.0);
            for (c, &x) in kf[r].iter().enumerate() {
                let kc = phi(x);
                for (o, &av) in dv.iter_mut().zip(&da[c * d..(c + 1) * d]) {
                    *o += kc * av;
                }
            }
        }
    }
}

fn tensor_of(data: Vec<f32>, dims: Dims) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(
        data,
        [dims.frames, dims.tokens, dims.width()],
    ))
}

fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, heads: usize, eps: f64) -> FlexTensor {
    let dims = Dims::of(q, heads, eps);
    let (q, k, v) = (values(q), values(k), values(v));
    let fl = dims.frame();
    let mut out = vec![0.0f32; dims.frames * fl];
    let per = rows_per_part(dims.frames, fl);
    let kernel = Plain(move |(part, out): (usize, &mut [f32])| {
        for (i, of) in out.chunks_mut(fl).enumerate() {
            let r = (part * per + i) * fl..(part * per + i + 1) * fl;
            forward_frame(dims, &q[r.clone()], &k[r.clone()], &v[r], of);
        }
    });
    run_parts(out.chunks_mut(per * fl).enumerate(), kernel);
    tensor_of(out, dims)
}

impl LinearAttentionOps for Flex {
    fn linear_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        heads: usize,
        eps: f64,
    ) -> FlexTensor {
        forward(&contiguous(q), &contiguous(k), &contiguous(v), heads, eps)
    }
}

/// The inputs, kept for the backward (shared buffers).
#[derive(Debug, Clone)]
struct LinearAttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    heads: usize,
    eps: f64,
}

#[derive(Debug)]
struct LinearAttentionBackward;

impl Backward<Flex, 3> for LinearAttentionBackward {
    type State = LinearAttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let dims = Dims::of(&st.q, st.heads, st.eps);
        let (q, k, v, g) = (values(&st.q), values(&st.k), values(&st.v), values(&grad));
        let fl = dims.frame();
        let n = dims.frames * fl;
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let per = rows_per_part(dims.frames, fl);
        type Part<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]));
        let kernel = Plain(move |(part, ((dq, dk), dv)): Part<'_>| {
            let frames = dq
                .chunks_mut(fl)
                .zip(dk.chunks_mut(fl))
                .zip(dv.chunks_mut(fl));
            for (i, ((dqf, dkf), dvf)) in frames.enumerate() {
                let r = (part * per + i) * fl..(part * per + i + 1) * fl;
                let (qf, kf, vf, gf) = (&q[r.clone()], &k[r.clone()], &v[r.clone()], &g[r]);
                backward_frame(dims, qf, kf, vf, gf, dqf, dkf, dvf);
            }
        });
        let parts = dq
            .chunks_mut(per * fl)
            .zip(dk.chunks_mut(per * fl))
            .zip(dv.chunks_mut(per * fl))
            .enumerate();
        run_parts(parts, kernel);
        for (node, d) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor_of(d, dims));
            }
        }
    }
}

impl<C: CheckpointStrategy> LinearAttentionOps for Autodiff<Flex, C> {
    fn linear_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        eps: f64,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            LinearAttentionBackward,
            [q, k, v],
            |[q, k, v]| {
                let [q, k, v] = [q, k, v].map(contiguous);
                let out = forward(&q, &k, &v, heads, eps);
                let state = LinearAttentionState {
                    q,
                    k,
                    v,
                    heads,
                    eps,
                };
                (state, out)
            },
            |[q, k, v]| Flex::linear_attention(q, k, v, heads, eps),
        )
    }
}

/// `phi(q) A / (phi(q) . z + eps)` per frame and head for `q`, `k`, `v`
/// `[frames, tokens, width]` (heads side by side), heads merged.
pub(crate) fn linear_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    eps: f64,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as LinearAttentionOps>::linear_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        heads,
        eps,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::on_cpu_f32;
    use crate::flex_host::testing::{host, relative_error};
    use burn::tensor::Distribution;

    /// The same with burn's ops: `elu + 1`, per-head products, the division.
    fn explicit(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, eps: f64) -> Tensor<3> {
        let [f, n, w] = q.dims();
        let split = |x: Tensor<3>| x.reshape([f, n, heads, w / heads]).swap_dims(1, 2);
        let phi = |x: Tensor<3>| burn::tensor::activation::elu(x, 1.0).add_scalar(1.0);
        let (q, k, v) = (split(phi(q)), split(phi(k)), split(v));
        let a = k.clone().swap_dims(2, 3).matmul(v);
        let z = k.sum_dim(2).swap_dims(2, 3);
        let out = q.clone().matmul(a) / q.matmul(z).add_scalar(eps);
        out.swap_dims(1, 2).reshape([f, n, w])
    }

    #[test]
    fn value_and_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        for (frames, tokens, width, heads) in [(8, 41, 48, 3), (1, 3, 8, 2)] {
            let inputs: Vec<Tensor<3>> = (0..3)
                .map(|_| {
                    Tensor::random(
                        [frames, tokens, width],
                        Distribution::Normal(0.0, 1.0),
                        &device,
                    )
                })
                .collect();
            let weights = Tensor::<3>::random(
                [frames, tokens, width],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |fused: bool| {
                let [q, k, v] = [0, 1, 2].map(|i| inputs[i].clone().detach().require_grad());
                let y = if fused {
                    assert!(on_cpu_f32(&q));
                    linear_attention(q.clone(), k.clone(), v.clone(), heads, 1e-6)
                } else {
                    explicit(q.clone(), k.clone(), v.clone(), heads, 1e-6)
                };
                let grads = (y.clone() * weights.clone()).sum().backward();
                let mut out = vec![host(y)];
                for x in [q, k, v] {
                    out.push(host(x.grad(&grads).unwrap()));
                }
                out
            };
            let (fused, burn) = (run(true), run(false));
            for (name, (a, b)) in ["out", "dq", "dk", "dv"]
                .iter()
                .zip(fused.iter().zip(&burn))
            {
                let err = relative_error(a, b);
                assert!(
                    err < 2e-5,
                    "{frames}x{tokens}x{width}/{heads} {name}: {err}"
                );
            }
        }
    }
}
