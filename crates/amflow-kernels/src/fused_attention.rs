//! The two matrix products of multi-head self-attention (model spec, section 1) as fused ops
//! on the CPU backend, with their own backward passes:
//!
//! - logits `L[f, h] = scale q_h k_h^T`, `[frames, heads, tokens, tokens]`;
//! - output `O[f, :, h] = P[f, h] v_h`, heads merged into `[frames, tokens, width]`.
//!
//! `q`, `k`, `v` are the projections as they come, `[frames, tokens, width]` with the heads side
//! by side (head `h` is columns `h d .. (h + 1) d`): each head's product reads its columns in
//! place and writes its output columns in place, so the head split and merge cost no copies, the
//! scale rides on the product, and each output is written once (burn's CPU matrix product
//! zero-fills its output and then copies it into an aligned buffer: 6% of an inference).
//!
//! Backward: `dq_h = scale dL k_h`, `dk_h = scale dL^T q_h`; `dP = dO_h v_h^T`,
//! `dv_h = P^T dO_h`. Frames run in parallel, each product through [`super::gemm`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;

use super::flex_host::{contiguous, tensor_of, values, with_backward};
use super::gemm::{matmul, MatMut, MatRef};
use crate::heads::HeadLayout;
use crate::host_kernels::{self, rows_per_part, run_parts, Plain};

/// The attention products (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait AttentionProductOps: burn::backend::Backend {
    /// `scale q_h k_h^T` per frame and head: `[frames, heads, tokens, tokens]`.
    fn attention_logits(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self>;
    /// `P_h v_h` per frame and head, heads merged: `[frames, tokens, width]`.
    fn attention_apply(
        p: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self>;
    /// `softmax(scale q_h k_h^T)` per frame and head, each map normalised while it is in the
    /// cache: `[frames, heads, tokens, tokens]`.
    fn attention_probs(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self>;
}

/// Sizes of one attention call: the projections' layout, and here its `tokens x tokens` maps.
type Dims = HeadLayout;

impl Dims {
    /// Values of one `tokens x tokens` map.
    fn map(&self) -> usize {
        self.tokens * self.tokens
    }
    /// Frames per part when the frames are split over the cores.
    fn frames_per_part(&self) -> usize {
        rows_per_part(self.frames, self.heads * self.map())
    }
    /// Map `h` of a frame of `[heads, tokens, tokens]`.
    fn map_of<'a>(&self, maps: &'a [f32], h: usize) -> MatRef<'a> {
        MatRef::row_major(
            &maps[h * self.map()..(h + 1) * self.map()],
            self.tokens,
            self.tokens,
        )
    }
    fn map_mut<'a>(&self, maps: &'a mut [f32], h: usize) -> MatMut<'a> {
        let n = self.map();
        MatMut::row_major(&mut maps[h * n..(h + 1) * n], self.tokens, self.tokens)
    }
}

/// Runs `work(frame index, that frame's chunk of out)` for every frame, frames split over the
/// cores; `out` holds `frame_len` values per frame.
fn per_frame(
    dims: Dims,
    out: &mut [f32],
    frame_len: usize,
    work: impl Fn(usize, &mut [f32]) + Copy + Send,
) {
    let per = dims.frames_per_part();
    run_parts(
        out.chunks_mut(per * frame_len).enumerate(),
        Plain(move |(part, out): (usize, &mut [f32])| {
            for (i, frame) in out.chunks_mut(frame_len).enumerate() {
                work(part * per + i, frame);
            }
        }),
    );
}

fn logits_forward(q: &FlexTensor, k: &FlexTensor, heads: usize, scale: f64) -> FlexTensor {
    scores_forward(q, k, heads, scale, false)
}

fn probs_forward(q: &FlexTensor, k: &FlexTensor, heads: usize, scale: f64) -> FlexTensor {
    scores_forward(q, k, heads, scale, true)
}

