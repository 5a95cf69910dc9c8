//! Activation functions used by the backbones and the trainable additions.
//!
//! - exact GELU, `x * Phi(x)` with the error function (PyTorch `nn.GELU()`, DINOv2, the aligning
//!   encoder and the transformer TPM);
//! - quick GELU, `x * sigmoid(1.702 x)` (OpenAI CLIP, `transformers`' `quick_gelu`);
//! - ReLU (adapter bottlenecks, TCN).

use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

/// A pointwise activation, chosen by configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact (erf) GELU.
    Gelu,
    /// `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// Applies the activation to `x + bias` (`bias` along the last axis; a linear layer's output
    /// whose bias it leaves to this pass: [`crate::nn::Linear::forward_unbiased`]).
    pub fn forward_biased<const D: usize>(
        self,
        x: Tensor<D>,
        bias: Option<Tensor<1>>,
    ) -> Tensor<D> {
        match (self, bias) {
            (Activation::Gelu, bias) => amflow_kernels::ops::gelu_bias(x, bias),
            (other, Some(b)) => other.forward(x + b.unsqueeze::<D>()),
            (other, None) => other.forward(x),
        }
    }

    /// Applies the activation.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => amflow_kernels::ops::gelu(x),
            Activation::QuickGelu => x.clone() * activation::sigmoid(x.mul_scalar(1.702)),
            Activation::Relu => activation::relu(x),
        }
    }
}
