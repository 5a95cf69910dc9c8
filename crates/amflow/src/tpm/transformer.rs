//! Transformer TPM (model spec, sections 3 and 7): learned temporal position embedding
//! `(num_frames, r)` added once at the input (first `T` rows), then pre-norm encoder layers with
//! softmax self-attention over the `T` steps (heads 4, `1/sqrt(d_head)`, biases), MLP ratio 4
//! with exact GELU, LayerNorm eps 1e-5, no final LayerNorm.

use burn::module::Param;
use burn::prelude::*;

use super::TransformerTpmConfig;
use crate::backbone::{AttentionMaps, Mlp, SelfAttention};
use crate::error::{AmflowError, Result};
use crate::init::Init;
use crate::nn::{Activation, LayerNorm, VarBuilder};

/// LayerNorm epsilon of the transformer TPM.
pub const TPM_LN_EPS: f64 = 1e-5;

/// One pre-norm encoder layer.
#[derive(Module, Debug)]
pub struct TemporalTransformerLayer {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Softmax self-attention over frames.
    pub attn: SelfAttention,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

/// The transformer TPM.
///
/// # Shapes
/// - input and output `[B*N, T, r]`
#[derive(Module, Debug)]
pub struct TemporalTransformer {
    /// Temporal position embedding `[num_frames, r]`.
    pub pos_embed: Param<Tensor<2>>,
    /// Encoder layers.
    pub layers: Vec<TemporalTransformerLayer>,
}

impl TemporalTransformer {
    /// Builds the module under `vb`.
    pub fn new(
        vb: &VarBuilder<'_>,
        config: &TransformerTpmConfig,
        width: usize,
        max_frames: usize,
    ) -> Result<Self> {
        let keys = crate::backbone::attention_keys_qkvo();
        let layers = (0..config.layers)
            .map(|i| {
                let vb = vb.pp("layers").pp(i);
                Ok(TemporalTransformerLayer {
                    norm1: LayerNorm::new(&vb.pp("norm1"), width, TPM_LN_EPS)?,
                    attn: SelfAttention::new(&vb.pp("attn"), keys, width, config.heads)?,
                    norm2: LayerNorm::new(&vb.pp("norm2"), width, TPM_LN_EPS)?,
                    mlp: Mlp::new(
                        &vb.pp("mlp"),
                        width,
                        width * config.mlp_ratio,
                        Activation::Gelu,
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pos_embed: vb.param::<2>("pos_embed", [max_frames, width], Init::TruncNormal(0.02))?,
            layers,
        })
    }

    /// Runs the encoder over the frames.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let t = x.dims()[1];
        let max = self.pos_embed.shape()[0];
        if t > max {
            return Err(AmflowError::Input(format!(
                "clip has {t} frames, the transformer TPM was built for at most {max}"
            )));
        }
        let mut x = x + self.pos_embed.val().narrow(0, 0, t).unsqueeze::<3>();
        for layer in &self.layers {
            let att = layer
                .attn
                .forward(layer.norm1.forward(x.clone()), AttentionMaps::None);
            x = x + att.output;
            x = x.clone() + layer.mlp.forward(layer.norm2.forward(x));
        }
        Ok(x)
    }
}
