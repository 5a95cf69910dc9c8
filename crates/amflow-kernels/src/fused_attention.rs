//! The two matrix products of multi-head self-attention (model spec, section 1) as fused ops
//! on the CPU backend, with their own backward passes:
//!
//! - logits `L[f, h] = scale q_h k_h^T`, `[frames, heads, tokens, tokens]`;
//! - output `O[f, :, h] = P[f, h] v_h`, heads merged into `[frames, tokens, width]`.
//!
//! `q`, `k`, `v` come packed as one `[frames, tokens, 3 width]` buffer (one product of the
//! layer input with the three weights stacked; [`crate::heads`]), each with its heads side by
//! side: each head's product reads its columns in place and writes its output columns in place,
//! so the head split and merge cost no copies, the scale rides on the product, and each output
//! is written once (burn's CPU matrix product zero-fills its output and then copies it into an
//! aligned buffer: 6% of an inference).
//!
//! Backward: `dq_h = scale dL k_h`, `dk_h = scale dL^T q_h`; `dP = dO_h v_h^T`,
//! `dv_h = P^T dO_h`, frames in parallel, each product through [`super::gemm`]. All three land
//! in one `[frames, tokens, 3 width]` gradient: the ops of one attention call share a
//! [`GradientLink`], and the op whose backward runs second (the scores op: the apply op reads
//! its output, so autodiff runs the apply op's backward first) takes the gradient the first one
//! registered back out of the container and adds its columns into it, where autodiff would
//! otherwise add two `3 width` gradients (or, with three projections, three `width` ones).

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::flex_host::{contiguous, tensor_of, values, with_backward};
use super::gemm::{matmul, MatMut, MatRef};
use crate::heads::{HeadLayout, Projection};
use crate::host_kernels::{self, rows_per_part, run_parts, Plain};

/// Shared by the ops of one attention call: the nodes (`qkv`, the probabilities) for which one
/// of them has registered a gradient, which the next one may then take back and add into
/// instead of registering its own (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct GradientLink(Arc<Mutex<Vec<NodeId>>>);

