//! Mixed precision for the frozen backbone: its matrix weights (patch projection, attention
//! and MLP linear layers) stored in bf16, and every product with them computed in bf16
//! (`amflow_kernels::ops::weight_matmul` and `ops::linear`: the activations are rounded to bf16
//! for the product, the result is f32). Everything else (layer norms, softmax, the attention
//! products `Q K^T` and `P V`, the residual stream, the AM flow and all trainable additions)
//! stays in f32, as autocast does in PyTorch for a frozen feature extractor. This halves the
//! backbone's weight memory and uses the bf16 matrix units of GPUs. On the CPU backend the
//! products run in amflow-kernels' bf16 kernels: AMX tiles (`tdpbf16ps`) on Intel Xeons that
//! have them, native bf16 dot products (`vdpbf16ps`) where the CPU has AVX-512 BF16, both with
//! f32 sums and an f32 result (not rounded to bf16, unlike burn's and PyTorch's bf16 products);
//! elsewhere the f32 product of the bf16-rounded operands (the same numbers, at about the f32
//! path's speed). `AMFLOW_BF16_KERNEL` (`amx`, `avx512-bf16`, `portable`) caps the choice.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use super::Vit;
use crate::nn::PathStack;

/// The number format of the backbone's matrix weights and products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackbonePrecision {
    /// Full precision (default).
    #[default]
    F32,
    /// bf16 weights and matrix products, f32 elsewhere.
    Bf16,
}

impl BackbonePrecision {
    /// Whether this is the default, f32.
    pub fn is_f32(&self) -> bool {
        *self == BackbonePrecision::F32
    }

    fn dtype(self) -> DType {
        match self {
            BackbonePrecision::F32 => DType::F32,
            BackbonePrecision::Bf16 => DType::BF16,
        }
    }
}

struct ToPrecision {
    path: PathStack,
    dtype: DType,
}

impl ModuleMapper for ToPrecision {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // Matrix weights only: rank-2 parameters other than the register tokens (added, not
        // multiplied).
        if D != 2 || self.path.path() == "registers" {
            return param;
        }
        let dtype = self.dtype;
        param.map(|t| t.cast(dtype))
    }
}

impl Vit {
    /// The backbone with its matrix weights in `precision` (module docs).
    pub fn with_precision(self, precision: BackbonePrecision) -> Self {
        let mut mapper = ToPrecision {
            path: PathStack::default(),
            dtype: precision.dtype(),
        };
        self.map(&mut mapper)
    }
}
