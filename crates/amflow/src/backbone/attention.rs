//! Multi-head self-attention with an explicit path (model spec, section 1):
//! `L = (a Wq)(a Wk)^T / sqrt(d)` per head, `P = softmax_j(L)`, `att = merge_heads(P (a Wv)) Wo`.
//! The three projections run as one product with their weights stacked
//! ([`Linear::forward_stacked`]), whose packed output the attention ops read
//! ([`ops::PackedQkv`]).
//!
//! The pre-softmax logits `L` ("X_A" in the paper) and the probabilities `P` are returned when
//! asked for ([`AttentionMaps`]), because AM flow is computed from them; a block that needs
//! neither runs attention without materialising the map where the backend can.

use burn::prelude::*;

use amflow_kernels::ops;

use crate::error::Result;
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

/// Which attention maps a block's attention call keeps, decided when the model is built
/// (model spec, section 2: vanilla AM flow reads the logits, aligned AM flow the probabilities,
/// a block without AM flow reads neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttentionMaps {
    /// No map: burn's fused attention op on GPU backends, which never writes the map.
    None,
    /// The column sums `P^T 1` of the probabilities alone (aligned AM flow). On the CPU
    /// backend an untracked pass (inference, evaluation) never has the maps in memory; a tracked
    /// one keeps the probabilities for its backward, as [`AttentionMaps::Probabilities`] does.
    ColumnSums,
    /// The probabilities `P` and their column sums (without the logits in memory on the CPU
    /// backend).
    Probabilities,
    /// The logits `L` and the probabilities `P`.
    Logits,
}

/// What one attention call computed.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// `merge_heads(P V) Wo`, `[batch, tokens, width]`.
    pub output: Tensor<3>,
    /// Pre-softmax logits `L`, `[batch, heads, tokens, tokens]` ([`AttentionMaps::Logits`]).
    pub logits: Option<Tensor<4>>,
    /// `softmax_j(L)`, `[batch, heads, tokens, tokens]` ([`AttentionMaps::Probabilities`] and
    /// [`AttentionMaps::Logits`]).
    pub probs: Option<Tensor<4>>,
    /// The column sums `P^T 1`, `[batch, tokens, heads]`: aligned AM flow's input
    /// ([`AttentionMaps::ColumnSums`] and [`AttentionMaps::Probabilities`]).
    pub column_sums: Option<Tensor<3>>,
}

/// The maps an attention call kept, for its [`AttentionOutput`].
#[derive(Debug, Default)]
struct KeptMaps {
    logits: Option<Tensor<4>>,
    probs: Option<Tensor<4>>,
    column_sums: Option<Tensor<3>>,
}

impl KeptMaps {
    fn into_output(self, output: Tensor<3>) -> AttentionOutput {
        AttentionOutput {
            output,
            logits: self.logits,
            probs: self.probs,
            column_sums: self.column_sums,
        }
    }
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

    /// Runs attention on `a`, keeping the maps `maps` asks for. Every product goes through the
    /// op facade ([`amflow_kernels::ops`]), which picks the kernel for the backend.
    pub fn forward(&self, a: Tensor<3>, maps: AttentionMaps) -> AttentionOutput {
        let (merged, maps) = self.attend(a, maps);
        maps.into_output(self.o.forward(merged))
    }

    /// [`SelfAttention::forward`] with the output projection's bias left out of `output`, and
    /// that bias: for the fused residual update, which adds it in its own pass.
    pub fn forward_unbiased(
        &self,
        a: Tensor<3>,
        maps: AttentionMaps,
    ) -> (AttentionOutput, Option<Tensor<1>>) {
        let (merged, maps) = self.attend(a, maps);
        let (output, bias) = self.o.forward_unbiased(merged);
        (maps.into_output(output), bias)
    }

    /// The heads merged before the output projection, and the maps `maps` asks for.
    fn attend(&self, a: Tensor<3>, maps: AttentionMaps) -> (Tensor<3>, KeptMaps) {
        let heads = self.num_heads;
        let scale = ((a.dims()[2] / heads) as f64).powf(-0.5);
        let qkv = Linear::forward_stacked(&[&self.q, &self.k, &self.v], a);
        let qkv = ops::PackedQkv::new(qkv, heads, scale);
        let none = KeptMaps::default();
        match maps {
            AttentionMaps::None => (qkv.attention(), none),
            AttentionMaps::ColumnSums => {
                let (merged, sums) = qkv.attention_with_column_sums();
                let kept = KeptMaps {
                    column_sums: Some(sums),
                    ..none
                };
                (merged, kept)
            }
            AttentionMaps::Probabilities => {
                let p = qkv.probs();
                let kept = KeptMaps {
                    column_sums: Some(qkv.column_sums(p.clone())),
                    probs: Some(p.clone()),
                    ..none
                };
                (qkv.apply(p), kept)
            }
            AttentionMaps::Logits => {
                let l = qkv.logits();
                let p = ops::softmax_last(l.clone());
                let kept = KeptMaps {
                    logits: Some(l),
                    probs: Some(p.clone()),
                    ..none
                };
                (qkv.apply(p), kept)
            }
        }
    }
}
