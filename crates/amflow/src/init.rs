//! Deterministic parameter initialisation.
//!
//! A small, version-independent random generator (SplitMix64 with Box–Muller normals), so that a
//! model built from a config and a seed has the same weights on every backend and every burn
//! version. Initialisers follow PyTorch's defaults where the spec leaves them open:
//! `nn.Linear` (Kaiming-uniform weight, uniform bias in `±1/sqrt(fan_in)`), truncated normal
//! with std 0.02 for embeddings, zeros for `Up`.

use burn::prelude::*;

use crate::host_tensor::HostTensor;

/// A seeded SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A generator for a named sub-stream: the same seed and name give the same stream,
    /// independently of the order in which modules are built.
    pub fn derive(seed: u64, name: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Self::new(seed ^ h.rotate_left(17))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
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
    pub fn sample(self, shape: &[usize], rng: &mut SeededRng) -> HostTensor {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| match self {
                Init::Zeros => 0.0,
                Init::Constant(c) => c as f32,
                Init::Uniform(b) => ((rng.uniform() * 2.0 - 1.0) * b) as f32,
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
        rng: &mut SeededRng,
        device: &Device,
    ) -> Tensor<D> {
        let host = self.sample(&shape, rng);
        Tensor::from_data(TensorData::new(host.data, shape.to_vec()), device)
    }
}
