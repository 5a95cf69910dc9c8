//! TCN TPM (model spec, sections 3 and 7): layer `j` computes `x + ReLU(Conv1d_j(x))` along the
//! frames, kernel 3, dilation `2^j`, zero padding equal to the dilation (same length), with bias,
//! no normalisation; 2 layers by default. Weights use PyTorch's `Conv1d` layout
//! `[out, in, kernel]`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;

use super::TcnConfig;
use crate::error::Result;
use crate::init::Init;
use crate::nn::VarBuilder;

/// One dilated convolution layer.
#[derive(Module, Debug)]
pub struct TemporalConvLayer {
    /// `[r, r, kernel]`.
    pub weight: Param<Tensor<3>>,
    /// `[r]`.
    pub bias: Param<Tensor<1>>,
    /// Dilation `2^j`.
    #[module(skip)]
    pub dilation: usize,
}

/// The TCN TPM.
///
/// # Shapes
/// - input and output `[B*N, T, r]`
#[derive(Module, Debug)]
pub struct TemporalConv {
    /// The layers, dilations 1, 2, 4, ...
    pub layers: Vec<TemporalConvLayer>,
}

impl TemporalConv {
    /// Builds the layers under `vb`.
    pub fn new(vb: &VarBuilder<'_>, config: &TcnConfig, width: usize) -> Result<Self> {
        let k = config.kernel;
        let init = Init::torch_default(width * k);
        let layers = (0..config.layers)
            .map(|j| {
                let vb = vb.pp("layers").pp(j);
                Ok(TemporalConvLayer {
                    weight: vb.param::<3>("weight", [width, width, k], init)?,
                    bias: vb.param::<1>("bias", [width], init)?,
                    dilation: 1 << j,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// Runs the convolutions over the frames.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mut x = x.swap_dims(1, 2); // [B*N, r, T]
        for layer in &self.layers {
            let kernel = layer.weight.shape()[2];
            let pad = layer.dilation * (kernel - 1) / 2;
            let options = ConvOptions::new([1], [pad], [layer.dilation], 1);
            let y = conv1d(
                x.clone(),
                layer.weight.val(),
                Some(layer.bias.val()),
                options,
            );
            x = x + relu(y);
        }
        x.swap_dims(1, 2)
    }
}
