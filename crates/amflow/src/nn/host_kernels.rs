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
//!
//! A tracked `f32` tensor on the CPU backend (the backbone's MLP during training: frozen
//! weights, but the residual stream depends on the adapters) gets the same kernel through a
//! first-order expansion that autodiff differentiates exactly: with `v = gelu(x0)` and
//! `s = gelu'(x0) = Phi(x0) + x0 phi(x0)` computed on the host from the values `x0` of `x`,
//! `y = x s + (v - x0 s)`. Its value is `v` (to one rounding of the addition) and its gradient
//! is `s`, burn's multiply and add carrying it; autodiff keeps `s` alone, as burn's own GELU
//! keeps `x`. burn's GELU calls `libm`'s `erf` per element forward and again (with `exp`)
//! backward: 6% of a train step.

use burn::prelude::*;
use burn::tensor::{activation, DType};

/// Elements below which one thread does the work.
const PARALLEL_MIN: usize = 1 << 16;

/// Exact GELU (see the module docs); the same as `burn::tensor::activation::gelu` to 4e-7.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.is_tracked() {
        return gelu_tracked(x);
    }
    map_untracked(x, gelu_slice, activation::gelu)
}

/// GELU of a tracked tensor as `x s + (v - x0 s)` (see the module docs).
fn gelu_tracked<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let inner = x.clone().without_autodiff();
    if x.dtype() != DType::F32 || inner.device() != Device::flex() {
        return activation::gelu(x);
    }
    let shape = x.shape();
    let mut data = inner.into_data();
    let Ok(values) = data.as_mut_slice::<f32>() else {
        return activation::gelu(x);
    };
    let mut slope = vec![0.0f32; values.len()];
    // `values` becomes the offset `v - x0 s`, `slope` the derivative `s`.
    par_chunks2(values, &mut slope, gelu_offset_and_slope);
    let offset = Tensor::<D>::from_data(data, &device);
    let slope = Tensor::<D>::from_data(TensorData::new(slope, shape), &device);
    x * slope + offset
}