impl GradientLink {
    fn mark(&self, id: NodeId) {
        let mut ids = self.0.lock().expect("gradient link");
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    fn marked(&self, id: NodeId) -> bool {
        self.0.lock().expect("gradient link").contains(&id)
    }
}

/// The attention products on packed projections (see the module docs).
#[backend_extension(Flex, Autodiff)]
pub trait AttentionProductOps: burn::backend::Backend {
    /// `scale q_h k_h^T` per frame and head: `[frames, heads, tokens, tokens]`.
    fn attention_logits(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        link: GradientLink,
    ) -> FloatTensor<Self>;
    /// `P_h v_h` per frame and head, heads merged: `[frames, tokens, width]`.
    fn attention_apply(
        p: FloatTensor<Self>,
        qkv: FloatTensor<Self>,
        heads: usize,
        link: GradientLink,
    ) -> FloatTensor<Self>;
    /// `softmax(scale q_h k_h^T)` per frame and head, each map normalised while it is in the
    /// cache: `[frames, heads, tokens, tokens]`.
    fn attention_probs(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        link: GradientLink,
    ) -> FloatTensor<Self>;
    /// The column sums of the probabilities `P^T 1` per frame and head, heads last:
    /// `[frames, tokens, heads]` (aligned AM flow's input).
    fn attention_column_sums(p: FloatTensor<Self>, link: GradientLink) -> FloatTensor<Self>;
    /// Attention of an untracked `qkv` whose maps nobody keeps: `P_h v_h` with
    /// `P_h = softmax(scale q_h k_h^T)`, each map computed, normalised, summed and applied in
    /// one scratch buffer that stays in the cache ([`in_cache_forward`]). One flat buffer: the
    /// heads' merged output `[frames, tokens, width]`, then, when `column_sums`, `P^T 1`
    /// `[frames, tokens, heads]`.
    ///
    /// # Panics
    /// On `Autodiff` when `qkv` is tracked (its backward needs the maps: take
    /// [`AttentionProductOps::attention_probs`] and the others).
    fn attention_in_cache(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        column_sums: bool,
    ) -> FloatTensor<Self>;
}

/// Sizes of one attention call: the packed projections' layout, and here its
/// `tokens x tokens` maps.
type Dims = HeadLayout;

impl Dims {
    /// The sizes of maps `[frames, heads, tokens, tokens]` (no projection read).
    fn of_maps(p: &FlexTensor) -> Self {
        let s = p.layout().shape();
        Self {
            frames: s[0],
            tokens: s[2],
            heads: s[1],
            head_dim: 0,
            stride: 0,
        }
    }
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

fn logits_forward(qkv: &FlexTensor, heads: usize, scale: f64) -> FlexTensor {
    scores_forward(qkv, heads, scale, false)
}

fn probs_forward(qkv: &FlexTensor, heads: usize, scale: f64) -> FlexTensor {
    scores_forward(qkv, heads, scale, true)
}

/// `scale q_h k_h^T` per frame and head, each map put through a softmax over its rows right
/// after its product when `normalise`.
fn scores_forward(qkv: &FlexTensor, heads: usize, scale: f64, normalise: bool) -> FlexTensor {
    let dims = Dims::packed(qkv, heads);
    let qkv = values(qkv);
    let fl = dims.frame();
    let mut maps = vec![0.0f32; dims.frames * dims.heads * dims.map()];
    per_frame(dims, &mut maps, dims.heads * dims.map(), |f, frame_maps| {
        let x = &qkv[f * fl..(f + 1) * fl];
        for h in 0..dims.heads {
            let qh = dims.packed_head(x, Projection::Query, h);
            let kh = dims.packed_head(x, Projection::Key, h).t();
            matmul(dims.map_mut(frame_maps, h), false, qh, kh, scale as f32);
            if normalise {
                let map = &mut frame_maps[h * dims.map()..(h + 1) * dims.map()];
                host_kernels::softmax_rows_in_place(map, dims.tokens);
            }
        }
    });
    tensor_of(maps, [dims.frames, dims.heads, dims.tokens, dims.tokens])
}

fn apply_forward(p: &FlexTensor, qkv: &FlexTensor, heads: usize) -> FlexTensor {
    let dims = Dims::packed(qkv, heads);
    let merged = dims.unpacked();
    let (p, qkv) = (values(p), values(qkv));
    let (fl, ol, ml) = (dims.frame(), merged.frame(), dims.heads * dims.map());
    let mut out = vec![0.0f32; dims.frames * ol];
    per_frame(dims, &mut out, ol, |f, of| {
        let (pf, x) = (&p[f * ml..(f + 1) * ml], &qkv[f * fl..(f + 1) * fl]);
        for h in 0..dims.heads {
            let vh = dims.packed_head(x, Projection::Value, h);
            matmul(merged.head_mut(of, h), false, dims.map_of(pf, h), vh, 1.0);
        }
    });
    tensor_of(out, [dims.frames, dims.tokens, dims.width()])
}

/// [`AttentionProductOps::attention_in_cache`]: per frame (frames split over the cores) and
/// head, `scale q_h k_h^T` into a scratch map of the part's own, its rows normalised, its
/// column sums taken when `column_sums`, and `P_h v_h` written into the head's output columns,
/// while the map is in the cache. The `[frames, heads, tokens, tokens]` maps of
/// [`probs_forward`] (12.7 MB per ViT-S/14 block at 8 frames, zero-filled, written, then read
/// by the column sums and again by [`apply_forward`]) are never in memory.
fn in_cache_forward(qkv: &FlexTensor, heads: usize, scale: f64, column_sums: bool) -> FlexTensor {
    let dims = Dims::packed(qkv, heads);
    let merged = dims.unpacked();
    let qkv = values(qkv);
    let (fl, ol, t) = (dims.frame(), merged.frame(), dims.tokens);
    let sums_per_frame = if column_sums { t * dims.heads } else { 0 };
    let per = dims.frames_per_part();
    let outputs_len = dims.frames * ol;
    let mut out = vec![0.0f32; outputs_len + dims.frames * sums_per_frame];
    let (outputs, sums) = out.split_at_mut(outputs_len);
    let sums_parts = sums.chunks_mut((per * sums_per_frame).max(1));
    // Without column sums `sums` is empty: pad its parts so that every output part has one.
    let sums_parts = sums_parts.chain(std::iter::repeat_with(|| &mut [][..]));
    run_parts(
        outputs.chunks_mut(per * ol).zip(sums_parts).enumerate(),
        Plain(
            move |(part, (outputs, sums)): (usize, (&mut [f32], &mut [f32]))| {
                let (mut map, mut column) = (vec![0.0f32; dims.map()], vec![0.0f32; t]);
                for (i, of) in outputs.chunks_mut(ol).enumerate() {
                    let f = part * per + i;
                    let x = &qkv[f * fl..(f + 1) * fl];
                    let m = &mut sums[i * sums_per_frame..(i + 1) * sums_per_frame];
                    for h in 0..dims.heads {
                        let qh = dims.packed_head(x, Projection::Query, h);
                        let kh = dims.packed_head(x, Projection::Key, h).t();
                        matmul(dims.map_mut(&mut map, 0), false, qh, kh, scale as f32);
                        host_kernels::softmax_rows_in_place(&mut map, t);
                        if column_sums {
                            column_sums_of_map(&map, &mut column, m, dims.heads, h);
                        }
                        let vh = dims.packed_head(x, Projection::Value, h);
                        let p = dims.map_of(&map, 0);
                        matmul(merged.head_mut(of, h), false, p, vh, 1.0);
                    }
                }
            },
        ),
    );
    tensor_of(out, [outputs_len + dims.frames * sums_per_frame])
}

/// `m[j, h] = sum_i map[i, j]` for one `t x t` map of head `h` (`m` `[t, heads]`), summed in
/// `sums` (`t` values, overwritten).
fn column_sums_of_map(map: &[f32], sums: &mut [f32], m: &mut [f32], heads: usize, h: usize) {
    let t = sums.len();
    sums.fill(0.0);
    for row in map.chunks_exact(t) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    for (j, s) in sums.iter().enumerate() {
        m[j * heads + h] = *s;
    }
}

/// `m[f, j, h] = sum_i P[f, h, i, j]`.
fn column_sums_forward(p: &FlexTensor) -> FlexTensor {
    let dims = Dims::of_maps(p);
    let (p, n, t) = (values(p), dims.map(), dims.tokens);
    let mut out = vec![0.0f32; dims.frames * t * dims.heads];
    per_frame(dims, &mut out, t * dims.heads, |f, m| {
        let mut sums = vec![0.0f32; t];
        for h in 0..dims.heads {
            let map = &p[(f * dims.heads + h) * n..][..n];
            column_sums_of_map(map, &mut sums, m, dims.heads, h);
        }
    });
    tensor_of(out, [dims.frames, t, dims.heads])
}

impl AttentionProductOps for Flex {
    fn attention_column_sums(p: FlexTensor, _: GradientLink) -> FlexTensor {
        column_sums_forward(&contiguous(p))
    }