/// `scale q_h k_h^T` per frame and head, each map put through a softmax over its rows right
/// after its product when `normalise`.
fn scores_forward(
    q: &FlexTensor,
    k: &FlexTensor,
    heads: usize,
    scale: f64,
    normalise: bool,
) -> FlexTensor {
    let dims = Dims::of(q, heads);
    let (q, k) = (values(q), values(k));
    let fl = dims.frame();
    let mut maps = vec![0.0f32; dims.frames * dims.heads * dims.map()];
    per_frame(dims, &mut maps, dims.heads * dims.map(), |f, frame_maps| {
        let (qf, kf) = (&q[f * fl..(f + 1) * fl], &k[f * fl..(f + 1) * fl]);
        for h in 0..dims.heads {
            let (qh, kh) = (dims.head(qf, h), dims.head(kf, h).t());
            matmul(dims.map_mut(frame_maps, h), false, qh, kh, scale as f32);
            if normalise {
                let map = &mut frame_maps[h * dims.map()..(h + 1) * dims.map()];
                host_kernels::softmax_rows_in_place(map, dims.tokens);
            }
        }
    });
    tensor_of(maps, [dims.frames, dims.heads, dims.tokens, dims.tokens])
}

fn apply_forward(p: &FlexTensor, v: &FlexTensor, heads: usize) -> FlexTensor {
    let dims = Dims::of(v, heads);
    let (p, v) = (values(p), values(v));
    let (fl, ml) = (dims.frame(), dims.heads * dims.map());
    let mut out = vec![0.0f32; dims.frames * fl];
    per_frame(dims, &mut out, fl, |f, of| {
        let (pf, vf) = (&p[f * ml..(f + 1) * ml], &v[f * fl..(f + 1) * fl]);
        for h in 0..dims.heads {
            matmul(
                dims.head_mut(of, h),
                false,
                dims.map_of(pf, h),
                dims.head(vf, h),
                1.0,
            );
        }
    });
    tensor_of(out, [dims.frames, dims.tokens, dims.width()])
}

impl AttentionProductOps for Flex {
    fn attention_logits(q: FlexTensor, k: FlexTensor, heads: usize, scale: f64) -> FlexTensor {
        logits_forward(&contiguous(q), &contiguous(k), heads, scale)
    }

    fn attention_apply(p: FlexTensor, v: FlexTensor, heads: usize) -> FlexTensor {
        apply_forward(&contiguous(p), &contiguous(v), heads)
    }

    fn attention_probs(q: FlexTensor, k: FlexTensor, heads: usize, scale: f64) -> FlexTensor {
        probs_forward(&contiguous(q), &contiguous(k), heads, scale)
    }
}

/// The two inputs of a product, kept for its backward (shared buffers, not copies).
#[derive(Debug, Clone)]
struct ProductState {
    a: FlexTensor,
    b: FlexTensor,
    heads: usize,
    scale: f32,
}

#[derive(Debug)]
struct LogitsBackward;

impl Backward<Flex, 2> for LogitsBackward {
    type State = ProductState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let ProductState {
            a: q,
            b: k,
            heads,
            scale,
        } = ops.state;
        let dims = Dims::of(&q, heads);
        let (gl, (q, k)) = (values(&grad), (values(&q), values(&k)));
        let (fl, ml) = (dims.frame(), dims.heads * dims.map());
        let shape = [dims.frames, dims.tokens, dims.width()];
        // dq_h = scale dL k_h, dk_h = scale dL^T q_h
        let gradient = |other: &[f32], transpose: bool| {
            let mut out = vec![0.0f32; dims.frames * fl];
            per_frame(dims, &mut out, fl, |f, of| {
                let (gf, xf) = (&gl[f * ml..(f + 1) * ml], &other[f * fl..(f + 1) * fl]);
                for h in 0..dims.heads {
                    let g = dims.map_of(gf, h);
                    let g = if transpose { g.t() } else { g };
                    matmul(dims.head_mut(of, h), false, g, dims.head(xf, h), scale);
                }
            });
            tensor_of(out, shape)
        };
        if let Some(node) = node_q {
            let dq = gradient(k, false);
            grads.register::<Flex>(node.id, dq);
        }
        if let Some(node) = node_k {
            let dk = gradient(q, true);
            grads.register::<Flex>(node.id, dk);
        }
    }
}

