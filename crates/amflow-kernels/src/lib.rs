//! # amflow-kernels
//!
//! The op facade of amflow's model. Every layer of the model crate computes through the
//! functions of [`ops`] (the linear layer, layer norm, softmax, GELU, the attention scores and
//! products, burn's fused attention where no map is needed, and linear attention), and each of
//! them picks the kernel for the tensor's backend: on the CPU backend (`Flex`, `f32`) a fused
//! op with its own backward pass in the autodiff graph (burn backend extensions, implemented for
//! `Flex` and `Autodiff<Flex>`; docs/performance.md records what each saved), on every other
//! backend and dtype burn's own ops, which the GPU backends compile into their kernels. The
//! layers therefore have one body, and no layer branches on the backend.
//!
//! The CPU kernels live in private modules: `fused` (softmax, layer norm, GELU, linear),
//! `fused_attention` (`Q K^T`, the probabilities without the logits, `P V` and the column sums
//! `P^T 1`, heads read in place from one packed `q k v` buffer, one gradient for it),
//! `fused_linear_attention` (the aligning encoder's linear attention), `frame_difference`
//! (aligned AM flow's `|x_t - x_{t+1}|`), `heads` (the projections' `[frames, tokens,
//! heads x head_dim]` layout both attention kernels read, packed three to a row for
//! self-attention), `host_kernels` (vectorised loops dispatched to AVX-512 / AVX2 at run time
//! through `pulp`), `gemm` (a bounds-checked front for the `gemm` crate), `bf16_gemm` (the bf16
//! product of a mixed-precision backbone: AMX tiles on Intel Xeons that have them, `vdpbf16ps`
//! where the CPU has AVX-512 BF16, the f32 product of bf16-rounded operands elsewhere) and
//! `flex_host` (the `FlexTensor` <-> slice helpers).
//! `census` (feature `product-census`) times every product for `bench/model/product_census.py`.
//! [`on_pool`] runs a model step on rayon's pool, where those kernels' parallel parts start
//! without waking the caller.
//! Tests compare every fused op with burn's ops on the same inputs, values and gradients.

mod adamw;
mod bf16_gemm;
mod census;
mod flex_host;
mod frame_difference;
mod fused;
mod fused_attention;
mod fused_linear_attention;
mod gemm;
mod heads;
mod host_kernels;
pub mod ops;
mod pool;
mod residual;

pub use census::flush_product_census;
pub use flex_host::is_cpu;
pub use pool::{map_on_pool_for, on_pool, on_pool_for};
