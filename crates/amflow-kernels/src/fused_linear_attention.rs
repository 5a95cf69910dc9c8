//! The core of the aligning encoder's linear attention (model spec, section 2; Katharopoulos
//! et al. 2020) as one fused op on the CPU backend, with its own backward:
//! `out_i = phi(q_i) A / (phi(q_i) . z + eps)` per frame and head, with
//! `A = sum_j phi(k_j)^T v_j` (`d x d`), `z = sum_j phi(k_j)` and `phi(x) = elu(x) + 1`.
//!
//! `q`, `k`, `v` are the projections as they come, `[frames, tokens, width]` with the heads side
//! by side; the output is `[frames, tokens, width]` with the heads merged. burn runs this as a
//! dozen ops (the `phi`s, tiny batched products over `d = 16`, a reduction, a division and a
//! head merge), each a pass over memory and each with its own backward; here each frame is one
//! task on rayon's pool: `phi` of its projections (branch-free, with the vectorised `exp` of
//! `host_kernels`: no `libm` call per value), then per head the `tokens x d x d` products (two
//! in the forward, six in the backward) through [`crate::gemm`] on the heads in place, and
//! `d`-wide loops for the normaliser and `phi'`. (Loops for the products themselves, compiled
//! for the CPU's vector extensions, vectorised across the wrong index, with gathers: slower.)
//!
//! Backward, per frame and head, with `Q = phi(q)`, `K = phi(k)`, `n_i = Q_i A`,
//! `s_i = Q_i . z + eps`, output gradient `G`: `dn_i = G_i / s_i`, `ds_i = -(G_i . out_i) / s_i`;
//! `dQ_i = dn_i A^T + ds_i z`; `dA = sum_i Q_i^T dn_i`, `dz = sum_i ds_i Q_i`;
//! `dK_j = v_j dA^T + dz`, `dv_j = K_j dA`; `dq = dQ phi'(q)`, `dk = dK phi'(k)` with
//! `phi'(x) = e^x` below 0 and 1 above, i.e. `min(phi(x), 1)`.

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
use crate::gemm::{matmul, MatMut, MatRef};
use crate::heads::HeadLayout;
use crate::host_kernels::{dot, exp_nonpositive, rows_per_part, run_parts, Plain};

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

/// `phi(x) = elu(x) + 1 = e^min(x, 0) + max(x, 0)`, without a branch (it vectorises; NaN stays
/// NaN).
#[inline(always)]
fn phi(x: f32) -> f32 {
    let positive = if x > 0.0 { x } else { 0.0 };
    exp_nonpositive(x) + positive
}

/// `phi'(x)` from `p = phi(x)`: 1 above 0, `e^x = p` below, so `min(p, 1)`.
#[inline(always)]
fn phi_slope(p: f32) -> f32 {
    if p < 1.0 {
        p
    } else {
        1.0
    }
}

/// `phi` of each value of `src`, into `dst`.
#[inline(always)]
fn phi_into(dst: &mut [f32], src: &[f32]) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = phi(x);
    }
}

/// The projections' layout.
type Dims = HeadLayout;

/// What the forward and the backward both compute for one frame: `phi(q)`, `phi(k)`
/// (`[tokens, width]`), per head `A_h = phi(k_h)^T v_h` (`d x d`, heads one after the other)
/// and `z_h = sum_j phi(k_j)` (`width` in all), and `1 / s` with `s = phi(q_i) . z_h + eps`
/// per token and head. The buffers are reused from frame to frame.
struct Summary {
    eps: f32,
    qp: Vec<f32>,
    kp: Vec<f32>,
    a: Vec<f32>,
    z: Vec<f32>,
    inv_s: Vec<f32>,
}

impl Summary {
    fn new(dims: Dims, eps: f32) -> Self {
        let (fl, d) = (dims.frame(), dims.head_dim);
        Self {
            eps,
            qp: vec![0.0; fl],
            kp: vec![0.0; fl],
            a: vec![0.0; dims.heads * d * d],
            z: vec![0.0; dims.width()],
            inv_s: vec![0.0; dims.tokens * dims.heads],
        }
    }