/// What the probabilities' backward needs: `q`, `k` and `P` (shared buffers).
#[derive(Debug, Clone)]
struct ProbsState {
    q: FlexTensor,
    k: FlexTensor,
    probs: FlexTensor,
    heads: usize,
    scale: f32,
}

#[derive(Debug)]
struct ProbsBackward;

impl Backward<Flex, 2> for ProbsBackward {
    type State = ProbsState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let dims = Dims::of(&st.q, st.heads);
        let (gp, p) = (values(&grad), values(&st.probs));
        let (q, k) = (values(&st.q), values(&st.k));
        let (fl, ml, n) = (dims.frame(), dims.heads * dims.map(), dims.map());
        let scale = st.scale;
        // Per map: dS = P (dP - rowsum(P dP)) in a scratch map, then dq_h = scale dS k_h and
        // dk_h = scale dS^T q_h.
        let mut dq = vec![0.0f32; dims.frames * fl];
        let mut dk = vec![0.0f32; dims.frames * fl];
        let per = dims.frames_per_part();
        let parts = dq
            .chunks_mut(per * fl)
            .zip(dk.chunks_mut(per * fl))
            .enumerate();
        let kernel = Plain(move |(part, (dq, dk)): (usize, (&mut [f32], &mut [f32]))| {
            let mut ds = vec![0.0f32; n];
            let frames = dq.chunks_mut(fl).zip(dk.chunks_mut(fl)).enumerate();
            for (i, (dqf, dkf)) in frames {
                let f = part * per + i;
                let (qf, kf) = (&q[f * fl..(f + 1) * fl], &k[f * fl..(f + 1) * fl]);
                for h in 0..dims.heads {
                    let at = f * ml + h * n;
                    ds.copy_from_slice(&gp[at..at + n]);
                    host_kernels::softmax_backward_in_place(&p[at..at + n], &mut ds, dims.tokens);
                    let s = MatRef::row_major(&ds, dims.tokens, dims.tokens);
                    matmul(dims.head_mut(dqf, h), false, s, dims.head(kf, h), scale);
                    matmul(dims.head_mut(dkf, h), false, s.t(), dims.head(qf, h), scale);
                }
            }
        });
        run_parts(parts, kernel);
        let shape = [dims.frames, dims.tokens, dims.width()];
        if let Some(node) = node_q {
            grads.register::<Flex>(node.id, tensor_of(dq, shape));
        }
        if let Some(node) = node_k {
            grads.register::<Flex>(node.id, tensor_of(dk, shape));
        }
    }
}

#[derive(Debug)]
struct ApplyBackward;

impl Backward<Flex, 2> for ApplyBackward {
    type State = ProductState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_p, node_v] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let ProductState {
            a: p, b: v, heads, ..
        } = ops.state;
        let dims = Dims::of(&v, heads);
        let (go, (p, v)) = (values(&grad), (values(&p), values(&v)));
        let (fl, ml) = (dims.frame(), dims.heads * dims.map());
        if let Some(node) = node_p {
            // dP = dO_h v_h^T
            let mut dp = vec![0.0f32; dims.frames * ml];
            per_frame(dims, &mut dp, ml, |f, maps| {
                let (gf, vf) = (&go[f * fl..(f + 1) * fl], &v[f * fl..(f + 1) * fl]);
                for h in 0..dims.heads {
                    let dst = dims.map_mut(maps, h);
                    matmul(dst, false, dims.head(gf, h), dims.head(vf, h).t(), 1.0);
                }
            });
            let shape = [dims.frames, dims.heads, dims.tokens, dims.tokens];
            grads.register::<Flex>(node.id, tensor_of(dp, shape));
        }
        if let Some(node) = node_v {
            // dv_h = P^T dO_h
            let mut dv = vec![0.0f32; dims.frames * fl];
            per_frame(dims, &mut dv, fl, |f, of| {
                let (pf, gf) = (&p[f * ml..(f + 1) * ml], &go[f * fl..(f + 1) * fl]);
                for h in 0..dims.heads {
                    let pt = dims.map_of(pf, h).t();
                    matmul(dims.head_mut(of, h), false, pt, dims.head(gf, h), 1.0);
                }
            });
            let shape = [dims.frames, dims.tokens, dims.width()];
            grads.register::<Flex>(node.id, tensor_of(dv, shape));
        }
    }
}

