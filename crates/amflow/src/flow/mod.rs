//! Attention-map flow (paper eq. 3–5; model spec, section 2).
//!
//! Computed per block from that block's own attention, for consecutive frames of the same clip.
//! Frame `t` uses the pair `(t, t+1)`; the last frame reuses the pair `(T-2, T-1)`; a one-frame
//! clip has `F = 0`.
//!
//! - Vanilla (fixed cameras), `f = h`: `S_t = softmax_j(|L_t - L_{t+1}|)` over the last (key)
//!   axis per head, `F_t[n, k] = sum_i S_t[k, i, n]` (column sums).
//! - Aligned (moving cameras), `f = d_align`: `m_t = P_t^T 1` (column sums of the attention
//!   probabilities), `X_t = AligningEncoder(m_t)`, `F_t = |X_t - X_{t+1}|`.
//!
//! Nothing is detached: gradients flow through `L` and `P` into the backbone's activations.

mod aligning_encoder;
mod linear_attention;

pub use aligning_encoder::{AligningEncoder, AligningEncoderConfig, AligningLayer, ALIGN_LN_EPS};
pub use linear_attention::{LinearAttention, LINEAR_ATTENTION_EPS};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use amflow_kernels::ops::softmax_last;

/// Which AM flow the temporal blocks compute (the tag of [`AmFlowConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmFlowMode {
    /// Vanilla AM flow (fixed cameras), `f = h`.
    Vanilla,
    /// Aligned AM flow with an aligning encoder (moving cameras), `f = d_align`.
    Aligned,
    /// No AM flow (ablation: adapters and temporal units only).
    Off,
}

/// The AM flow's settings: `mode` decides which other keys exist (TOML `[am_flow]`,
/// `mode = "vanilla" | "aligned" | "off"`; only `aligned` takes the aligning encoder's keys,
/// so a `dim` under `vanilla` is an error, not silently ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AmFlowConfig {
    /// Vanilla AM flow (fixed cameras), `f = h`.
    Vanilla {},
    /// Aligned AM flow with an aligning encoder (moving cameras), `f = d_align`.
    Aligned(AligningEncoderConfig),
    /// No AM flow (ablation: adapters and temporal units only).
    Off {},
}

impl Default for AmFlowConfig {
    fn default() -> Self {
        Self::Vanilla {}
    }
}

impl AmFlowConfig {
    /// The mode alone.
    pub fn mode(&self) -> AmFlowMode {
        match self {
            Self::Vanilla {} => AmFlowMode::Vanilla,
            Self::Aligned(_) => AmFlowMode::Aligned,
            Self::Off {} => AmFlowMode::Off,
        }
    }

    /// The aligning encoder's settings (aligned mode only).
    pub fn aligning_encoder(&self) -> Option<&AligningEncoderConfig> {
        match self {
            Self::Aligned(a) => Some(a),
            _ => None,
        }
    }

    /// This config in another mode: an aligned config stays as it is when `mode` is aligned;
    /// otherwise aligned mode gets the default aligning encoder.
    pub fn with_mode(&self, mode: AmFlowMode) -> Self {
        match (mode, self) {
            (AmFlowMode::Vanilla, _) => Self::Vanilla {},
            (AmFlowMode::Off, _) => Self::Off {},
            (AmFlowMode::Aligned, Self::Aligned(a)) => Self::Aligned(a.clone()),
            (AmFlowMode::Aligned, _) => Self::Aligned(AligningEncoderConfig::default()),
        }
    }

    /// Channels `f` that AM flow adds to the attention adapter's input.
    pub fn channels(&self, backbone_heads: usize) -> usize {
        match self {
            Self::Vanilla {} => backbone_heads,
            Self::Aligned(a) => a.dim,
            Self::Off {} => 0,
        }
    }
}

/// Applies `pair` to consecutive frames along axis 1 (`(t, t+1)` for `t < T-1`) and repeats the
/// last result for the last frame. `x` is `[B, T, ...]`; the result is `[B, T, ...]` of what
/// `pair` returns. `T` must be at least 2.
pub fn per_frame_pairs<const D: usize>(
    x: Tensor<D>,
    pair: impl FnOnce(Tensor<D>, Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let t = x.dims()[1];
    debug_assert!(t >= 2, "pairs need two frames");
    let current = x.clone().narrow(1, 0, t - 1);
    let next = x.narrow(1, 1, t - 1);
    let pairs = pair(current, next);
    let last = pairs.clone().narrow(1, t - 2, 1);
    Tensor::cat(vec![pairs, last], 1)
}

/// Vanilla AM flow from the attention logits.
///
/// # Shapes
/// - `logits` `[B*T, h, N, N]` (clip-major frames)
/// - result `[B*T, N, h]`
pub fn vanilla_am_flow(logits: Tensor<4>, clips: usize) -> Tensor<3> {
    let [bt, h, n, _] = logits.dims();
    let t = bt / clips;
    if t < 2 {
        return Tensor::zeros([bt, n, h], &logits.device());
    }
    let l: Tensor<5> = logits.reshape([clips, t, h, n, n]);
    let flow = per_frame_pairs(l, |cur, next| {
        let s = softmax_last((cur - next).abs());
        s.sum_dim(3) // [B, T-1, h, 1, N]: sum over the query axis i
    });
    // [B, T, h, 1, N] -> [B*T, N, h]
    flow.reshape([bt, h, n]).swap_dims(1, 2)
}

/// Column sums of the attention probabilities, `m = P^T 1`.
///
/// # Shapes
/// - `probs` `[frames, h, N, N]`
/// - result `[frames, N, h]`
pub fn attention_column_sums(probs: Tensor<4>) -> Tensor<3> {
    let [f, h, n, _] = probs.dims();
    probs.sum_dim(2).reshape([f, h, n]).swap_dims(1, 2)
}

/// Aligned AM flow from the attention probabilities and the block's aligning encoder.
///
/// # Shapes
/// - `probs` `[B*T, h, N, N]`
/// - result `[B*T, N, d_align]`
pub fn aligned_am_flow(probs: Tensor<4>, clips: usize, encoder: &AligningEncoder) -> Tensor<3> {
    aligned_am_flow_of_column_sums(attention_column_sums(probs), clips, encoder)
}

/// [`aligned_am_flow`] from the probabilities' column sums `m = P^T 1` (as the attention
/// computes them for it: [`crate::backbone::AttentionOutput::column_sums`]).
///
/// # Shapes
/// - `column_sums` `[B*T, N, h]`
/// - result `[B*T, N, d_align]`
pub fn aligned_am_flow_of_column_sums(
    column_sums: Tensor<3>,
    clips: usize,
    encoder: &AligningEncoder,
) -> Tensor<3> {
    let [bt, n, _] = column_sums.dims();
    let t = bt / clips;
    let d = encoder.pos_embed.shape()[1];
    if t < 2 {
        // A one-frame clip has F = 0 and does not run the aligning encoder.
        return Tensor::zeros([bt, n, d], &column_sums.device());
    }
    let x = encoder.forward(column_sums);
    let x: Tensor<4> = x.reshape([clips, t, n, d]);
    amflow_kernels::ops::abs_frame_difference(x).reshape([bt, n, d])
}
