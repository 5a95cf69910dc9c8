//! The aligning encoder of aligned AM flow (paper eq. 4–5; model spec, sections 2 and 7):
//! `proj = Linear(h -> d_align)`, `+ pos_embed` of shape `(N, d_align)`, then `n_align` pre-norm
//! layers `x = x + LinAttn(LN(x))`, `x = x + MLP(LN(x))` (MLP ratio 4, exact GELU, LayerNorm eps
//! 1e-5), no final LayerNorm. One encoder per block, shared by all frames.

use burn::module::Param;
use burn::prelude::*;

use super::linear_attention::LinearAttention;
use crate::backbone::Mlp;
use serde::{Deserialize, Serialize};

use crate::error::{AmflowError, Result};
use crate::init::Init;
use crate::nn::{Activation, LayerNorm, Linear, VarBuilder};

/// LayerNorm epsilon inside the aligning encoder.
pub const ALIGN_LN_EPS: f64 = 1e-5;

/// One pre-norm linear-attention encoder layer.
#[derive(Module, Debug)]
pub struct AligningLayer {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Linear attention.
    pub attn: LinearAttention,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

/// The aligning encoder.
///
/// # Shapes
/// - input `m` `[frames, N, h]` (column sums of the attention probabilities)
/// - output `X` `[frames, N, d_align]`
#[derive(Module, Debug)]
pub struct AligningEncoder {
    /// `Linear(h -> d_align)`.
    pub proj: Linear,
    /// Learned token position embedding `[N, d_align]`.
    pub pos_embed: Param<Tensor<2>>,
    /// The encoder layers.
    pub layers: Vec<AligningLayer>,
}

/// The aligning encoder's settings (TOML keys under `[am_flow]` with `mode = "aligned"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AligningEncoderConfig {
    /// Width `d_align` (divisible by `heads`; spec default 192).
    pub dim: usize,
    /// Encoder layers `n_align` (spec default 1).
    pub layers: usize,
    /// Linear-attention heads (12 in the paper).
    pub heads: usize,
    /// MLP ratio (spec default 4).
    pub mlp_ratio: usize,
}

impl Default for AligningEncoderConfig {
    fn default() -> Self {
        Self {
            dim: 192,
            layers: 1,
            heads: 12,
            mlp_ratio: 4,
        }
    }
}

impl AligningEncoderConfig {
    /// Checks that the width splits into the heads.
    pub fn validate(&self) -> Result<()> {
        if self.heads == 0 || self.dim == 0 || !self.dim.is_multiple_of(self.heads) {
            return Err(AmflowError::Config(format!(
                "am_flow.dim {} must be a positive multiple of am_flow.heads {}",
                self.dim, self.heads
            )));
        }
        Ok(())
    }
}

impl AligningEncoder {
    /// Builds the encoder under `vb` for a backbone of `heads_in` heads and `tokens` tokens
    /// per frame.
    pub fn new(
        vb: &VarBuilder<'_>,
        config: &AligningEncoderConfig,
        heads_in: usize,
        tokens: usize,
    ) -> Result<Self> {
        config.validate()?;
        let w = config.dim;
        let layers = (0..config.layers)
            .map(|i| {
                let vb = vb.pp("layers").pp(i);
                Ok(AligningLayer {
                    norm1: LayerNorm::new(&vb.pp("norm1"), w, ALIGN_LN_EPS)?,
                    attn: LinearAttention::new(&vb.pp("attn"), w, config.heads)?,
                    norm2: LayerNorm::new(&vb.pp("norm2"), w, ALIGN_LN_EPS)?,
                    mlp: Mlp::new(&vb.pp("mlp"), w, w * config.mlp_ratio, Activation::Gelu)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            proj: Linear::new(&vb.pp("proj"), heads_in, w, true)?,
            pos_embed: vb.param::<2>("pos_embed", [tokens, w], Init::TruncNormal(0.02))?,
            layers,
        })
    }

    /// Tokens the position embedding was sized for.
    pub fn tokens(&self) -> usize {
        self.pos_embed.shape()[0]
    }

    /// Encodes `m` (`[frames, N, h]`) to `X` (`[frames, N, d_align]`).
    pub fn forward(&self, m: Tensor<3>) -> Tensor<3> {
        let mut x = self.proj.forward(m) + self.pos_embed.val().unsqueeze::<3>();
        for layer in &self.layers {
            x = x.clone() + layer.attn.forward(layer.norm1.forward(x));
            x = x.clone() + layer.mlp.forward(layer.norm2.forward(x));
        }
        x
    }
}