impl<C: CheckpointStrategy> AttentionProductOps for Autodiff<Flex, C> {
    fn attention_logits(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            LogitsBackward,
            [q, k],
            |[q, k]| {
                let (q, k) = (contiguous(q), contiguous(k));
                let logits = logits_forward(&q, &k, heads, scale);
                let scale = scale as f32;
                let state = ProductState {
                    a: q,
                    b: k,
                    heads,
                    scale,
                };
                (state, logits)
            },
            |[q, k]| Flex::attention_logits(q, k, heads, scale),
        )
    }

    fn attention_apply(
        p: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ApplyBackward,
            [p, v],
            |[p, v]| {
                let (p, v) = (contiguous(p), contiguous(v));
                let out = apply_forward(&p, &v, heads);
                let state = ProductState {
                    a: p,
                    b: v,
                    heads,
                    scale: 1.0,
                };
                (state, out)
            },
            |[p, v]| Flex::attention_apply(p, v, heads),
        )
    }

    fn attention_probs(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ProbsBackward,
            [q, k],
            |[q, k]| {
                let (q, k) = (contiguous(q), contiguous(k));
                let probs = probs_forward(&q, &k, heads, scale);
                let state = ProbsState {
                    q,
                    k,
                    probs: probs.clone(),
                    heads,
                    scale: scale as f32,
                };
                (state, probs)
            },
            |[q, k]| Flex::attention_probs(q, k, heads, scale),
        )
    }
}

/// `scale q_h k_h^T` per frame and head for `q`, `k` `[frames, tokens, width]` (heads side by
/// side): `[frames, heads, tokens, tokens]`.
pub(crate) fn logits(q: Tensor<3>, k: Tensor<3>, heads: usize, scale: f64) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_logits(
        q.into_dispatch(),
        k.into_dispatch(),
        heads,
        scale,
    ))
}

/// `softmax(scale q_h k_h^T)` per frame and head for `q`, `k` `[frames, tokens, width]`:
/// `[frames, heads, tokens, tokens]`, the same as [`logits`] followed by a softmax over the
/// last axis without the logits in memory.
pub(crate) fn probs(q: Tensor<3>, k: Tensor<3>, heads: usize, scale: f64) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_probs(
        q.into_dispatch(),
        k.into_dispatch(),
        heads,
        scale,
    ))
}

