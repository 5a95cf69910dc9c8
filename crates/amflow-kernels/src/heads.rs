//! The layout the attention kernels share ([`crate::fused_attention`],
//! [`crate::fused_linear_attention`]): a projection `[frames, tokens, width]` with its heads side
//! by side (`width = heads * head_dim`), whose heads are read and written in place, frame by
//! frame, as strided `tokens x head_dim` views. Self-attention packs its three projections into
//! one `[frames, tokens, 3 width]` buffer (`q`, `k`, `v` side by side, one product of the layer
//! input with the three weights stacked); a head of one of them is then a view with rows
//! `3 width` apart, at that projection's column offset ([`Projection`]).

use burn::backend::flex::FlexTensor;

use crate::gemm::{MatMut, MatRef};

/// The sizes of a projection `[frames, tokens, heads * head_dim]`, or of packed projections
/// `[frames, tokens, stride]` whose rows hold several of them side by side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLayout {
    pub(crate) frames: usize,
    pub(crate) tokens: usize,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
    /// Values from one token's row to the next: `width`, or `3 width` when packed.
    pub(crate) stride: usize,
}

/// One of the three projections packed in a self-attention's `qkv` buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    Query,
    Key,
    Value,
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
            stride: shape[2],
        }
    }

    /// From packed projections `[frames, tokens, 3 width]` (`q`, `k`, `v`), each split into
    /// `heads`.
    pub(crate) fn packed(qkv: &FlexTensor, heads: usize) -> Self {
        let shape = qkv.layout().shape();
        Self {
            frames: shape[0],
            tokens: shape[1],
            heads,
            head_dim: shape[2] / 3 / heads,
            stride: shape[2],
        }
    }

    /// The same sizes for one unpacked projection `[frames, tokens, width]` (as the heads'
    /// merged output is).
    pub(crate) fn unpacked(self) -> Self {
        Self {
            stride: self.width(),
            ..self
        }
    }

    pub(crate) fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Values of one frame of a projection (of all of them when packed).
    pub(crate) fn frame(&self) -> usize {
        self.tokens * self.stride
    }

    /// Head `h` of a frame of a projection: `tokens x head_dim`, rows `stride` apart.
    pub(crate) fn head<'a>(&self, frame: &'a [f32], h: usize) -> MatRef<'a> {
        MatRef::new(
            &frame[h * self.head_dim..],
            self.tokens,
            self.head_dim,
            self.stride,
            1,
        )
    }

    /// Head `h` of a frame of a projection-shaped output.
    pub(crate) fn head_mut<'a>(&self, frame: &'a mut [f32], h: usize) -> MatMut<'a> {
        MatMut::new(
            &mut frame[h * self.head_dim..],
            self.tokens,
            self.head_dim,
            self.stride,
        )
    }

    /// Where `projection`'s columns start in a packed row.
    fn offset(&self, projection: Projection) -> usize {
        let index = match projection {
            Projection::Query => 0,
            Projection::Key => 1,
            Projection::Value => 2,
        };
        index * self.width()
    }

    /// Head `h` of `projection` in a frame of packed projections.
    pub(crate) fn packed_head<'a>(
        &self,
        frame: &'a [f32],
        projection: Projection,
        h: usize,
    ) -> MatRef<'a> {
        self.head(&frame[self.offset(projection)..], h)
    }

    /// Head `h` of `projection` in a frame of a packed-projections-shaped output (the
    /// gradient of `qkv`).
    pub(crate) fn packed_head_mut<'a>(
        &self,
        frame: &'a mut [f32],
        projection: Projection,
        h: usize,
    ) -> MatMut<'a> {
        let offset = self.offset(projection);
        self.head_mut(&mut frame[offset..], h)
    }
}