    fn attention_logits(qkv: FlexTensor, heads: usize, scale: f64, _: GradientLink) -> FlexTensor {
        logits_forward(&contiguous(qkv), heads, scale)
    }

    fn attention_apply(
        p: FlexTensor,
        qkv: FlexTensor,
        heads: usize,
        _: GradientLink,
    ) -> FlexTensor {
        apply_forward(&contiguous(p), &contiguous(qkv), heads)
    }

    fn attention_probs(qkv: FlexTensor, heads: usize, scale: f64, _: GradientLink) -> FlexTensor {
        probs_forward(&contiguous(qkv), heads, scale)
    }

    fn attention_in_cache(
        qkv: FlexTensor,
        heads: usize,
        scale: f64,
        column_sums: bool,
    ) -> FlexTensor {
        in_cache_forward(&contiguous(qkv), heads, scale, column_sums)
    }
}

/// The gradient (of `shape`) a backward adds its part into: `taken`, the one another op of
/// the call registered and `take_shared_gradient!` took back out of the container, or a new
/// zero one. Register the result with [`register_shared_gradient`].
fn shared_gradient(
    grads: &mut Gradients,
    id: NodeId,
    taken: Option<FlexTensor>,
    shape: &[usize],
) -> TensorData {
    if let Some(taken) = taken {
        if taken.layout().shape().to_vec() == shape {
            return taken.into_data();
        }
        // Not expected: something else registered another shape; autodiff adds it back.
        grads.register::<Flex>(id, taken);
    }
    TensorData::new(vec![0.0f32; shape.iter().product()], shape.to_vec())
}

/// Takes the gradient registered for `$node` (`qkv`, or the probabilities) out of `$grads`
/// when `$link` says one of the call's ops registered one and the container gives it up: the
/// node is not a leaf (`order > 0`), whose gradient would stay registered and be added again.
macro_rules! take_shared_gradient {
    ($grads:expr, $node:expr, $link:expr) => {
        ($link.marked($node.id) && $node.order > 0).then(|| $grads.consume::<Flex>(&$node))
    };
}

fn register_shared_gradient(
    grads: &mut Gradients,
    id: NodeId,
    link: &GradientLink,
    gradient: TensorData,
) {
    grads.register::<Flex>(id, FlexTensor::from_data(gradient));
    link.mark(id);
}

/// The mutable values of a gradient made by [`shared_gradient`].
fn gradient_values(gradient: &mut TensorData) -> &mut [f32] {
    gradient
        .as_mut_slice::<f32>()
        .expect("shared gradients are f32")
}

/// What a scores op's backward needs: `qkv` (a shared buffer) and, for the probabilities,
/// `P`.
#[derive(Debug, Clone)]
struct ScoresState {
    qkv: FlexTensor,
    probs: Option<FlexTensor>,
    heads: usize,
    scale: f32,
    link: GradientLink,
}

impl ScoresState {
    fn shape(&self) -> [usize; 3] {
        let s = self.qkv.layout().shape();
        [s[0], s[1], s[2]]
    }
}

/// The backward of both scores ops: per map, `dS` (`dL` itself for the logits;
/// `P (dP - rowsum(P dP))` for the probabilities, in a scratch map), then
/// `dq_h += scale dS k_h` and `dk_h += scale dS^T q_h` into the `qkv` gradient.
#[derive(Debug)]
struct ScoresBackward;

impl Backward<Flex, 1> for ScoresBackward {
    type State = ScoresState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let st = ops.state;
        let dims = Dims::packed(&st.qkv, st.heads);
        let taken = take_shared_gradient!(grads, node, st.link);
        let mut gradient = shared_gradient(grads, node.id, taken, &st.shape());
        let (gs, qkv) = (values(&grad), values(&st.qkv));
        let probs = st.probs.as_ref().map(values);
        let (fl, ml, n) = (dims.frame(), dims.heads * dims.map(), dims.map());
        let scale = st.scale;
        let per = dims.frames_per_part();
        let parts = gradient_values(&mut gradient)
            .chunks_mut(per * fl)
            .enumerate();
        let kernel = Plain(move |(part, out): (usize, &mut [f32])| {
            let mut ds = vec![0.0f32; if probs.is_some() { n } else { 0 }];
            for (i, of) in out.chunks_mut(fl).enumerate() {
                let f = part * per + i;
                let x = &qkv[f * fl..(f + 1) * fl];
                for h in 0..dims.heads {
                    let at = f * ml + h * n;
                    let s = match probs {
                        Some(p) => {
                            ds.copy_from_slice(&gs[at..at + n]);
                            host_kernels::softmax_backward_in_place(
                                &p[at..at + n],
                                &mut ds,
                                dims.tokens,
                            );
                            MatRef::row_major(&ds, dims.tokens, dims.tokens)
                        }
                        None => MatRef::row_major(&gs[at..at + n], dims.tokens, dims.tokens),
                    };
                    let (qh, kh) = (
                        dims.packed_head(x, Projection::Query, h),
                        dims.packed_head(x, Projection::Key, h),
                    );
                    let dq = dims.packed_head_mut(of, Projection::Query, h);
                    matmul(dq, true, s, kh, scale);
                    let dk = dims.packed_head_mut(of, Projection::Key, h);
                    matmul(dk, true, s.t(), qh, scale);
                }
            }
        });
        run_parts(parts, kernel);
        register_shared_gradient(grads, node.id, &st.link, gradient);
    }
}

/// What the apply op's backward needs: `P` and `qkv` (shared buffers).
#[derive(Debug, Clone)]
struct ApplyState {
    p: FlexTensor,
    qkv: FlexTensor,
    heads: usize,
    link: GradientLink,
}

#[derive(Debug)]
struct ApplyBackward;

impl Backward<Flex, 2> for ApplyBackward {
    type State = ApplyState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_p, node_qkv] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let dims = Dims::packed(&st.qkv, st.heads);
        let merged = dims.unpacked();
        let (go, (p, qkv)) = (values(&grad), (values(&st.p), values(&st.qkv)));
        let (fl, gl, ml) = (dims.frame(), merged.frame(), dims.heads * dims.map());
        if let Some(node) = node_p {
            // dP += dO_h v_h^T
            let taken = take_shared_gradient!(grads, node, st.link);
            let shape = [dims.frames, dims.heads, dims.tokens, dims.tokens];
            let mut gradient = shared_gradient(grads, node.id, taken, &shape);
            per_frame(dims, gradient_values(&mut gradient), ml, |f, maps| {
                let (gf, x) = (&go[f * gl..(f + 1) * gl], &qkv[f * fl..(f + 1) * fl]);
                for h in 0..dims.heads {
                    let vh = dims.packed_head(x, Projection::Value, h).t();
                    matmul(dims.map_mut(maps, h), true, merged.head(gf, h), vh, 1.0);
                }
            });
            register_shared_gradient(grads, node.id, &st.link, gradient);
        }
        if let Some(node) = node_qkv {
            // dv_h += P^T dO_h
            let s = st.qkv.layout().shape().to_vec();
            let taken = take_shared_gradient!(grads, node, st.link);
            let mut gradient = shared_gradient(grads, node.id, taken, &s);
            per_frame(dims, gradient_values(&mut gradient), fl, |f, of| {
                let (pf, gf) = (&p[f * ml..(f + 1) * ml], &go[f * gl..(f + 1) * gl]);
                for h in 0..dims.heads {
                    let pt = dims.map_of(pf, h).t();
                    let dv = dims.packed_head_mut(of, Projection::Value, h);
                    matmul(dv, true, pt, merged.head(gf, h), 1.0);
                }
            });
            register_shared_gradient(grads, node.id, &st.link, gradient);
        }
    }
}

