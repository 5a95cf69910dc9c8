//! Fully connected layer, `y = x W^T + b`, with PyTorch's `[out, in]` weight layout.

use burn::module::Param;
use burn::prelude::*;

use super::VarBuilder;
use crate::error::Result;
use crate::init::Init;

/// A linear layer.
///
/// # Shapes
/// - input `[..., in]`
/// - output `[..., out]`
#[derive(Module, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// Builds the layer from `vb` (names `weight`, `bias`), initialised like PyTorch's
    /// `nn.Linear` when the source is random.
    pub fn new(vb: &VarBuilder<'_>, d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let init = Init::torch_default(d_in);
        Self::with_init(vb, d_in, d_out, bias, init, init)
    }

    /// Builds the layer with explicit initialisers for weight and bias.
    pub fn with_init(
        vb: &VarBuilder<'_>,
        d_in: usize,
        d_out: usize,
        bias: bool,
        weight_init: Init,
        bias_init: Init,
    ) -> Result<Self> {
        let weight = vb.param::<2>("weight", [d_out, d_in], weight_init)?;
        let bias = if bias {
            Some(vb.param::<1>("bias", [d_out], bias_init)?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Applies the layer to the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let bias = self.bias();
        self.on_rows(x, |x| {
            amflow_kernels::ops::linear(x, self.weight.val(), bias)
        })
    }

    /// The bias, if the layer has one.
    fn bias(&self) -> Option<Tensor<1>> {
        self.bias.as_ref().map(Param::val)
    }

    /// `product` of `x` flattened to `[rows, last axis]`, its result given back `x`'s leading
    /// axes and the layer's output width.
    fn on_rows<const D: usize>(
        &self,
        x: Tensor<D>,
        product: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<D> {
        let mut dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let y = product(x.reshape([rows, dims[D - 1]]));
        dims[D - 1] = self.d_out();
        y.reshape(dims)
    }

    /// `x W^T` without the bias, and the bias: for a consumer that adds it in a pass of its own
    /// (the fused residual update), so that the product writes its output without starting from
    /// bias rows.
    pub fn forward_unbiased<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Option<Tensor<1>>) {
        let y = self.on_rows(x, |x| {
            amflow_kernels::ops::linear(x, self.weight.val(), None)
        });
        (y, self.bias())
    }

    /// `layers` side by side on `x`, as one product: the concatenation of their outputs on
    /// the last axis, from their weights stacked (`[sum of d_out, d_in]`) and their biases
    /// (zeros for a layer without one). Self-attention computes its `q`, `k`, `v` this way:
    /// one product reads `x` once, and in training one input gradient comes back instead of
    /// three to be summed.
    ///
    /// # Panics
    /// When `layers` is empty or their input widths differ.
    pub fn forward_stacked<const D: usize>(layers: &[&Linear], x: Tensor<D>) -> Tensor<D> {
        let first = layers.first().expect("at least one layer");
        assert!(
            layers.iter().all(|l| l.d_in() == first.d_in()),
            "stacked layers take one input width"
        );
        let weight = Tensor::cat(layers.iter().map(|l| l.weight.val()).collect(), 0);
        let bias = layers.iter().any(|l| l.bias.is_some()).then(|| {
            let parts = layers.iter().map(|l| {
                l.bias().unwrap_or_else(|| {
                    Tensor::<1>::zeros([l.d_out()], &l.weight.device()).cast(l.weight.dtype())
                })
            });
            Tensor::cat(parts.collect(), 0)
        });
        let mut dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let y = amflow_kernels::ops::linear(x.reshape([rows, dims[D - 1]]), weight, bias);
        dims[D - 1] = layers.iter().map(|l| l.d_out()).sum();
        y.reshape(dims)
    }

    /// The layer applied to the concatenation of `first` and `second` on the last axis,
    /// without writing the concatenation: `first W_1^T + b + second W_2^T`, `W_1` and `W_2`
    /// the weight's columns for each part (the same function up to the order of the sums; on
    /// the CPU two products instead of a copy of the inputs and, in training, of their
    /// gradient).
    ///
    /// # Panics
    /// When the parts' widths do not add up to the layer's input width.
    pub fn forward_concat<const D: usize>(&self, first: Tensor<D>, second: Tensor<D>) -> Tensor<D> {
        let (d1, d2) = (first.dims()[D - 1], second.dims()[D - 1]);
        assert_eq!(d1 + d2, self.d_in(), "concatenated widths {d1} + {d2}");
        let weight = self.weight.val();
        let bias = self.bias();
        let first = self.on_rows(first, |x| {
            amflow_kernels::ops::linear(x, weight.clone().narrow(1, 0, d1), bias)
        });
        first
            + self.on_rows(second, |x| {
                amflow_kernels::ops::linear(x, weight.narrow(1, d1, d2), None)
            })
    }
}
