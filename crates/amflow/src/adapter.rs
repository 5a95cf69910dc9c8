//! Scaled parallel adapter (He et al. 2022; paper eq. 1; model spec, section 1):
//! `E = ReLU(Down(input))`, contribution `s * Up(E)` added to the residual stream in parallel
//! with the frozen sub-layer. `Up` starts at zero, so an untrained model computes exactly the
//! frozen backbone; `s` is one learnable scalar starting at 1.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::error::Result;
use crate::init::Init;
use crate::nn::{Linear, VarBuilder};

/// A scaled parallel adapter.
///
/// # Shapes
/// - input `[..., d_in]` (`D`, or `D + f` with AM flow concatenated)
/// - bottleneck `E` `[..., r]`
/// - contribution `[..., D]`
#[derive(Module, Debug)]
pub struct ScaledParallelAdapter {
    /// `Down: d_in -> r`.
    pub down: Linear,
    /// `Up: r -> D`, zero-initialised.
    pub up: Linear,
    /// The scale `s`, shape `[1]`.
    pub scale: Param<Tensor<1>>,
}

impl ScaledParallelAdapter {
    /// Builds `down`, `up` and `scale` under `vb`.
    pub fn new(
        vb: &VarBuilder<'_>,
        d_in: usize,
        bottleneck: usize,
        d_model: usize,
    ) -> Result<Self> {
        Ok(Self {
            down: Linear::new(&vb.pp("down"), d_in, bottleneck, true)?,
            up: Linear::with_init(
                &vb.pp("up"),
                bottleneck,
                d_model,
                true,
                Init::Zeros,
                Init::Zeros,
            )?,
            scale: vb.param::<1>("scale", [1], Init::Constant(1.0))?,
        })
    }

    /// `E = ReLU(Down(input))`.
    pub fn bottleneck<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        relu(self.down.forward(input))
    }

    /// `E = ReLU(Down([first ; second]))` (concatenated on the last axis, the attention
    /// adapter's `[a ; F]`), without writing the concatenation ([`Linear::forward_concat`]).
    pub fn bottleneck_concat<const D: usize>(
        &self,
        first: Tensor<D>,
        second: Tensor<D>,
    ) -> Tensor<D> {
        relu(self.down.forward_concat(first, second))
    }

    /// `x + g * (branch + b) + s * Up(E)`: the block's residual update with this adapter beside
    /// the frozen sub-layer's output `branch` (before its last bias `b`; LayerScale `g`; `None`:
    /// 0 and 1), as one op that also adds `Up`'s bias ([`amflow_kernels::ops::residual`]).
    pub fn residual(
        &self,
        x: Tensor<3>,
        (branch, branch_bias): (Tensor<3>, Option<Tensor<1>>),
        layer_scale: Option<Tensor<1>>,
        e: Tensor<3>,
    ) -> Tensor<3> {
        let (up, up_bias) = self.up.forward_unbiased(e);
        amflow_kernels::ops::residual(amflow_kernels::ops::Residual {
            x,
            branch,
            branch_bias,
            layer_scale,
            up,
            up_bias,
            scale: self.scale.val(),
        })
    }

    /// `s * Up(E)`.
    pub fn project<const D: usize>(&self, e: Tensor<D>) -> Tensor<D> {
        self.up.forward(e) * self.scale.val().unsqueeze::<D>()
    }
}