/// `dP[f, h, i, j] += dm[f, j, h]` for every row `i`, into the probabilities' gradient the
/// apply op registered when it ran first.
#[derive(Debug)]
struct ColumnSumsBackward;

impl Backward<Flex, 1> for ColumnSumsBackward {
    type State = (Dims, GradientLink);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let (dims, link) = ops.state;
        let dm = values(&grad);
        let (n, t) = (dims.map(), dims.tokens);
        let taken = take_shared_gradient!(grads, node, link);
        let shape = [dims.frames, dims.heads, t, t];
        let mut gradient = shared_gradient(grads, node.id, taken, &shape);
        per_frame(
            dims,
            gradient_values(&mut gradient),
            dims.heads * n,
            |f, maps| {
                let mut column = vec![0.0f32; t];
                for (h, map) in maps.chunks_exact_mut(n).enumerate() {
                    for (j, c) in column.iter_mut().enumerate() {
                        *c = dm[(f * t + j) * dims.heads + h];
                    }
                    for row in map.chunks_exact_mut(t) {
                        for (d, c) in row.iter_mut().zip(&column) {
                            *d += c;
                        }
                    }
                }
            },
        );
        register_shared_gradient(grads, node.id, &link, gradient);
    }
}

impl<C: CheckpointStrategy> AttentionProductOps for Autodiff<Flex, C> {
    fn attention_column_sums(p: FloatTensor<Self>, link: GradientLink) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ColumnSumsBackward,
            [p],
            |[p]| {
                let p = contiguous(p);
                let m = column_sums_forward(&p);
                ((Dims::of_maps(&p), link), m)
            },
            |[p]| column_sums_forward(&contiguous(p)),
        )
    }

    fn attention_logits(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        link: GradientLink,
    ) -> FloatTensor<Self> {
        scores_op::<C>(qkv, heads, scale, link, false)
    }

    fn attention_apply(
        p: FloatTensor<Self>,
        qkv: FloatTensor<Self>,
        heads: usize,
        link: GradientLink,
    ) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            ApplyBackward,
            [p, qkv],
            |[p, qkv]| {
                let (p, qkv) = (contiguous(p), contiguous(qkv));
                let out = apply_forward(&p, &qkv, heads);
                let state = ApplyState {
                    p,
                    qkv,
                    heads,
                    link,
                };
                (state, out)
            },
            |[p, qkv]| apply_forward(&contiguous(p), &contiguous(qkv), heads),
        )
    }

    fn attention_probs(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        link: GradientLink,
    ) -> FloatTensor<Self> {
        scores_op::<C>(qkv, heads, scale, link, true)
    }

    fn attention_in_cache(
        qkv: FloatTensor<Self>,
        heads: usize,
        scale: f64,
        column_sums: bool,
    ) -> FloatTensor<Self> {
        assert!(
            !qkv.is_tracked(),
            "attention_in_cache keeps no maps for a backward: a tracked qkv takes the probs op"
        );
        let out = in_cache_forward(&contiguous(qkv.into_primitive()), heads, scale, column_sums);
        <FloatTensor<Self>>::new(out)
    }
}

