//! Deterministic parameter initialisation.
//!
//! The project's one version-independent random generator (`amflow_rng`, SplitMix64 with
//! Box–Muller normals) keyed by each parameter's name, so that a
//! model built from a config and a seed has the same weights on every backend and every burn
//! version. Initialisers follow PyTorch's defaults where the spec leaves them open:
//! `nn.Linear` (Kaiming-uniform weight, uniform bias in `±1/sqrt(fan_in)`), truncated normal
//! with std 0.02 for embeddings, zeros for `Up`.

use burn::prelude::*;

use crate::host_tensor::HostTensor;

pub use amflow_rng::SplitMix64;

/// The generator of a named parameter: the same seed and name give the same stream,
/// independently of the order in which modules are built.
pub fn param_rng(seed: u64, name: &str) -> SplitMix64 {
    SplitMix64::from_state(seed ^ amflow_rng::name_hash(name).rotate_left(17) ^ amflow_rng::GOLDEN)
}

/// The generator for a plain seed (tests and tools that need no per-parameter stream).
pub fn seed_rng(seed: u64) -> SplitMix64 {
    SplitMix64::from_state(seed ^ amflow_rng::GOLDEN)
}

/// How a parameter tensor is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All equal to the value.
    Constant(f64),
    /// Uniform in `[-bound, bound]`.
    Uniform(f64),
    /// Normal with the standard deviation, truncated to ±2 std.
    TruncNormal(f64),
}

impl Init {
    /// PyTorch's `nn.Linear` / `nn.Conv1d` default bound for a layer with `fan_in` inputs.
    pub fn torch_default(fan_in: usize) -> Self {
        Init::Uniform(1.0 / (fan_in.max(1) as f64).sqrt())
    }

    /// Samples a host tensor of `shape`.
    pub fn sample(self, shape: &[usize], rng: &mut SplitMix64) -> HostTensor {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| match self {
                Init::Zeros => 0.0,
                Init::Constant(c) => c as f32,
                Init::Uniform(b) => ((rng.next_f64() * 2.0 - 1.0) * b) as f32,
                Init::TruncNormal(std) => loop {
                    let v = rng.normal();
                    if v.abs() <= 2.0 {
                        break (v * std) as f32;
                    }
                },
            })
            .collect();
        HostTensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// Samples a burn tensor of rank `D` on `device`.
    pub fn tensor<const D: usize>(
        self,
        shape: [usize; D],
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Tensor<D> {
        let host = self.sample(&shape, rng);
        Tensor::from_data(TensorData::new(host.data, shape.to_vec()), device)
    }
}
