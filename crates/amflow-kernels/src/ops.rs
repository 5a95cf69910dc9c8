//! The ops the model computes with, each choosing its kernel for the tensor's backend (crate
//! docs): the fused CPU op for `f32` tensors on the `Flex` backend, burn's ops elsewhere. The
//! two paths compute the same function; tests in this crate and the model's parity tests
//! compare them.
//!
//! Shapes follow the model's conventions: projections `[frames, tokens, width]` with the heads
//! side by side (`width = heads * d`), self-attention's three packed side by side
//! ([`PackedQkv`], `[frames, tokens, 3 width]`), attention maps `[frames, heads, tokens, tokens]`.

use burn::prelude::*;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::DType;

use crate::flex_host::on_cpu_f32;
use crate::{frame_difference, fused, fused_attention, fused_linear_attention, host_kernels};

pub use crate::adamw::{adamw_step, AdamWStep};
pub use crate::residual::{residual, Residual};

/// `x W^T + b` (`x` `[rows, in]`, `W` `[out, in]`, `b` `[out]`). On the CPU backend one product
/// that starts from the bias, with its own backward: in f32 for an `f32` weight, in bf16 for a
/// frozen `bf16` weight (the mixed-precision backbone: [`weight_matmul`]); otherwise burn's
/// product in the weight's precision and the bias added after.
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    if on_cpu_f32(&x) {
        let f32_weight = weight.dtype() == DType::F32;
        let bf16_weight =
            frozen_bf16(&weight) && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        if f32_weight || bf16_weight {
            let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()));
            return if f32_weight {
                fused::linear(x, weight, bias)
            } else {
                fused::linear_bf16(x, weight, bias)
            };
        }
    }
    let y = weight_matmul(x, weight);
    match bias {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    }
}

/// Whether `weight` is a bf16 weight outside the autodiff graph (the frozen backbone's), which
/// the CPU backend multiplies with its own bf16 kernel.
fn frozen_bf16(weight: &Tensor<2>) -> bool {
    weight.dtype() == DType::BF16 && !weight.is_tracked()
}

/// `x W^T` in the precision of `weight` (`x` `[rows, in]` f32, `weight` `[out, in]`), f32 out:
/// the activations are rounded to the weight's dtype for the product. On the CPU backend a
/// frozen bf16 weight takes the crate's bf16 kernel (native bf16 dot products where the CPU has
/// AVX-512 BF16; f32 sums, the result not rounded to bf16, gradient for `x` only); otherwise
/// burn's product in that dtype, cast back to f32.
pub fn weight_matmul(x: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    let dtype = weight.dtype();
    if dtype == DType::F32 {
        return x.matmul(weight.transpose());
    }
    if frozen_bf16(&weight) && on_cpu_f32(&x) {
        return linear(x, weight, None);
    }
    x.cast(dtype).matmul(weight.transpose()).cast(DType::F32)
}

/// Layer norm over the last axis (`gamma`, `beta` `[d]`, biased variance, PyTorch's
/// `nn.LayerNorm`): the fused op when any input is a tracked CPU tensor, burn's op otherwise
/// (burn's is itself one pass outside the autodiff graph).
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    fused::layer_norm(x, gamma, beta, eps)
}

/// Softmax over the last axis.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    fused::softmax_last(x)
}

/// Exact (erf) GELU: a vectorised host kernel on the CPU backend (fused, with its exact
/// derivative, when tracked), burn's op elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    host_kernels::gelu(x)
}

/// Exact GELU of `x + bias` (`bias` `[d]` along the last axis: a linear layer's output whose
/// bias was left out, [`linear`] with `None`): on the CPU backend one pass that adds the bias
/// and applies GELU (fused, with its derivative, when tracked), so the product's output is not
/// first filled with bias rows; burn's ops elsewhere.
pub fn gelu_bias<const D: usize>(x: Tensor<D>, bias: Option<Tensor<1>>) -> Tensor<D> {
    let Some(bias) = bias else {
        return gelu(x);
    };
    if on_cpu_f32(&x) && on_cpu_f32(&bias) {
        return fused::gelu_bias(x, bias);
    }
    gelu(x + bias.unsqueeze::<D>())
}