/// The logits op (`normalise` false) or the probabilities op in the graph.
fn scores_op<C: CheckpointStrategy>(
    qkv: FloatTensor<Autodiff<Flex, C>>,
    heads: usize,
    scale: f64,
    link: GradientLink,
    normalise: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    with_backward::<C, _, _>(
        ScoresBackward,
        [qkv],
        |[qkv]| {
            let qkv = contiguous(qkv);
            let out = scores_forward(&qkv, heads, scale, normalise);
            let state = ScoresState {
                qkv,
                probs: normalise.then(|| out.clone()),
                heads,
                scale: scale as f32,
                link,
            };
            (state, out)
        },
        |[qkv]| scores_forward(&contiguous(qkv), heads, scale, normalise),
    )
}

/// `scale q_h k_h^T` per frame and head for packed `qkv` `[frames, tokens, 3 width]` (heads
/// side by side in each projection): `[frames, heads, tokens, tokens]`.
pub(crate) fn logits(qkv: Tensor<3>, heads: usize, scale: f64, link: GradientLink) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_logits(
        qkv.into_dispatch(),
        heads,
        scale,
        link,
    ))
}

/// `softmax(scale q_h k_h^T)` per frame and head for packed `qkv`:
/// `[frames, heads, tokens, tokens]`, the same as [`logits`] followed by a softmax over the
/// last axis without the logits in memory.
pub(crate) fn probs(qkv: Tensor<3>, heads: usize, scale: f64, link: GradientLink) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_probs(
        qkv.into_dispatch(),
        heads,
        scale,
        link,
    ))
}

