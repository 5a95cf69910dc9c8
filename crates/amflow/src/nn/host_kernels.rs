//! Element-wise kernels computed on the host's `f32` slices, for tensors outside the autodiff
//! graph (inference, and the frozen work before the first trainable layer).
//!
//! burn's CPU backend (flex) hands a contiguous tensor it owns alone to `into_data` and takes
//! it back from `from_data` without copying, so such a kernel costs one pass over memory.
//! Tracked tensors, other dtypes and other backends take burn's own op (whose backward burn
//! knows).
//!
//! Plain multiply-adds, not `mul_add`: without a target feature that is a call to `fmaf`.
//!
//! - [`gelu`]: exact GELU `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2` with a rational `erf`
//!   (Eigen's and XLA's `float` approximation on `[-4, 4]`, clamped outside; largest absolute
//!   error 4e-7 against the exact `erf`). flex computes `erf` one element at a time with `libm`,
//!   which took 8% of an inference; this loop vectorises.

use burn::prelude::*;
use burn::tensor::{activation, DType};

/// Elements below which one thread does the work.
const PARALLEL_MIN: usize = 1 << 16;

/// Exact GELU (see the module docs); the same as `burn::tensor::activation::gelu` to 4e-7.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    map_untracked(x, gelu_slice, activation::gelu)
}

/// Applies `kernel` to the data of `x` in place when `x` is an untracked `f32` tensor on the
/// CPU backend, else `fallback` to `x` (on a GPU the round trip through the host would cost
/// more than the op).
fn map_untracked<const D: usize>(
    x: Tensor<D>,
    kernel: fn(&mut [f32]),
    fallback: fn(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    if x.is_tracked() || x.dtype() != DType::F32 || x.device() != Device::flex() {
        return fallback(x);
    }
    let device = x.device();
    let mut data = x.into_data();
    match data.as_mut_slice::<f32>() {
        Ok(values) => {
            par_chunks(values, kernel);
            Tensor::from_data(data, &device)
        }
        Err(_) => fallback(Tensor::from_data(data, &device)),
    }
}

/// Runs `kernel` on `values`, split over the available cores when there are many.
fn par_chunks(values: &mut [f32], kernel: fn(&mut [f32])) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || values.len() < PARALLEL_MIN {
        kernel(values);
        return;
    }
    let chunk = values.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = values.chunks_mut(chunk);
        let first = chunks.next();
        for c in chunks {
            s.spawn(move || kernel(c));
        }
        if let Some(c) = first {
            kernel(c);
        }
    });
}

/// `erf(x)` for `f32`, rational approximation (see the module docs).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.9546e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_3e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0f32, |acc, &c| acc * x2 + c) * x;
    let q = BETA.iter().fold(0.0f32, |acc, &c| acc * x2 + c);
    p / q
}

fn gelu_slice(values: &mut [f32]) {
    for v in values {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `erf` by its Taylor series in `f64` (exact to 1e-15 on `|x| <= 3`), and 1 beyond 6.
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 6.0 {
            return x.signum();
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_4e7() {
        let mut worst = 0.0f64;
        for i in -3000..=3000 {
            let x = i as f64 / 1000.0;
            worst = worst.max((erf(x as f32) as f64 - erf_ref(x)).abs());
        }
        assert!(worst < 4e-7, "{worst}");
        assert!((erf(10.0) - 1.0).abs() < 4e-7 && (erf(-10.0) + 1.0).abs() < 4e-7);
    }

    #[test]
    fn gelu_matches_burn() {
        let device = Device::flex();
        let x = Tensor::<2>::random(
            [300, 301],
            burn::tensor::Distribution::Normal(0.0, 3.0),
            &device,
        );
        let want = activation::gelu(x.clone()).into_data();
        let got = gelu(x).into_data();
        let (want, got) = (
            want.as_slice::<f32>().unwrap(),
            got.as_slice::<f32>().unwrap(),
        );
        let worst = want
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
            .fold(0.0f32, f32::max);
        assert!(worst < 2e-6, "{worst}");
    }

    #[test]
    fn tracked_tensors_keep_their_gradient() {
        let device = Device::flex().autodiff();
        let points = [-1.0f32, 0.5, 2.0];
        let x = Tensor::<1>::from_floats(points, &device).require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let grad = x
            .grad(&grads)
            .expect("gelu keeps x in the graph")
            .into_data();
        for (g, &p) in grad.as_slice::<f32>().unwrap().iter().zip(&points) {
            let p = p as f64;
            let pdf = (-0.5 * p * p).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let want = 0.5 * (1.0 + erf_ref(p / std::f64::consts::SQRT_2)) + p * pdf;
            assert!((*g as f64 - want).abs() < 1e-5, "{g} vs {want}");
        }
    }
}