/// `P_h v_h` per frame and head for `p` `[frames, heads, tokens, tokens]` and `v`
/// `[frames, tokens, width]`, heads merged: `[frames, tokens, width]`.
pub(crate) fn apply(p: Tensor<4>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_apply(
        p.into_dispatch(),
        v.into_dispatch(),
        heads,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::on_cpu_f32;
    use crate::flex_host::testing::{host, relative_error};
    use burn::tensor::activation;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        crate::flex_host::testing::random(shape, 1.0, device)
    }

    #[test]
    fn products_and_their_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        // 8 frames (split over the cores), and one frame; odd token counts.
        for (frames, tokens, width, heads) in [(8, 37, 48, 6), (1, 5, 12, 3)] {
            let inputs: Vec<Tensor<3>> = (0..3)
                .map(|_| random([frames, tokens, width], &device))
                .collect();
            let weights = random([frames, tokens, width], &device);
            let lw = random([frames, heads, tokens, tokens], &device);
            let scale = ((width / heads) as f64).powf(-0.5);
            let run = |fused: bool| {
                let [q, k, v] = [0, 1, 2].map(|i| inputs[i].clone().detach().require_grad());
                let (l, o) = if fused {
                    assert!(on_cpu_f32(&q));
                    let l = logits(q.clone(), k.clone(), heads, scale);
                    let p = activation::softmax(l.clone(), 3);
                    (l, apply(p, v.clone(), heads))
                } else {
                    let split = |x: Tensor<3>| {
                        x.reshape([frames, tokens, heads, width / heads])
                            .swap_dims(1, 2)
                    };
                    let l = split(q.clone())
                        .matmul(split(k.clone()).swap_dims(2, 3))
                        .mul_scalar(scale);
                    let p = activation::softmax(l.clone(), 3);
                    let o = p
                        .matmul(split(v.clone()))
                        .swap_dims(1, 2)
                        .reshape([frames, tokens, width]);
                    (l, o)
                };
                let loss = (o.clone() * weights.clone()).sum() + (l.clone() * lw.clone()).sum();
                let grads = loss.backward();
                let mut out = vec![host(l), host(o)];
                for x in [q, k, v] {
                    out.push(host(x.grad(&grads).unwrap()));
                }
                out
            };
            let (fused, burn) = (run(true), run(false));
            for (name, (a, b)) in ["L", "O", "dq", "dk", "dv"]
                .iter()
                .zip(fused.iter().zip(&burn))
            {
                let err = relative_error(a, b);
                assert!(
                    err < 1e-5,
                    "{frames}x{tokens}x{width}/{heads} {name}: {err}"
                );
            }
            // The probabilities op against burn's logits and softmax (no loss on the logits).
            let run_probs = |fused: bool| {
                let [q, k, v] = [0, 1, 2].map(|i| inputs[i].clone().detach().require_grad());
                let p = if fused {
                    probs(q.clone(), k.clone(), heads, scale)
                } else {
                    let split = |x: Tensor<3>| {
                        x.reshape([frames, tokens, heads, width / heads])
                            .swap_dims(1, 2)
                    };
                    let l = split(q.clone()).matmul(split(k.clone()).swap_dims(2, 3));
                    activation::softmax(l.mul_scalar(scale), 3)
                };
                let o = apply(p.clone(), v.clone(), heads);
                let loss = (o * weights.clone()).sum() + (p.clone() * lw.clone()).sum();
                let grads = loss.backward();
                let mut out = vec![host(p)];
                for x in [q, k, v] {
                    out.push(host(x.grad(&grads).unwrap()));
                }
                out
            };
            let (fused, burn) = (run_probs(true), run_probs(false));
            for (name, (a, b)) in ["P", "dq", "dk", "dv"].iter().zip(fused.iter().zip(&burn)) {
                let err = relative_error(a, b);
                assert!(
                    err < 1e-5,
                    "probs {frames}x{tokens}x{width}/{heads} {name}: {err}"
                );
            }
        }
    }

    #[test]
    fn untracked_products_match_the_tracked_ones() {
        let device = Device::flex();
        let [q, k, v] = [0, 1, 2].map(|_| random([3, 11, 16], &device));
        let l = logits(q.clone(), k.clone(), 2, 0.25);
        let o = apply(activation::softmax(l.clone(), 3), v.clone(), 2);
        let ad = Device::flex().autodiff();
        let lift = |x: Tensor<3>| Tensor::<3>::from_data(x.into_data(), &ad).require_grad();
        let lt = logits(lift(q), lift(k), 2, 0.25);
        let ot = apply(activation::softmax(lt.clone(), 3), lift(v), 2);
        assert!(relative_error(&host(l), &host(lt)) < 1e-6);
        assert!(relative_error(&host(o), &host(ot)) < 1e-6);
    }
}