/// `[frames, tokens, heads * d]` -> `[frames, heads, tokens, d]`.
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [f, n, w] = x.dims();
    x.reshape([f, n, heads, w / heads]).swap_dims(1, 2)
}

/// `[frames, heads, tokens, d]` -> `[frames, tokens, heads * d]`.
fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [f, h, n, d] = x.dims();
    x.swap_dims(1, 2).reshape([f, n, h * d])
}

/// The packed projections of one self-attention call, `qkv` `[frames, tokens, 3 width]`: `q`,
/// `k`, `v` side by side (one product of the layer input with the three weights stacked), each
/// with its heads side by side. Its ops read the heads in place on the CPU backend, and the
/// gradients of all of them land in one `qkv` gradient (`fused_attention`'s module docs); on
/// other backends they are burn's ops on the three column ranges.
#[derive(Debug, Clone)]
pub struct PackedQkv {
    qkv: Tensor<3>,
    heads: usize,
    scale: f64,
    link: fused_attention::GradientLink,
}

impl PackedQkv {
    /// `qkv` split into `heads` per projection, logits scaled by `scale`.
    ///
    /// # Panics
    /// When the last axis is not three times a multiple of `heads`.
    pub fn new(qkv: Tensor<3>, heads: usize, scale: f64) -> Self {
        let w3 = qkv.dims()[2];
        assert!(
            heads > 0 && w3.is_multiple_of(3 * heads),
            "packed projections of width {w3} for {heads} heads"
        );
        Self {
            qkv,
            heads,
            scale,
            link: fused_attention::GradientLink::default(),
        }
    }

    fn fused(&self) -> bool {
        on_cpu_f32(&self.qkv)
    }

    /// Projection `index` (0 `q`, 1 `k`, 2 `v`), `[frames, tokens, width]`.
    fn projection(&self, index: usize) -> Tensor<3> {
        let w = self.qkv.dims()[2] / 3;
        self.qkv.clone().narrow(2, index * w, w)
    }

    /// The logits `scale q_h k_h^T` per frame and head: `[frames, heads, tokens, tokens]`.
    pub fn logits(&self) -> Tensor<4> {
        if self.fused() {
            let link = self.link.clone();
            return fused_attention::logits(self.qkv.clone(), self.heads, self.scale, link);
        }
        // The scale goes on `q` (`tokens x d` values) rather than on the logits (`tokens^2`).
        let q = split_heads(self.projection(0).mul_scalar(self.scale), self.heads);
        q.matmul(split_heads(self.projection(1), self.heads).swap_dims(2, 3))
    }

    /// The probabilities `softmax(scale q_h k_h^T)` per frame and head, without the logits in
    /// memory on the CPU backend (each map normalised while it is in the cache).
    pub fn probs(&self) -> Tensor<4> {
        if self.fused() {
            let link = self.link.clone();
            return fused_attention::probs(self.qkv.clone(), self.heads, self.scale, link);
        }
        softmax_last(self.logits())
    }

    /// `P_h v_h` per frame and head for `p` `[frames, heads, tokens, tokens]`, heads merged:
    /// `[frames, tokens, width]`.
    pub fn apply(&self, p: Tensor<4>) -> Tensor<3> {
        if self.fused() {
            let link = self.link.clone();
            return fused_attention::apply(p, self.qkv.clone(), self.heads, link);
        }
        merge_heads(p.matmul(split_heads(self.projection(2), self.heads)))
    }

    /// The column sums `P^T 1` of probabilities `p` `[frames, heads, tokens, tokens]` (this
    /// call's, for aligned AM flow), heads last: `[frames, tokens, heads]`. On the CPU backend
    /// one pass each way, whose gradient joins the apply op's in one buffer.
    pub fn column_sums(&self, p: Tensor<4>) -> Tensor<3> {
        if on_cpu_f32(&p) {
            return fused_attention::column_sums(p, self.link.clone());
        }
        let [f, h, n, _] = p.dims();
        p.sum_dim(2).reshape([f, h, n]).swap_dims(1, 2)
    }

