//! The layout the attention kernels share ([`crate::fused_attention`],
//! [`crate::fused_linear_attention`]): a projection `[frames, tokens, width]` with its heads side
//! by side (`width = heads * head_dim`), whose heads are read and written in place, frame by
//! frame, as strided `tokens x head_dim` views.

use burn::backend::flex::FlexTensor;

use crate::gemm::{MatMut, MatRef};

/// The sizes of a projection `[frames, tokens, heads * head_dim]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLayout {
    pub(crate) frames: usize,
    pub(crate) tokens: usize,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
}

impl HeadLayout {
    /// From a projection `[frames, tokens, width]` split into `heads`.
    pub(crate) fn of(x: &FlexTensor, heads: usize) -> Self {
        let shape = x.layout().shape();
        Self {
            frames: shape[0],
            tokens: shape[1],
            heads,
            head_dim: shape[2] / heads,
        }
    }

    pub(crate) fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Values of one frame of a projection.
    pub(crate) fn frame(&self) -> usize {
        self.tokens * self.width()
    }

    /// Head `h` of a frame of a projection: `tokens x head_dim`, rows `width` apart.
    pub(crate) fn head<'a>(&self, frame: &'a [f32], h: usize) -> MatRef<'a> {
        MatRef::new(
            &frame[h * self.head_dim..],
            self.tokens,
            self.head_dim,
            self.width(),
            1,
        )
    }

    /// Head `h` of a frame of a projection-shaped output.
    pub(crate) fn head_mut<'a>(&self, frame: &'a mut [f32], h: usize) -> MatMut<'a> {
        MatMut::new(
            &mut frame[h * self.head_dim..],
            self.tokens,
            self.head_dim,
            self.width(),
        )
    }
}