/// Applies `kernel` to the data of `x` in place when `x` is an untracked `f32` tensor on the
/// CPU backend, else `fallback` to `x` (on a GPU the round trip through the host would cost
/// more than the op).
fn map_untracked<const D: usize>(
    x: Tensor<D>,
    kernel: impl Fn(&mut [f32]) + Copy + Send,
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

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, AVX2 or the
/// baseline, chosen at run time by `pulp`); the kernels are `#[inline(always)]` so that their
/// loops are compiled into each variant.
fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// The chunk length that splits `len` elements over the cores, or `None` when one thread
/// should do the work (few elements, or one core).
fn chunk_len(len: usize) -> Option<usize> {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads =
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (threads >= 2 && len >= PARALLEL_MIN).then(|| len.div_ceil(threads))
}

/// Runs `work` on each part, the first on this thread and the others on scoped threads.
fn run_parts<T: Send>(parts: impl Iterator<Item = T>, work: impl Fn(T) + Copy + Send) {
    std::thread::scope(|s| {
        let mut parts = parts;
        let first = parts.next();
        for part in parts {
            s.spawn(move || simd(|| work(part)));
        }
        if let Some(part) = first {
            simd(|| work(part));
        }
    });
}

/// Runs `kernel` on `values`, split over the available cores when there are many.
fn par_chunks(values: &mut [f32], kernel: impl Fn(&mut [f32]) + Copy + Send) {
    match chunk_len(values.len()) {
        None => simd(|| kernel(values)),
        Some(chunk) => run_parts(values.chunks_mut(chunk), kernel),
    }
}

/// Runs `kernel` on matching chunks of `a` and `b` (of equal length), split over the cores
/// like [`par_chunks`].
fn par_chunks2(
    a: &mut [f32],
    b: &mut [f32],
    kernel: impl Fn(&mut [f32], &mut [f32]) + Copy + Send,
) {
    match chunk_len(a.len()) {
        None => simd(|| kernel(a, b)),
        Some(chunk) => run_parts(
            a.chunks_mut(chunk).zip(b.chunks_mut(chunk)),
            move |(a, b)| kernel(a, b),
        ),
    }
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

#[inline(always)]
fn gelu_slice(values: &mut [f32]) {
    for v in values {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `e^x` for `x` in `[-87, 0]` (clamped there): Cody-Waite range reduction `x = n ln 2 + r`
/// with `|r| <= ln 2 / 2`, the Taylor polynomial of `e^r` to degree 6, and `2^n` written into
/// the exponent bits; relative error below 3e-7. `libm`'s `expf` is a call per element; this
/// vectorises.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const TAYLOR: [f32; 5] = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5];
    let x = x.clamp(-87.0, 0.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let e_r = 1.0 + r + r * r * TAYLOR.iter().fold(0.0f32, |acc, &c| acc * r + c);
    // The low bits of `t` hold n (two's complement, -126 <= n <= 0): bias, move to the exponent.
    e_r * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

/// Replaces each `x` in `values` by `gelu(x) - x gelu'(x)` and writes `gelu'(x)` to `slope`.
#[inline(always)]
fn gelu_offset_and_slope(values: &mut [f32], slope: &mut [f32]) {
    // 1 / sqrt(2 pi)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for (v, s) in values.iter_mut().zip(slope.iter_mut()) {
        let x = *v;
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        // exp(-x^2/2) underflows to 0 for |x| > ~13, where the derivative is 0 or 1 anyway.
        let pdf = INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
        let d = cdf + x * pdf;
        *s = d;
        *v = x * cdf - x * d;
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
    fn exp_is_within_3e7_relative() {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            // The exact exp of the f32 argument (rounding x itself would cost |x| 2^-24).
            let x = (-(i as f64) / 10_000.0) as f32 as f64;
            worst = worst.max((exp_nonpositive(x as f32) as f64 - x.exp()).abs() / x.exp());
        }
        assert!(worst < 3e-7, "{worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e4) < 2e-38);
    }

    /// GELU and its derivative in f64 from the series `erf`.
    fn gelu_and_slope_ref(x: f64) -> (f64, f64) {
        let cdf = 0.5 * (1.0 + erf_ref(x / std::f64::consts::SQRT_2));
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (x * cdf, cdf + x * pdf)
    }

    #[test]
    fn tracked_gelu_has_the_exact_value_and_derivative() {
        let device = Device::flex().autodiff();
        // Enough points for the parallel path, on [-4.2, 4.2] (where the series `erf` is exact),
        // and the tails, where GELU is 0 or x and its derivative 0 or 1.
        let mut points: Vec<f32> = (0..80_001)
            .map(|i| (i as f32 - 40_000.0) * 1.05e-4)
            .collect();
        points.extend([-30.0, -12.0, -8.0, 8.0, 12.0, 30.0]);
        let x = Tensor::<1>::from_floats(points.as_slice(), &device).require_grad();
        let y = gelu(x.clone());
        let weights = Tensor::<1>::from_floats(points.as_slice(), &device).detach();
        // d/dx sum(y * x0) = gelu'(x) x0: a non-constant upstream gradient.
        let grads = (y.clone() * weights).sum().backward();
        let grad = x.grad(&grads).expect("x is in the graph").into_data();
        let values = y.into_data();
        let (grad, values) = (
            grad.as_slice::<f32>().unwrap(),
            values.as_slice::<f32>().unwrap(),
        );
        let (mut worst_value, mut worst_grad) = (0.0f64, 0.0f64);
        for ((&p, &v), &g) in points.iter().zip(values).zip(grad) {
            let (want_v, want_s) = match p {
                p if p <= -8.0 => (0.0, 0.0),
                p if p >= 8.0 => (p as f64, 1.0),
                p => gelu_and_slope_ref(p as f64),
            };
            worst_value = worst_value.max((v as f64 - want_v).abs() / (p as f64).abs().max(1.0));
            let want_g = want_s * p as f64;
            worst_grad = worst_grad.max((g as f64 - want_g).abs() / (p as f64).abs().max(1.0));
        }
        assert!(worst_value < 2e-6, "value {worst_value}");
        assert!(worst_grad < 2e-6, "gradient {worst_grad}");
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