    /// Whether this call's maps can stay in the cache: an untracked `f32` CPU tensor, whose
    /// backward keeps nothing.
    fn in_cache(&self) -> bool {
        self.fused() && !self.qkv.is_tracked()
    }

    /// Attention and the column sums of its probabilities, without the probabilities:
    /// `(merge_heads(P_h v_h), P^T 1)`, shapes `[frames, tokens, width]` and `[frames, tokens,
    /// heads]` (aligned AM flow's input). An untracked CPU pass never has the maps in memory
    /// (each is normalised, summed and applied in one scratch buffer); otherwise
    /// [`Self::probs`], [`Self::apply`] and [`Self::column_sums`].
    pub fn attention_with_column_sums(&self) -> (Tensor<3>, Tensor<3>) {
        if self.in_cache() {
            let (merged, sums) =
                fused_attention::in_cache(self.qkv.clone(), self.heads, self.scale, true);
            return (merged, sums.expect("asked for"));
        }
        let p = self.probs();
        (self.apply(p.clone()), self.column_sums(p))
    }

    /// Attention whose map nobody reads: `merge_heads(softmax(scale q_h k_h^T) v_h)`. Other
    /// backends run burn's `attention` op, which the GPU backends compute as one fused kernel
    /// that never writes the map to memory (under autodiff burn decomposes it); on the CPU
    /// backend the fused probabilities and product, each map in the cache from its product to
    /// its use when untracked.
    pub fn attention(&self) -> Tensor<3> {
        if self.in_cache() {
            let (merged, _) =
                fused_attention::in_cache(self.qkv.clone(), self.heads, self.scale, false);
            return merged;
        }
        if self.fused() {
            return self.apply(self.probs());
        }
        let options = AttentionModuleOptions {
            scale: Some(self.scale),
            softcap: None,
            is_causal: false,
        };
        let [q, k, v] = [0, 1, 2].map(|i| split_heads(self.projection(i), self.heads));
        merge_heads(burn::tensor::module::attention(
            q, k, v, None, None, options,
        ))
    }
}

/// Aligned AM flow's frame difference for `x` `[clips, frames, rows, width]` (`frames >= 2`):
/// `|x_t - x_{t+1}|` per clip, the last pair repeated for the last frame so that every frame
/// has one. One pass each way on the CPU backend, burn's slices and `abs` elsewhere.
pub fn abs_frame_difference(x: Tensor<4>) -> Tensor<4> {
    let t = x.dims()[1];
    assert!(t >= 2, "a frame difference needs two frames, got {t}");
    if on_cpu_f32(&x) {
        return frame_difference::abs_frame_difference(x);
    }
    let pairs = (x.clone().narrow(1, 0, t - 1) - x.narrow(1, 1, t - 1)).abs();
    let last = pairs.clone().narrow(1, t - 2, 1);
    Tensor::cat(vec![pairs, last], 1)
}

/// `phi(x) = elu(x) + 1`, written as `exp(min(x, 0)) + max(x, 0)`: four element-wise passes
/// instead of burn's `elu` (a mask, `exp`, two scalar ops and a masked select) and the `+ 1`.
fn phi(x: Tensor<3>) -> Tensor<3> {
    x.clone().clamp_max(0.0).exp() + x.clamp_min(0.0)
}