/// `P^T 1` per frame and head for `p` `[frames, heads, tokens, tokens]`: `[frames, tokens,
/// heads]`.
pub(crate) fn column_sums(p: Tensor<4>, link: GradientLink) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_column_sums(
        p.into_dispatch(),
        link,
    ))
}

/// Attention of an untracked packed `qkv` `[frames, tokens, 3 width]` whose maps nobody keeps,
/// the maps never in memory: the heads' merged output `[frames, tokens, width]` and, when
/// `column_sums`, `P^T 1` `[frames, tokens, heads]` (the same values as [`probs`] followed by
/// [`apply`] and [`column_sums`]).
///
/// # Panics
/// When `qkv` is tracked.
pub(crate) fn in_cache(
    qkv: Tensor<3>,
    heads: usize,
    scale: f64,
    column_sums: bool,
) -> (Tensor<3>, Option<Tensor<3>>) {
    let [frames, tokens, w3] = qkv.dims();
    let width = w3 / 3;
    let flat: Tensor<1> =
        Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_in_cache(
            qkv.into_dispatch(),
            heads,
            scale,
            column_sums,
        ));
    let outputs = frames * tokens * width;
    let merged = flat
        .clone()
        .narrow(0, 0, outputs)
        .reshape([frames, tokens, width]);
    let sums = column_sums.then(|| {
        flat.narrow(0, outputs, frames * tokens * heads)
            .reshape([frames, tokens, heads])
    });
    (merged, sums)
}

