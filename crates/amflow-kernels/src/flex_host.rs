//! Moving between burn's CPU tensors (`FlexTensor`, the primitive of the `Flex` backend) and the
//! host's `f32` slices (and `bf16` ones, for the bf16 linear layer), for the fused ops
//! ([`super::fused`], [`super::fused_attention`], [`super::fused_linear_attention`]).
//!
//! A contiguous tensor is read in place; `Vec<f32>` results become tensors without a copy
//! (`TensorData::new` keeps the vector, whose `f32` alignment burn's CPU backend accepts).

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{bf16, DType, Shape, TensorData};

/// Whether `x` is an `f32` tensor on the CPU backend (in the autodiff graph or not): the case
/// the fused ops serve.
pub(crate) fn on_cpu_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && is_cpu(&x.device())
}

/// Whether `device` is the CPU backend, with or without autodiff.
pub fn is_cpu(device: &Device) -> bool {
    device.clone().inner().inner() == Device::flex().inner()
}

/// A fused op on `Autodiff<Flex>`: when an input is tracked, `forward` computes the output and
/// what `op`'s backward keeps, and the op joins the graph; otherwise `plain` computes the
/// output alone (the `Flex` implementation).
pub(crate) fn with_backward<C, O, const N: usize>(
    op: O,
    inputs: [FloatTensor<Autodiff<Flex, C>>; N],
    forward: impl FnOnce([FlexTensor; N]) -> (O::State, FlexTensor),
    plain: impl FnOnce([FlexTensor; N]) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>>
where
    C: CheckpointStrategy,
    O: Backward<Flex, N>,
{
    let nodes = inputs.each_ref().map(|t| t.node());
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (state, output) = forward(inputs.map(|t| t.into_primitive()));
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(plain(inputs.map(|t| t.into_primitive()))),
    }
}

/// `t` itself when its values are contiguous, else a contiguous copy (any dtype).
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a contiguous `f32` tensor, in row-major order.
///
/// # Panics
/// When `t` is not contiguous (pass it through [`contiguous`]) or not `f32` (the fused ops'
/// wrappers admit only `f32`).
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

/// The values of a contiguous `bf16` tensor, in row-major order.
///
/// # Panics
/// When `t` is not contiguous (pass it through [`contiguous`]) or not `bf16`.
pub(crate) fn bf16_values(t: &FlexTensor) -> &[bf16] {
    t.as_slice::<bf16>().expect("contiguous bf16 tensor")
}

/// A contiguous `f32` tensor of `shape` holding `data`.
pub(crate) fn tensor_of(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.into()))
}

/// Runs `kernel` on the values of `t` in place (`t`'s own buffer when it holds it alone and
/// contiguously, else a copy) and returns the result.
pub(crate) fn map_in_place(t: FlexTensor, kernel: impl FnOnce(&mut [f32])) -> FlexTensor {
    let mut data = t.into_data();
    kernel(data.as_mut_slice::<f32>().expect("fused ops take f32"));
    FlexTensor::from_data(data)
}

/// Helpers shared by the fused ops' tests.
#[cfg(test)]
pub(crate) mod testing {
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// A standard-normal tensor scaled by `std`.
    pub fn random<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, std), device)
    }

    /// The values of `t`.
    pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Largest `|a - b|` relative to the largest `|b|` (floored at 1).
    pub fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }
}