/// Non-causal linear attention (Katharopoulos et al. 2020) per frame and head, heads merged:
/// `out_i = phi(q_i) (sum_j phi(k_j)^T v_j) / (phi(q_i) . sum_j phi(k_j) + eps)`, no `1/sqrt(d)`.
pub fn linear_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    eps: f64,
) -> Tensor<3> {
    if on_cpu_f32(&q) {
        return fused_linear_attention::linear_attention(q, k, v, heads, eps);
    }
    // phi before the head split: element-wise passes over contiguous memory.
    let q = split_heads(phi(q), heads);
    let k = split_heads(phi(k), heads);
    let v = split_heads(v, heads);
    // sum_j phi(k_j)^T v_j: [f, h, d, d]; sum_j phi(k_j): [f, h, 1, d].
    let kv = k.clone().swap_dims(2, 3).matmul(v);
    let k_sum = k.sum_dim(2);
    let numerator = q.clone().matmul(kv);
    // q . k_sum per token as a matrix product: [f, h, n, d] x [f, h, d, 1].
    let denominator = q.matmul(k_sum.swap_dims(2, 3)).add_scalar(eps);
    merge_heads(numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GELU of a product without its bias and the bias: the values and gradients of burn's
    /// GELU of the sum, tracked (bias trainable and frozen) and not.
    #[test]
    fn gelu_with_a_bias_matches_gelu_of_the_sum() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            for (shape, bias_trains) in [([300, 1536], true), ([7, 5], false)] {
                let d = shape[1];
                let tracked = device.is_autodiff();
                let x = random(shape, 2.0, &device);
                let x = if tracked { x.require_grad() } else { x };
                let b = random([d], 1.0, &device);
                let b = if tracked && bias_trains {
                    b.require_grad()
                } else {
                    b
                };
                let fused = gelu_bias(x.clone(), Some(b.clone()));
                let reference =
                    burn::tensor::activation::gelu(x.clone() + b.clone().unsqueeze::<2>());
                assert!(relative_error(&host(fused.clone()), &host(reference.clone())) < 2e-6);
                if tracked {
                    let w = random(shape, 1.0, &device);
                    let gf = (fused * w.clone()).sum().backward();
                    let gr = (reference * w).sum().backward();
                    let (f, r) = (x.grad(&gf).unwrap(), x.grad(&gr).unwrap());
                    assert!(relative_error(&host(f), &host(r)) < 1e-5, "dx {shape:?}");
                    match bias_trains {
                        true => {
                            let (f, r) = (b.grad(&gf).unwrap(), b.grad(&gr).unwrap());
                            assert!(relative_error(&host(f), &host(r)) < 1e-5, "db {shape:?}");
                        }
                        false => assert!(b.grad(&gf).is_none()),
                    }
                }
            }
        }
    }
    use crate::flex_host::testing::{host, random, relative_error};

    /// The same numbers through the fused path (f32 on Flex) and burn's path (f64 on Flex,
    /// which no fused op takes), as f32.
    fn both<const D: usize>(
        f: impl Fn(Vec<Tensor<3>>) -> Tensor<D>,
        shapes: &[[usize; 3]],
    ) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex();
        let inputs: Vec<Tensor<3>> = shapes.iter().map(|&s| random(s, 1.0, &device)).collect();
        let fused = host(f(inputs.clone()));
        let wide = inputs.into_iter().map(|t| t.cast(DType::F64)).collect();
        let plain = host(f(wide).cast(DType::F32));
        (fused, plain)
    }

    #[test]
    fn fused_and_burn_paths_agree() {
        let s = [[2, 7, 12]; 3];
        let packed = |x: &[Tensor<3>]| PackedQkv::new(Tensor::cat(x.to_vec(), 2), 3, 0.5);
        let (a, b) = both(|x| packed(&x).logits(), &s);
        assert!(relative_error(&a, &b) < 1e-5, "logits");
        let (a, b) = both(|x| packed(&x).probs(), &s);
        assert!(relative_error(&a, &b) < 1e-5, "probs");
        let (a, b) = both(|x| packed(&x).attention(), &s);
        assert!(relative_error(&a, &b) < 1e-5, "attention");
        let (a, b) = both(
            |x| {
                let qkv = packed(&x);
                qkv.apply(qkv.probs())
            },
            &s,
        );
        assert!(relative_error(&a, &b) < 1e-5, "probs then apply");
        let (a, b) = both(
            |x| {
                let qkv = packed(&x);
                qkv.column_sums(qkv.probs())
            },
            &s,
        );
        assert!(relative_error(&a, &b) < 1e-5, "column sums");
        let (a, b) = both(
            |x| linear_attention(x[0].clone(), x[1].clone(), x[2].clone(), 3, 1e-6),
            &s,
        );
        assert!(relative_error(&a, &b) < 1e-5, "linear attention");
    }

    #[test]
    fn burns_attention_op_equals_the_explicit_path() {
        // The no-map op off the CPU path (f64 on Flex) against probabilities then product.
        let device = Device::flex();
        let qkv = random([3, 5, 24], 1.0, &device).cast(DType::F64);
        let qkv = PackedQkv::new(qkv, 2, 0.3);
        let fused = qkv.attention();
        let explicit = qkv.apply(qkv.probs());
        let (a, b) = (
            host(fused.cast(DType::F32)),
            host(explicit.cast(DType::F32)),
        );
        assert!(relative_error(&a, &b) < 1e-6);
    }

    #[test]
    fn linear_takes_the_bias_and_the_weights_precision() {
        let device = Device::flex();
        let x: Tensor<2> = random([4, 6], 1.0, &device);
        let w: Tensor<2> = random([3, 6], 1.0, &device);
        let b: Tensor<1> = random([3], 1.0, &device);
        let want = host(x.clone().matmul(w.clone().transpose()) + b.clone().unsqueeze::<2>());
        let got = host(linear(x.clone(), w.clone(), Some(b)));
        assert!(relative_error(&got, &want) < 1e-6);
        let no_bias = host(linear(x.clone(), w.clone(), None));
        assert!(relative_error(&no_bias, &host(x.clone().matmul(w.clone().transpose()))) < 1e-6);
        // A bf16 weight: the product in bf16, about 3 significant digits.
        let half = host(linear(x, w.cast(DType::BF16), None));
        let e = relative_error(&half, &no_bias);
        assert!(e > 0.0 && e < 2e-2, "{e}");
    }

    /// `bf16(x) W^T + b` in f32 on the host's values (the bf16 kernel's function, up to the
    /// order of the f32 sums), on the plain CPU device.
    fn bf16_reference(x: &Tensor<2>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> Vec<f32> {
        let plain = Device::flex();
        let round = |t: Tensor<2>| {
            let t = Tensor::<2>::from_data(t.into_data(), &plain);
            t.cast(DType::BF16).cast(DType::F32)
        };
        let y = round(x.clone()).matmul(round(w.clone()).transpose());
        host(match b {
            Some(b) => y + Tensor::<1>::from_data(b.clone().into_data(), &plain).unsqueeze::<2>(),
            None => y,
        })
    }

    #[test]
    fn bf16_weights_take_the_bf16_kernel_with_its_values() {
        let device = Device::flex();
        // Parallel sizes (at least 192^3 multiply-adds) with edges, and a small product.
        for (rows, d_in, d_out) in [(300, 97, 257), (5, 6, 3)] {
            let x: Tensor<2> = random([rows, d_in], 1.0, &device);
            let w = random::<2>([d_out, d_in], 1.0, &device).cast(DType::BF16);
            let b: Tensor<1> = random([d_out], 1.0, &device);
            let want = bf16_reference(&x, &w, Some(&b));
            let got = host(linear(x.clone(), w.clone(), Some(b.clone())));
            let e = relative_error(&got, &want);
            assert!(e < 1e-5, "{rows}x{d_in}->{d_out}: {e}");
            let product = host(weight_matmul(x.clone(), w.clone()));
            let e = relative_error(&product, &bf16_reference(&x, &w, None));
            assert!(e < 1e-5, "weight_matmul {rows}x{d_in}->{d_out}: {e}");
            // burn's own bf16 path rounds the product to bf16: within a bf16 step or two.
            let burns = x.cast(DType::BF16).matmul(w.transpose()).cast(DType::F32);
            let e = relative_error(&got, &host(burns + b.unsqueeze::<2>()));
            assert!(e < 2e-2, "against burn's bf16 product: {e}");
        }
    }
}
