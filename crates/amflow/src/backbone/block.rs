//! One frozen pre-norm ViT block, split into the parts that the adapters of section 1 of the
//! model spec interleave with: `a = LN1(x)`, attention, LayerScale `g1`, `b = LN2(x')`, MLP,
//! LayerScale `g2`. Without adapters, `x' = x + g1 * att(LN1(x))`, `x'' = x' + g2 * MLP(LN2(x'))`.

use burn::module::Param;
use burn::prelude::*;

use super::attention::{AttentionKeys, AttentionMaps, AttentionOutput, SelfAttention};
use super::config::{BackboneFamily, VitConfig};
use crate::error::Result;
use crate::init::Init;
use crate::nn::{Activation, LayerNorm, Linear, VarBuilder};

/// The block MLP: `fc2(act(fc1(x)))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Width to hidden.
    pub fc1: Linear,
    /// Hidden to width.
    pub fc2: Linear,
    /// The activation between them.
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    /// Builds `fc1`, `fc2` under `vb`.
    pub fn new(
        vb: &VarBuilder<'_>,
        width: usize,
        hidden: usize,
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(&vb.pp("fc1"), width, hidden, true)?,
            fc2: Linear::new(&vb.pp("fc2"), hidden, width, true)?,
            activation,
        })
    }

    /// Applies the MLP (`fc1`'s bias added in the activation's pass).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(self.hidden(x))
    }

    /// The MLP without `fc2`'s bias, and that bias ([`Linear::forward_unbiased`]).
    pub fn forward_unbiased<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Option<Tensor<1>>) {
        self.fc2.forward_unbiased(self.hidden(x))
    }

    /// `act(fc1(x))`, the bias and the activation in one pass.
    fn hidden<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (h, bias) = self.fc1.forward_unbiased(x);
        self.activation.forward_biased(h, bias)
    }
}

/// Weight names of a block, per family.
struct BlockKeys {
    norm1: &'static str,
    attention_prefix: &'static str,
    attention: AttentionKeys,
    layer_scale1: Option<&'static str>,
    norm2: &'static str,
    mlp: &'static str,
    layer_scale2: Option<&'static str>,
}

impl BlockKeys {
    fn of(family: BackboneFamily) -> Self {
        match family {
            BackboneFamily::Dinov2 => Self {
                norm1: "norm1",
                attention_prefix: "attention",
                attention: AttentionKeys {
                    q: "attention.query",
                    k: "attention.key",
                    v: "attention.value",
                    o: "output.dense",
                },
                layer_scale1: Some("layer_scale1"),
                norm2: "norm2",
                mlp: "mlp",
                layer_scale2: Some("layer_scale2"),
            },
            BackboneFamily::Clip => Self {
                norm1: "layer_norm1",
                attention_prefix: "self_attn",
                attention: AttentionKeys {
                    q: "q_proj",
                    k: "k_proj",
                    v: "v_proj",
                    o: "out_proj",
                },
                layer_scale1: None,
                norm2: "layer_norm2",
                mlp: "mlp",
                layer_scale2: None,
            },
        }
    }
}

/// A frozen ViT block.
///
/// # Shapes
/// - tokens `[frames, tokens, width]`
#[derive(Module, Debug)]
pub struct VitBlock {
    /// Pre-attention norm `LN1`.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attention: SelfAttention,
    /// LayerScale `g1` (`None`: 1).
    pub layer_scale1: Option<Param<Tensor<1>>>,
    /// Pre-MLP norm `LN2`.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// LayerScale `g2` (`None`: 1).
    pub layer_scale2: Option<Param<Tensor<1>>>,
}

impl VitBlock {
    /// Builds the block from `vb` with the family's weight names.
    pub fn new(vb: &VarBuilder<'_>, config: &VitConfig) -> Result<Self> {
        let keys = BlockKeys::of(config.family);
        let w = config.hidden_size;
        let eps = config.layer_norm_eps;
        let ls = |name: Option<&str>| -> Result<Option<Param<Tensor<1>>>> {
            match (name, config.layer_scale) {
                (Some(name), true) => Ok(Some(vb.pp(name).param::<1>(
                    "lambda1",
                    [w],
                    Init::Constant(config.layer_scale_init),
                )?)),
                _ => Ok(None),
            }
        };
        Ok(Self {
            norm1: LayerNorm::new(&vb.pp(keys.norm1), w, eps)?,
            attention: SelfAttention::new(
                &vb.pp(keys.attention_prefix),
                keys.attention,
                w,
                config.num_heads,
            )?,
            layer_scale1: ls(keys.layer_scale1)?,
            norm2: LayerNorm::new(&vb.pp(keys.norm2), w, eps)?,
            mlp: Mlp::new(&vb.pp(keys.mlp), w, config.mlp_dim, config.activation)?,
            layer_scale2: ls(keys.layer_scale2)?,
        })
    }

    /// `a = LN1(x)`.
    pub fn pre_attention(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm1.forward(x)
    }

    /// Attention on `a`, with the maps `maps` asks for.
    pub fn attention(&self, a: Tensor<3>, maps: AttentionMaps) -> AttentionOutput {
        self.attention.forward(a, maps)
    }

    /// [`VitBlock::attention`] with the output projection's bias left out, and that bias.
    pub fn attention_unbiased(
        &self,
        a: Tensor<3>,
        maps: AttentionMaps,
    ) -> (AttentionOutput, Option<Tensor<1>>) {
        self.attention.forward_unbiased(a, maps)
    }

    /// `g1 * att`.
    pub fn scale_attention(&self, att: Tensor<3>) -> Tensor<3> {
        scale(att, &self.layer_scale1)
    }

    /// `b = LN2(x')`.
    pub fn pre_mlp(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm2.forward(x)
    }

    /// The LayerScales `g1` (attention) and `g2` (MLP), `None` where the backbone has none.
    pub fn layer_scales(&self) -> [Option<Tensor<1>>; 2] {
        [&self.layer_scale1, &self.layer_scale2].map(|g| g.as_ref().map(Param::val))
    }

    /// `MLP(b)` before its LayerScale and without `fc2`'s bias, and that bias.
    pub fn mlp_unscaled(&self, b: Tensor<3>) -> (Tensor<3>, Option<Tensor<1>>) {
        self.mlp.forward_unbiased(b)
    }

    /// `g2 * MLP(b)`.
    pub fn mlp(&self, b: Tensor<3>) -> Tensor<3> {
        scale(self.mlp.forward(b), &self.layer_scale2)
    }

    /// The plain block (no adapters); returns the output and the attention logits when `maps`
    /// asks for them.
    pub fn forward(&self, x: Tensor<3>, maps: AttentionMaps) -> (Tensor<3>, Option<Tensor<4>>) {
        let att = self.attention(self.pre_attention(x.clone()), maps);
        let x = x + self.scale_attention(att.output);
        let x = x.clone() + self.mlp(self.pre_mlp(x));
        (x, att.logits)
    }
}

fn scale(x: Tensor<3>, gamma: &Option<Param<Tensor<1>>>) -> Tensor<3> {
    match gamma {
        Some(g) => x * g.val().unsqueeze::<3>(),
        None => x,
    }
}
