//! Non-causal linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"), as fixed by
//! the model spec, section 7: feature map `phi(x) = elu(x) + 1`, no `1/sqrt(d)` scaling,
//! `out_i = phi(q_i) (sum_j phi(k_j)^T v_j) / (phi(q_i) . sum_j phi(k_j) + 1e-6)` per head,
//! then the output projection.

use burn::prelude::*;

use crate::error::Result;
use crate::nn::{fused_linear_attention, Linear, VarBuilder};

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

/// `phi(x) = elu(x) + 1`, written as `exp(min(x, 0)) + max(x, 0)`: four element-wise passes
/// instead of burn's `elu` (a mask, `exp`, two scalar ops and a masked select) and the `+ 1`.
fn phi(x: Tensor<3>) -> Tensor<3> {
    x.clone().clamp_max(0.0).exp() + x.clamp_min(0.0)
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

    fn split(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, w] = x.dims();
        x.reshape([b, n, self.num_heads, w / self.num_heads])
            .swap_dims(1, 2)
    }

    /// Applies linear attention.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if fused_linear_attention::applies(&x) {
            // The same computation as below, one fused op per frame and head.
            let q = self.q.forward(x.clone());
            let k = self.k.forward(x.clone());
            let v = self.v.forward(x);
            let heads = self.num_heads;
            let out =
                fused_linear_attention::linear_attention(q, k, v, heads, LINEAR_ATTENTION_EPS);
            return self.o.forward(out);
        }
        let [b, n, w] = x.dims();
        // phi before the head split: element-wise passes over contiguous memory.
        let q = self.split(phi(self.q.forward(x.clone())));
        let k = self.split(phi(self.k.forward(x.clone())));
        let v = self.split(self.v.forward(x));
        // sum_j phi(k_j)^T v_j: [b, h, d, d]; sum_j phi(k_j): [b, h, 1, d].
        let kv = k.clone().swap_dims(2, 3).matmul(v);
        let k_sum = k.sum_dim(2);
        let numerator = q.clone().matmul(kv);
        // q . k_sum per token as a matrix product: [b, h, n, d] x [b, h, d, 1].
        let denominator = q
            .matmul(k_sum.swap_dims(2, 3))
            .add_scalar(LINEAR_ATTENTION_EPS);
        let out = numerator / denominator;
        self.o.forward(out.swap_dims(1, 2).reshape([b, n, w]))
    }
}