    /// Fills every buffer for the frame `qf`, `kf`, `vf`.
    fn of_frame(&mut self, dims: Dims, qf: &[f32], kf: &[f32], vf: &[f32]) {
        let (w, d) = (dims.width(), dims.head_dim);
        phi_into(&mut self.qp, qf);
        phi_into(&mut self.kp, kf);
        self.z.fill(0.0);
        for kj in self.kp.chunks_exact(w) {
            for (zc, &kc) in self.z.iter_mut().zip(kj) {
                *zc += kc;
            }
        }
        for (h, ah) in self.a.chunks_exact_mut(d * d).enumerate() {
            let (kh, vh) = (dims.head(&self.kp, h), dims.head(vf, h));
            matmul(MatMut::row_major(ah, d, d), false, kh.t(), vh, 1.0);
        }
        let per_token = self.inv_s.chunks_exact_mut(dims.heads);
        for (qi, inv) in self.qp.chunks_exact(w).zip(per_token) {
            for ((q, zh), inv) in qi.chunks_exact(d).zip(self.z.chunks_exact(d)).zip(inv) {
                *inv = 1.0 / (dot(q, zh) + self.eps);
            }
        }
    }

    /// `A_h` as a matrix.
    fn a(&self, d: usize, h: usize) -> MatRef<'_> {
        MatRef::row_major(&self.a[h * d * d..(h + 1) * d * d], d, d)
    }

    /// The numerators `n_h = phi(q_h) A_h` of every head, written into `dst` (`[tokens, width]`).
    fn numerators(&self, dims: Dims, dst: &mut [f32]) {
        for h in 0..dims.heads {
            let qh = dims.head(&self.qp, h);
            matmul(
                dims.head_mut(dst, h),
                false,
                qh,
                self.a(dims.head_dim, h),
                1.0,
            );
        }
    }
}

/// The backward's own buffers for one frame: `dn` over `[tokens, width]`, per head `dA`
/// (`d x d`) and `dz` (`width` in all), `ds` per token and head.
struct BackwardScratch {
    dn: Vec<f32>,
    da: Vec<f32>,
    dz: Vec<f32>,
    ds: Vec<f32>,
}

impl BackwardScratch {
    fn new(dims: Dims) -> Self {
        let d = dims.head_dim;
        Self {
            dn: vec![0.0; dims.frame()],
            da: vec![0.0; dims.heads * d * d],
            dz: vec![0.0; dims.width()],
            ds: vec![0.0; dims.tokens * dims.heads],
        }
    }
}

/// The output of one frame, written into `of`: `n_i / s_i` per head.
fn forward_frame(
    dims: Dims,
    (qf, kf, vf): (&[f32], &[f32], &[f32]),
    of: &mut [f32],
    sm: &mut Summary,
) {
    let (w, d) = (dims.width(), dims.head_dim);
    sm.of_frame(dims, qf, kf, vf);
    sm.numerators(dims, of);
    for (oi, inv) in of
        .chunks_exact_mut(w)
        .zip(sm.inv_s.chunks_exact(dims.heads))
    {
        for (out, &inv) in oi.chunks_exact_mut(d).zip(inv) {
            for o in out {
                *o *= inv;
            }
        }
    }
}

