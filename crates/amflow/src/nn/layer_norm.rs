//! Layer normalisation over the last axis (Ba et al. 2016), PyTorch's `nn.LayerNorm`:
//! `y = (x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance.

use burn::module::Param;
use burn::prelude::*;

use super::VarBuilder;
use crate::error::Result;
use crate::init::Init;

/// Layer normalisation with an affine transform.
///
/// # Shapes
/// - input and output `[..., d]`
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// `[d]`.
    pub weight: Param<Tensor<1>>,
    /// `[d]`.
    pub bias: Param<Tensor<1>>,
    /// The epsilon added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// Builds the layer from `vb` (names `weight`, `bias`); ones and zeros when random.
    pub fn new(vb: &VarBuilder<'_>, d: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.param::<1>("weight", [d], Init::Constant(1.0))?,
            bias: vb.param::<1>("bias", [d], Init::Zeros)?,
            eps,
        })
    }

    /// Normalises the last axis ([`amflow_kernels::ops::layer_norm`]).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        amflow_kernels::ops::layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}
