//! Multi-head self-attention with an explicit path (model spec, section 1):
//! `L = (a Wq)(a Wk)^T / sqrt(d)` per head, `P = softmax_j(L)`, `att = merge_heads(P (a Wv)) Wo`.
//!
//! The pre-softmax logits `L` ("X_A" in the paper) and the probabilities `P` are returned,
//! because AM flow is computed from them.

use burn::prelude::*;

use crate::error::Result;
use crate::nn::fused::softmax_last;
use crate::nn::fused_attention;
use crate::nn::{Linear, VarBuilder};

/// Names of the four projections in a weight file.
#[derive(Debug, Clone, Copy)]
pub struct AttentionKeys {
    /// Query projection.
    pub q: &'static str,
    /// Key projection.
    pub k: &'static str,
    /// Value projection.
    pub v: &'static str,
    /// Output projection.
    pub o: &'static str,
}

/// The names `q`, `k`, `v`, `o` used by amflow's own attention layers.
pub fn attention_keys_qkvo() -> AttentionKeys {
    AttentionKeys {
        q: "q",
        k: "k",
        v: "v",
        o: "o",
    }
}

/// Self-attention with `h` heads.
///
/// # Shapes
/// - input `[batch, tokens, width]`
/// - logits and probabilities `[batch, heads, tokens, tokens]`
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

/// What one attention call computed.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// `merge_heads(P V) Wo`, `[batch, tokens, width]`.
    pub output: Tensor<3>,
    /// Pre-softmax logits `L`, `[batch, heads, tokens, tokens]`.
    pub logits: Tensor<4>,
    /// `softmax_j(L)`, `[batch, heads, tokens, tokens]`.
    pub probs: Tensor<4>,
}

impl SelfAttention {
    /// Builds the four projections (all with biases) from `vb` under `keys`.
    pub fn new(
        vb: &VarBuilder<'_>,
        keys: AttentionKeys,
        width: usize,
        heads: usize,
    ) -> Result<Self> {
        Ok(Self {
            q: Linear::new(&vb.pp(keys.q), width, width, true)?,
            k: Linear::new(&vb.pp(keys.k), width, width, true)?,
            v: Linear::new(&vb.pp(keys.v), width, width, true)?,
            o: Linear::new(&vb.pp(keys.o), width, width, true)?,
            num_heads: heads,
        })
    }

    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, w] = x.dims();
        x.reshape([b, n, self.num_heads, w / self.num_heads])
            .swap_dims(1, 2)
    }

    /// `1 / sqrt(d)` for this layer's heads on inputs of width `width`.
    fn scale(&self, width: usize) -> f64 {
        ((width / self.num_heads) as f64).powf(-0.5)
    }

    /// The projections `a Wq`, `a Wk`, `a Wv` (heads side by side).
    fn projections(&self, a: Tensor<3>) -> [Tensor<3>; 3] {
        [
            self.q.forward(a.clone()),
            self.k.forward(a.clone()),
            self.v.forward(a),
        ]
    }

    /// Runs attention on `a` and returns the output and the probabilities, not the logits: on
    /// the CPU backend each map is normalised while it is in the cache, and the logits never
    /// reach memory.
    pub fn forward_probs(&self, a: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        if !fused_attention::applies(&a) {
            let att = self.forward(a);
            return (att.output, att.probs);
        }
        let scale = self.scale(a.dims()[2]);
        let [q, k, v] = self.projections(a);
        let probs = fused_attention::probs(q, k, self.num_heads, scale);
        let merged = fused_attention::apply(probs.clone(), v, self.num_heads);
        (self.o.forward(merged), probs)
    }

    /// Runs attention on `a` and returns the output, the logits and the probabilities.
    pub fn forward(&self, a: Tensor<3>) -> AttentionOutput {
        let [b, n, w] = a.dims();
        let scale = self.scale(w);
        if fused_attention::applies(&a) {
            // The same computation as below, each product one fused op on the heads in place.
            let [q, k, v] = self.projections(a);
            let logits = fused_attention::logits(q, k, self.num_heads, scale);
            let probs = softmax_last(logits.clone());
            let merged = fused_attention::apply(probs.clone(), v, self.num_heads);
            return AttentionOutput {
                output: self.o.forward(merged),
                logits,
                probs,
            };
        }
        // The scale goes on `q` (`tokens x d` values) rather than on the logits (`tokens^2`).
        let [q, k, v] = self.projections(a);
        let (q, k, v) = (
            self.split_heads(q.mul_scalar(scale)),
            self.split_heads(k),
            self.split_heads(v),
        );
        let logits = q.matmul(k.swap_dims(2, 3));
        let probs = softmax_last(logits.clone());
        let merged: Tensor<3> = probs.clone().matmul(v).swap_dims(1, 2).reshape([b, n, w]);
        AttentionOutput {
            output: self.o.forward(merged),
            logits,
            probs,
        }
    }
}
