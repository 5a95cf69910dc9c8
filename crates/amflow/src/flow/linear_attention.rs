//! Non-causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"), as fixed by
//! the model spec, section 7: feature map `phi(x) = elu(x) + 1`, no `1/sqrt(d)` scaling,
//! `out_i = phi(q_i) (sum_j phi(k_j)^T v_j) / (phi(q_i) . sum_j phi(k_j) + 1e-6)` per head,
//! then the output projection.

use burn::prelude::*;

use crate::error::Result;
use amflow_kernels::ops;

use crate::nn::{Linear, VarBuilder};

/// The denominator's stabiliser.
pub const LINEAR_ATTENTION_EPS: f64 = 1e-6;

/// Linear attention with `heads` heads.
///
/// # Shapes
/// - input and output `[batch, tokens, width]`
#[derive(Module, Debug)]
pub struct LinearAttention {
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

impl LinearAttention {
    /// Builds `q`, `k`, `v`, `o` under `vb`.
    pub fn new(vb: &VarBuilder<'_>, width: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q: Linear::new(&vb.pp("q"), width, width, true)?,
            k: Linear::new(&vb.pp("k"), width, width, true)?,
            v: Linear::new(&vb.pp("v"), width, width, true)?,
            o: Linear::new(&vb.pp("o"), width, width, true)?,
            num_heads: heads,
        })
    }

    /// Applies linear attention ([`amflow_kernels::ops::linear_attention`]) and the output
    /// projection.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let q = self.q.forward(x.clone());
        let k = self.k.forward(x.clone());
        let v = self.v.forward(x);
        let out = ops::linear_attention(q, k, v, self.num_heads, LINEAR_ATTENTION_EPS);
        self.o.forward(out)
    }
}
