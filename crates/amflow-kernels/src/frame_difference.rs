//! Aligned AM flow's frame difference (model spec, section 2; the paper's
//! `F_t = |phi(A_t) - phi(A_{t+1})|`) as one fused op on the CPU backend, with its own
//! backward: for `x` `[clips, frames, rows, width]`, `y_t = |x_t - x_{t+1}|` for
//! `t < frames - 1`, and the last frame repeats the last pair, `y_{T-1} = y_{T-2}`.
//!
//! burn's ops spell this as two slices, a difference, `abs`, a slice and a concatenation, and
//! their backward as ten passes on one thread (zero-filled slices written back, a sign times
//! the gradient, the concatenation split, gradient sums); here each is one pass over the
//! frames, split over the cores.
//!
//! Backward, with `s_t = sign(x_t - x_{t+1})` (0 at 0, as burn's `abs`) and the last frame's
//! gradient folded into the last pair's, `G_{T-2} = g_{T-2} + g_{T-1}`, `G_t = g_t` otherwise:
//! `dx_t = s_t G_t - s_{t-1} G_{t-1}`, each term where its pair exists.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::prelude::*;

use crate::flex_host::{contiguous, tensor_of, values, with_backward};
use crate::host_kernels::{rows_per_part, run_parts, Plain};

/// The frame difference as a backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait FrameDifferenceOps: burn::backend::Backend {
    /// `|x_t - x_{t+1}|` per clip along axis 1 of `[clips, frames, rows, width]`, the last
    /// pair repeated for the last frame (`frames >= 2`).
    fn abs_frame_difference(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Sizes: `clips` clips of `frames` frames of `len` values.
#[derive(Debug, Clone, Copy)]
struct Frames {
    clips: usize,
    frames: usize,
    len: usize,
}

impl Frames {
    fn of(x: &FlexTensor) -> Self {
        let s = x.layout().shape();
        Self {
            clips: s[0],
            frames: s[1],
            len: s[2] * s[3],
        }
    }

    /// Frame `t` of clip `c` of `x`.
    fn frame<'a>(&self, x: &'a [f32], c: usize, t: usize) -> &'a [f32] {
        let at = (c * self.frames + t) * self.len;
        &x[at..at + self.len]
    }

    /// Runs `work(clip, frame, that frame's chunk of out)` for every frame of every clip,
    /// frames split over the cores.
    fn each(&self, out: &mut [f32], work: impl Fn(usize, usize, &mut [f32]) + Copy + Send) {
        let (frames, len) = (self.frames, self.len);
        let per = rows_per_part(self.clips * frames, len);
        run_parts(
            out.chunks_mut(per * len).enumerate(),
            Plain(move |(part, out): (usize, &mut [f32])| {
                for (i, chunk) in out.chunks_mut(len).enumerate() {
                    let index = part * per + i;
                    work(index / frames, index % frames, chunk);
                }
            }),
        );
    }
}

fn forward(x: &FlexTensor) -> FlexTensor {
    let dims = Frames::of(x);
    assert!(dims.frames >= 2, "a frame difference needs two frames");
    let xs = values(x);
    let mut out = vec![0.0f32; xs.len()];
    dims.each(&mut out, |c, t, y| {
        let pair = t.min(dims.frames - 2);
        let (a, b) = (dims.frame(xs, c, pair), dims.frame(xs, c, pair + 1));
        for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
            *y = (a - b).abs();
        }
    });
    tensor_of(out, x.layout().shape().to_vec())
}