/// The gradients of one frame, written into `dqf`, `dkf`, `dvf` (the module docs' equations).
fn backward_frame(
    dims: Dims,
    (qf, kf, vf, gf): (&[f32], &[f32], &[f32], &[f32]),
    (dqf, dkf, dvf): (&mut [f32], &mut [f32], &mut [f32]),
    (sm, bs): (&mut Summary, &mut BackwardScratch),
) {
    let (w, d) = (dims.width(), dims.head_dim);
    sm.of_frame(dims, qf, kf, vf);
    sm.numerators(dims, &mut bs.dn);
    // dn_i = G_i / s_i (overwriting n_i), ds_i = -(G_i . n_i) / s_i^2; dz = sum_i ds_i Q_i
    bs.dz.fill(0.0);
    let per_token = sm
        .inv_s
        .chunks_exact(dims.heads)
        .zip(bs.ds.chunks_exact_mut(dims.heads));
    let rows = bs
        .dn
        .chunks_exact_mut(w)
        .zip(gf.chunks_exact(w))
        .zip(sm.qp.chunks_exact(w))
        .zip(per_token);
    for (((ni, gi), qi), (inv, ds)) in rows {
        let heads = ni
            .chunks_exact_mut(d)
            .zip(gi.chunks_exact(d))
            .zip(qi.chunks_exact(d).zip(bs.dz.chunks_exact_mut(d)))
            .zip(inv.iter().zip(ds.iter_mut()));
        for (((n, g), (q, dzh)), (&inv, ds)) in heads {
            *ds = -dot(g, n) * inv * inv;
            for (o, &gv) in n.iter_mut().zip(g) {
                *o = gv * inv;
            }
            for (o, &qc) in dzh.iter_mut().zip(q) {
                *o += *ds * qc;
            }
        }
    }
    for (h, dah) in bs.da.chunks_exact_mut(d * d).enumerate() {
        let dnh = dims.head(&bs.dn, h);
        // dQ_h = dn_h A_h^T (the ds z term and phi' below); dA_h = Q_h^T dn_h
        matmul(dims.head_mut(dqf, h), false, dnh, sm.a(d, h).t(), 1.0);
        let qh = dims.head(&sm.qp, h);
        matmul(MatMut::row_major(dah, d, d), false, qh.t(), dnh, 1.0);
        // dK_h = v_h dA_h^T (dz and phi' below); dv_h = K_h dA_h
        let da = MatRef::row_major(dah, d, d);
        matmul(dims.head_mut(dkf, h), false, dims.head(vf, h), da.t(), 1.0);
        matmul(dims.head_mut(dvf, h), false, dims.head(&sm.kp, h), da, 1.0);
    }
    let rows = dqf
        .chunks_exact_mut(w)
        .zip(sm.qp.chunks_exact(w))
        .zip(bs.ds.chunks_exact(dims.heads));
    for ((dqi, qi), ds) in rows {
        let heads = dqi
            .chunks_exact_mut(d)
            .zip(qi.chunks_exact(d))
            .zip(sm.z.chunks_exact(d))
            .zip(ds);
        for (((dq, q), zh), &ds) in heads {
            for ((o, &zc), &qc) in dq.iter_mut().zip(zh).zip(q) {
                *o = (*o + ds * zc) * phi_slope(qc);
            }
        }
    }
    for (dkj, kj) in dkf.chunks_exact_mut(w).zip(sm.kp.chunks_exact(w)) {
        for ((o, &dzc), &kc) in dkj.iter_mut().zip(&bs.dz).zip(kj) {
            *o = (*o + dzc) * phi_slope(kc);
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
    let dims = Dims::of(q, heads);
    let fl = dims.frame();
    let mut out = vec![0.0f32; dims.frames * fl];
    let per = rows_per_part(dims.frames, fl);
    let (q, k, v) = (values(q), values(k), values(v));
    let kernel = Plain(move |(part, out): (usize, &mut [f32])| {
        let mut sm = Summary::new(dims, eps as f32);
        for (i, of) in out.chunks_mut(fl).enumerate() {
            let r = (part * per + i) * fl..(part * per + i + 1) * fl;
            forward_frame(dims, (&q[r.clone()], &k[r.clone()], &v[r]), of, &mut sm);
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
        let (dims, eps) = (Dims::of(&st.q, st.heads), st.eps as f32);
        let fl = dims.frame();
        let n = dims.frames * fl;
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let per = rows_per_part(dims.frames, fl);
        let (q, k, v, g) = (values(&st.q), values(&st.k), values(&st.v), values(&grad));
        type Part<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]));
        let kernel = Plain(move |(part, ((dq, dk), dv)): Part<'_>| {
            let (mut sm, mut bs) = (Summary::new(dims, eps), BackwardScratch::new(dims));
            let frames = dq
                .chunks_mut(fl)
                .zip(dk.chunks_mut(fl))
                .zip(dv.chunks_mut(fl));
            for (i, grads) in frames.enumerate() {
                let r = (part * per + i) * fl..(part * per + i + 1) * fl;
                let inputs = (&q[r.clone()], &k[r.clone()], &v[r.clone()], &g[r]);
                let ((dqf, dkf), dvf) = grads;
                backward_frame(dims, inputs, (dqf, dkf, dvf), (&mut sm, &mut bs));
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