/// `P_h v_h` per frame and head for `p` `[frames, heads, tokens, tokens]` and packed `qkv`,
/// heads merged: `[frames, tokens, width]`.
pub(crate) fn apply(p: Tensor<4>, qkv: Tensor<3>, heads: usize, link: GradientLink) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AttentionProductOps>::attention_apply(
        p.into_dispatch(),
        qkv.into_dispatch(),
        heads,
        link,
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

    /// burn's ops on packed projections: `[frames, heads, tokens, d]` views of `q`, `k`, `v`.
    fn split(qkv: &Tensor<3>, which: usize, heads: usize) -> Tensor<4> {
        let [f, n, w3] = qkv.dims();
        let w = w3 / 3;
        qkv.clone()
            .narrow(2, which * w, w)
            .reshape([f, n, heads, w / heads])
            .swap_dims(1, 2)
    }

    fn burn_logits(qkv: &Tensor<3>, heads: usize, scale: f64) -> Tensor<4> {
        split(qkv, 0, heads)
            .matmul(split(qkv, 1, heads).swap_dims(2, 3))
            .mul_scalar(scale)
    }

    /// `P^T 1` per frame and head, heads last: `[frames, tokens, heads]`.
    fn burn_column_sums(p: Tensor<4>) -> Tensor<3> {
        let [f, h, n, _] = p.dims();
        p.sum_dim(2).reshape([f, h, n]).swap_dims(1, 2)
    }

    fn burn_apply(p: Tensor<4>, qkv: &Tensor<3>, heads: usize) -> Tensor<3> {
        let [f, n, w3] = qkv.dims();
        p.matmul(split(qkv, 2, heads))
            .swap_dims(1, 2)
            .reshape([f, n, w3 / 3])
    }

    /// Every op of one call, each output in the loss with its own weights: the logits, the
    /// probabilities and their column sums, and two apply ops (of the softmax of the logits
    /// and of the probabilities), so that every backward but the first takes the `qkv`
    /// gradient (and the probabilities' one) back. Returns the five outputs and the gradient of `x`, from which `qkv` is `x` itself (a leaf,
    /// whose gradient the ops cannot take back) or `1.5 x`.
    fn run(
        x: &Tensor<3>,
        leaf: bool,
        fused: bool,
        heads: usize,
        weights: &[Tensor<4>; 2],
        out_weights: &[Tensor<3>; 2],
        sum_weights: &Tensor<3>,
    ) -> Vec<Vec<f32>> {
        let w3 = x.dims()[2];
        let scale = ((w3 / 3 / heads) as f64).powf(-0.5);
        let x = x.clone().detach().require_grad();
        let qkv = if leaf {
            x.clone()
        } else {
            x.clone().mul_scalar(1.5)
        };
        let (l, p, o1, o2, m) = if fused {
            assert!(on_cpu_f32(&qkv));
            let link = GradientLink::default();
            let l = logits(qkv.clone(), heads, scale, link.clone());
            let p = probs(qkv.clone(), heads, scale, link.clone());
            let o1 = apply(p.clone(), qkv.clone(), heads, link.clone());
            let o2 = apply(activation::softmax(l.clone(), 3), qkv, heads, link.clone());
            let m = column_sums(p.clone(), link);
            (l, p, o1, o2, m)
        } else {
            let l = burn_logits(&qkv, heads, scale);
            let p = activation::softmax(l.clone(), 3);
            let o1 = burn_apply(p.clone(), &qkv, heads);
            let o2 = burn_apply(activation::softmax(l.clone(), 3), &qkv, heads);
            let m = burn_column_sums(p.clone());
            (l, p, o1, o2, m)
        };
        let loss = (l.clone() * weights[0].clone()).sum()
            + (p.clone() * weights[1].clone()).sum()
            + (o1.clone() * out_weights[0].clone()).sum()
            + (o2.clone() * out_weights[1].clone()).sum()
            + (m.clone() * sum_weights.clone()).sum();
        let grads = loss.backward();
        let dx = host(x.grad(&grads).unwrap());
        vec![host(l), host(p), host(o1), host(o2), host(m), dx]
    }

    #[test]
    fn products_and_their_gradients_match_burns_ops() {
        let device = Device::flex().autodiff();
        // 8 frames (split over the cores), and one frame; odd token counts.
        for (frames, tokens, width, heads) in [(8, 37, 48, 6), (1, 5, 12, 3)] {
            let x = random([frames, tokens, 3 * width], &device);
            let weights = [0, 1].map(|_| random([frames, heads, tokens, tokens], &device));
            let out_weights = [0, 1].map(|_| random([frames, tokens, width], &device));
            let sum_weights = random([frames, tokens, heads], &device);
            for leaf in [true, false] {
                let fused = run(&x, leaf, true, heads, &weights, &out_weights, &sum_weights);
                let burn = run(&x, leaf, false, heads, &weights, &out_weights, &sum_weights);
                for (name, (a, b)) in ["L", "P", "O1", "O2", "m", "dqkv"]
                    .iter()
                    .zip(fused.iter().zip(&burn))
                {
                    let err = relative_error(a, b);
                    assert!(
                        err < 1e-5,
                        "{frames}x{tokens}x{width}/{heads} (leaf {leaf}) {name}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_op_alone_gives_the_whole_gradient() {
        // Each op as the only consumer of `qkv` (no gradient to take back): its columns, and
        // zeros in the others.
        let device = Device::flex().autodiff();
        let (frames, tokens, width, heads) = (2, 9, 12, 3);
        let x = random([frames, tokens, 3 * width], &device);
        let wl = random([frames, heads, tokens, tokens], &device);
        let p = activation::softmax(random([frames, heads, tokens, tokens], &device), 3);
        let wo = random([frames, tokens, width], &device);
        let grad_of = |fused: bool, which: usize| {
            let x = x.clone().detach().require_grad();
            let qkv = x.clone().mul_scalar(2.0);
            let loss = match (which, fused) {
                (0, true) => (probs(qkv, heads, 0.5, GradientLink::default()) * wl.clone()).sum(),
                (0, false) => {
                    (activation::softmax(burn_logits(&qkv, heads, 0.5), 3) * wl.clone()).sum()
                }
                (_, true) => {
                    (apply(p.clone(), qkv, heads, GradientLink::default()) * wo.clone()).sum()
                }
                (_, false) => (burn_apply(p.clone(), &qkv, heads) * wo.clone()).sum(),
            };
            host(x.grad(&loss.backward()).unwrap())
        };
        for which in [0, 1] {
            let err = relative_error(&grad_of(true, which), &grad_of(false, which));
            assert!(err < 1e-5, "op {which}: {err}");
        }
    }

    #[test]
    fn untracked_products_match_the_tracked_ones() {
        let device = Device::flex();
        let qkv = random([3, 11, 48], &device);
        let link = GradientLink::default();
        let l = logits(qkv.clone(), 2, 0.25, link.clone());
        let o = apply(activation::softmax(l.clone(), 3), qkv.clone(), 2, link);
        let ad = Device::flex().autodiff();
        let tracked = Tensor::<3>::from_data(qkv.into_data(), &ad).require_grad();
        let link = GradientLink::default();
        let lt = logits(tracked.clone(), 2, 0.25, link.clone());
        let ot = apply(activation::softmax(lt.clone(), 3), tracked, 2, link);
        assert!(relative_error(&host(l), &host(lt)) < 1e-6);
        assert!(relative_error(&host(o), &host(ot)) < 1e-6);
    }

    #[test]
    fn attention_in_the_cache_matches_burns_ops() {
        // On `Flex` and on an untracked `Autodiff<Flex>` tensor; 8 frames (split over the
        // cores, an uneven last part with 7) and one frame; odd token counts.
        for device in [Device::flex(), Device::flex().autodiff()] {
            for (frames, tokens, width, heads) in [(8, 37, 48, 6), (7, 13, 24, 2), (1, 5, 12, 3)] {
                let qkv = random([frames, tokens, 3 * width], &device);
                let scale = 0.3;
                let p = activation::softmax(burn_logits(&qkv, heads, scale), 3);
                let want_o = host(burn_apply(p.clone(), &qkv, heads));
                let want_m = host(burn_column_sums(p));
                for with_sums in [true, false] {
                    let (o, m) = in_cache(qkv.clone(), heads, scale, with_sums);
                    assert_eq!(o.dims(), [frames, tokens, width]);
                    let err = relative_error(&host(o), &want_o);
                    assert!(
                        err < 1e-5,
                        "{frames}x{tokens}x{width}/{heads} output: {err}"
                    );
                    assert_eq!(m.is_some(), with_sums);
                    if let Some(m) = m {
                        assert_eq!(m.dims(), [frames, tokens, heads]);
                        let err = relative_error(&host(m), &want_m);
                        assert!(err < 1e-5, "{frames}x{tokens}x{width}/{heads} sums: {err}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "keeps no maps")]
    fn attention_in_the_cache_refuses_a_tracked_input() {
        let qkv = random([2, 5, 12], &Device::flex().autodiff()).require_grad();
        let _ = in_cache(qkv, 2, 0.5, true);
    }
}