/// `sign(d)`, 0 at 0 (burn's `abs` backward).
fn sign(d: f32) -> f32 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn backward(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let dims = Frames::of(x);
    let (xs, gs) = (values(x), values(grad));
    let last = dims.frames - 2;
    let mut dx = vec![0.0f32; xs.len()];
    dims.each(&mut dx, |c, t, dx| {
        // The pairs frame t belongs to: (t, t + 1) as the first frame, (t - 1, t) as the
        // second; pair `last` carries the last frame's gradient too.
        for (pair, sense) in [(t, 1.0f32), (t.wrapping_sub(1), -1.0f32)] {
            if pair > last {
                continue;
            }
            let (a, b) = (dims.frame(xs, c, pair), dims.frame(xs, c, pair + 1));
            let g = dims.frame(gs, c, pair);
            let extra = (pair == last).then(|| dims.frame(gs, c, last + 1));
            for (i, dx) in dx.iter_mut().enumerate() {
                let g = g[i] + extra.map_or(0.0, |e| e[i]);
                *dx += sense * sign(a[i] - b[i]) * g;
            }
        }
    });
    tensor_of(dx, x.layout().shape().to_vec())
}

impl FrameDifferenceOps for Flex {
    fn abs_frame_difference(x: FlexTensor) -> FlexTensor {
        forward(&contiguous(x))
    }
}

#[derive(Debug)]
struct FrameDifferenceBackward;

impl Backward<Flex, 1> for FrameDifferenceBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            grads.register::<Flex>(node.id, backward(&ops.state, &grad));
        }
    }
}

impl<C: CheckpointStrategy> FrameDifferenceOps for Autodiff<Flex, C> {
    fn abs_frame_difference(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_backward::<C, _, _>(
            FrameDifferenceBackward,
            [x],
            |[x]| {
                let x = contiguous(x);
                let y = forward(&x);
                (x, y)
            },
            |[x]| forward(&contiguous(x)),
        )
    }
}

/// [`FrameDifferenceOps::abs_frame_difference`] on a tensor of the CPU backend.
pub(crate) fn abs_frame_difference(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FrameDifferenceOps>::abs_frame_difference(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flex_host::testing::{host, random, relative_error};

    /// burn's ops: the pairs' differences, `abs`, the last pair repeated.
    fn burn_difference(x: Tensor<4>) -> Tensor<4> {
        let t = x.dims()[1];
        let pairs = (x.clone().narrow(1, 0, t - 1) - x.narrow(1, 1, t - 1)).abs();
        let last = pairs.clone().narrow(1, t - 2, 1);
        Tensor::cat(vec![pairs, last], 1)
    }

    #[test]
    fn difference_and_its_gradient_match_burns_ops() {
        let device = Device::flex().autodiff();
        // Two and three frames (the last pair is the only one / follows one), and eight
        // frames of two clips split over the cores.
        for shape in [[1, 2, 3, 4], [2, 3, 5, 3], [2, 8, 37, 24]] {
            let x = random(shape, 1.0, &device);
            // Equal neighbours somewhere: sign 0 on both paths.
            let x = Tensor::cat(
                vec![x.clone().narrow(1, 0, 1), x.narrow(1, 0, shape[1] - 1)],
                1,
            );
            let w = random(shape, 1.0, &device);
            let run = |fused: bool| {
                let x = x.clone().detach().require_grad();
                let y = if fused {
                    abs_frame_difference(x.clone())
                } else {
                    burn_difference(x.clone())
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                (host(y), host(x.grad(&grads).unwrap()))
            };
            let ((y, dx), (y_ref, dx_ref)) = (run(true), run(false));
            assert!(relative_error(&y, &y_ref) < 1e-6, "{shape:?} values");
            assert!(relative_error(&dx, &dx_ref) < 1e-6, "{shape:?} gradient");
        }
    }

    #[test]
    fn untracked_difference_matches_the_tracked_one() {
        let x = random([1, 4, 3, 2], 1.0, &Device::flex());
        let tracked = Tensor::<4>::from_data(x.clone().into_data(), &Device::flex().autodiff());
        let (a, b) = (
            host(abs_frame_difference(x.clone())),
            host(burn_difference(x)),
        );
        assert!(relative_error(&a, &b) < 1e-6);
        let c = host(abs_frame_difference(tracked.require_grad()));
        assert!(relative_error(&a, &c) < 1e-6);
    }
}
