//! LSTM TPM (model spec, sections 3 and 7): one unidirectional layer, hidden size `r`, zero
//! initial state, `Z_t = h_t`, PyTorch's gate order i, f, g, o and parameter layout
//! (`weight_ih`, `weight_hh` `[4r, r]`, `bias_ih`, `bias_hh` `[4r]`):
//!
//! ```text
//! i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)    f = sigmoid(...)    g = tanh(...)    o = sigmoid(...)
//! c_t = f * c_{t-1} + i * g                       h_t = o * tanh(c_t)
//! ```

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};

use crate::error::Result;
use crate::init::Init;
use crate::nn::VarBuilder;

/// The LSTM TPM.
///
/// # Shapes
/// - input and output `[B*N, T, r]`
#[derive(Module, Debug)]
pub struct TemporalLstm {
    /// `[4r, r]`.
    pub weight_ih: Param<Tensor<2>>,
    /// `[4r, r]`.
    pub weight_hh: Param<Tensor<2>>,
    /// `[4r]`.
    pub bias_ih: Param<Tensor<1>>,
    /// `[4r]`.
    pub bias_hh: Param<Tensor<1>>,
}

impl TemporalLstm {
    /// Builds the layer under `vb`, initialised like PyTorch (`U(-1/sqrt(r), 1/sqrt(r))`).
    pub fn new(vb: &VarBuilder<'_>, width: usize) -> Result<Self> {
        let init = Init::torch_default(width);
        Ok(Self {
            weight_ih: vb.param::<2>("weight_ih", [4 * width, width], init)?,
            weight_hh: vb.param::<2>("weight_hh", [4 * width, width], init)?,
            bias_ih: vb.param::<1>("bias_ih", [4 * width], init)?,
            bias_hh: vb.param::<1>("bias_hh", [4 * width], init)?,
        })
    }

    /// Runs the recurrence over the frames.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [bn, t, r] = x.dims();
        let device = x.device();
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze::<2>();
        let x_proj: Tensor<3> = (x
            .reshape([bn * t, r])
            .matmul(self.weight_ih.val().transpose())
            + bias)
            .reshape([bn, t, 4 * r]);
        let w_hh = self.weight_hh.val().transpose();
        let mut h: Tensor<2> = Tensor::zeros([bn, r], &device);
        let mut c: Tensor<2> = Tensor::zeros([bn, r], &device);
        let mut outputs = Vec::with_capacity(t);
        for step in 0..t {
            let gates =
                x_proj.clone().narrow(1, step, 1).reshape([bn, 4 * r]) + h.matmul(w_hh.clone());
            let i = sigmoid(gates.clone().narrow(1, 0, r));
            let f = sigmoid(gates.clone().narrow(1, r, r));
            let g = tanh(gates.clone().narrow(1, 2 * r, r));
            let o = sigmoid(gates.narrow(1, 3 * r, r));
            c = f * c + i * g;
            h = o * tanh(c.clone());
            outputs.push(h.clone().unsqueeze_dim::<3>(1));
        }
        Tensor::cat(outputs, 1)
    }
}
