//! Kernels computed on the host's `f32` slices: for tensors outside the autodiff graph
//! (inference, and the frozen work before the first trainable layer), and the forward and
//! backward passes of the fused ops in `crate::fused`.
//!
//! burn's CPU backend (flex) hands a contiguous tensor it owns alone to `into_data` and takes
//! it back from `from_data` without copying, so such a kernel costs one pass over memory.
//! Other dtypes and other backends take burn's own op.
//!
//! Plain multiply-adds, not `mul_add`: without a target feature that is a call to `fmaf`.
//! Sums and dot products use eight accumulators so that they vectorise.
//!
//! - [`gelu`]: exact GELU `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2` with a rational `erf`
//!   (Eigen's and XLA's `float` approximation on `[-4, 4]`, clamped outside; largest absolute
//!   error 4e-7 against the exact `erf`). flex computes `erf` one element at a time with `libm`,
//!   which took 8% of an inference; this loop vectorises. Tracked tensors go to the fused GELU,
//!   which also computes `gelu'(x) = Phi(x) + x phi(x)` for its backward.
//! - softmax backward and layer norm forward and backward, row by row (formulas in
//!   `crate::fused`).

use burn::prelude::*;
use burn::tensor::activation;

/// Elements below which one thread does the work.
const PARALLEL_MIN: usize = 1 << 16;

/// Exact GELU (see the module docs); the same as `burn::tensor::activation::gelu` to 4e-7.
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.is_tracked() {
        return crate::fused::gelu_tracked(x);
    }
    map_untracked(x, Gelu, activation::gelu)
}

/// Applies `kernel` to the data of `x` in place when `x` is an untracked `f32` tensor on the
/// CPU backend, else `fallback` to `x` (on a GPU the round trip through the host would cost
/// more than the op).
fn map_untracked<const D: usize>(
    x: Tensor<D>,
    kernel: impl for<'a> Kernel<&'a mut [f32], Output = ()>,
    fallback: fn(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    if x.is_tracked() || !super::flex_host::on_cpu_f32(&x) {
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

/// One part's work, run inside the function that `pulp` compiled for the widest vector
/// instructions this CPU has (AVX-512, AVX2 or the baseline, chosen at run time).
/// Implementations mark `run` `#[inline(always)]` and call `#[inline(always)]` functions: only
/// code inlined there gets the wide instructions. (A closure, or a function called through the
/// `Fn` traits, was not inlined: its loops were compiled for SSE2 and showed up as their own
/// symbol in `perf`.)
pub(crate) trait Kernel<T>: Copy + Send {
    /// What one part returns.
    type Output: Send;
    /// Does the work on `part`.
    fn run(self, part: T) -> Self::Output;
}

/// A kernel and its part, for `pulp`'s dispatch.
struct OnPart<K, T>(K, T);

impl<T, K: Kernel<T>> pulp::WithSimd for OnPart<K, T> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> K::Output {
        self.0.run(self.1)
    }
}

/// Runs `kernel` on `part` compiled for the widest vector instructions available.
fn simd<T, K: Kernel<T>>(kernel: K, part: T) -> K::Output {
    pulp::Arch::new().dispatch(OnPart(kernel, part))
}

/// A closure as a [`Kernel`], for work whose inner loops are someone else's (the `gemm` calls of
/// the attention products pick their own instructions).
#[derive(Clone, Copy)]
pub(crate) struct Plain<F>(pub F);

impl<T, R: Send, F: Fn(T) -> R + Copy + Send> Kernel<T> for Plain<F> {
    type Output = R;

    fn run(self, part: T) -> R {
        (self.0)(part)
    }
}

/// The chunk length that splits `len` elements over the threads of rayon's pool (the one
/// `gemm` and burn's CPU backend use, sized by `RAYON_NUM_THREADS`), or `None` when one thread
/// should do the work (few elements, or one thread).
fn chunk_len(len: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (threads >= 2 && len >= PARALLEL_MIN).then(|| len.div_ceil(threads))
}

/// Runs `kernel` on each part on rayon's pool and returns the results in order. (These ran on
/// scoped OS threads spawned per call, next to rayon's own: more runnable threads than cores,
/// and a thread count that `RAYON_NUM_THREADS` did not set.)
fn map_parts<T: Send, K: Kernel<T>>(parts: impl Iterator<Item = T>, kernel: K) -> Vec<K::Output> {
    let parts: Vec<T> = parts.collect();
    if parts.len() <= 1 {
        return parts.into_iter().map(|part| simd(kernel, part)).collect();
    }
    let mut results: Vec<Option<K::Output>> = parts.iter().map(|_| None).collect();
    let slots = &mut results;
    rayon::scope(move |s| {
        for (slot, part) in slots.iter_mut().zip(parts) {
            s.spawn(move |_| *slot = Some(simd(kernel, part)));
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every part ran in the scope"))
        .collect()
}

/// [`map_parts`] for work without a result.
pub(crate) fn run_parts<T: Send, K: Kernel<T, Output = ()>>(
    parts: impl Iterator<Item = T>,
    kernel: K,
) {
    map_parts(parts, kernel);
}

/// Rows per part when `rows` rows of `row_len` values are split over the cores.
pub(crate) fn rows_per_part(rows: usize, row_len: usize) -> usize {
    match chunk_len(rows * row_len) {
        None => rows.max(1),
        Some(chunk) => chunk.div_ceil(row_len.max(1)).max(1),
    }
}

/// Slices read alongside the values a kernel writes ([`zip_parts`]), split at the same indices.
pub(crate) trait Alongside: Copy + Send {
    /// The elements `range` of each slice.
    fn range(self, range: std::ops::Range<usize>) -> Self;
}

impl Alongside for &[f32] {
    fn range(self, range: std::ops::Range<usize>) -> Self {
        &self[range]
    }
}

impl<A: Alongside, B: Alongside> Alongside for (A, B) {
    fn range(self, range: std::ops::Range<usize>) -> Self {
        (self.0.range(range.clone()), self.1.range(range))
    }
}

/// Runs `kernel` on `values` and the same elements of `inputs` (slices of the same length),
/// split over the available cores when there are many.
pub(crate) fn zip_parts<'a, I, K>(values: &'a mut [f32], inputs: I, kernel: K)
where
    I: Alongside + 'a,
    K: Kernel<(&'a mut [f32], I), Output = ()>,
{
    match chunk_len(values.len()) {
        None => simd(kernel, (values, inputs)),
        Some(chunk) => run_parts(
            values.chunks_mut(chunk).enumerate().map(|(i, part)| {
                let start = i * chunk;
                let len = part.len();
                (part, inputs.range(start..start + len))
            }),
            kernel,
        ),
    }
}

/// Runs `kernel` on `values`, split over the available cores when there are many.
fn par_chunks<'a, K: Kernel<&'a mut [f32], Output = ()>>(values: &'a mut [f32], kernel: K) {
    match chunk_len(values.len()) {
        None => simd(kernel, values),
        Some(chunk) => run_parts(values.chunks_mut(chunk), kernel),
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

#[derive(Clone, Copy)]
struct Gelu;

impl Kernel<&mut [f32]> for Gelu {
    type Output = ();

    #[inline(always)]
    fn run(self, values: &mut [f32]) {
        gelu_slice(values);
    }
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
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
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

/// Replaces each `x` in `values` by `gelu(x)` and writes `gelu'(x) = Phi(x) + x phi(x)` to
/// `slope`.
#[inline(always)]
fn gelu_value_and_slope(values: &mut [f32], slope: &mut [f32]) {
    // 1 / sqrt(2 pi)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for (v, s) in values.iter_mut().zip(slope.iter_mut()) {
        let x = *v;
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        // exp(-x^2/2) underflows to 0 for |x| > ~13, where the derivative is 0 or 1 anyway.
        let pdf = INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
        *s = cdf + x * pdf;
        *v = x * cdf;
    }
}

/// Exact GELU of `values` in place, over the cores.
pub(crate) fn gelu_in_place(values: &mut [f32]) {
    par_chunks(values, Gelu);
}

/// Exact GELU of `values + bias` in place (`bias` added along rows of `bias.len()` values: a
/// linear layer's output before its bias), over the cores.
pub(crate) fn gelu_bias_in_place(values: &mut [f32], bias: &[f32]) {
    let d = bias.len().max(1);
    let rows = (rows_per_part(values.len() / d, d) * d).max(1);
    run_parts(values.chunks_mut(rows), GeluBias { bias });
}

#[derive(Clone, Copy)]
struct GeluBias<'b> {
    bias: &'b [f32],
}

impl Kernel<&mut [f32]> for GeluBias<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, values: &mut [f32]) {
        for row in values.chunks_exact_mut(self.bias.len()) {
            add_row(row, self.bias);
            gelu_slice(row);
        }
    }
}

/// [`gelu_bias_in_place`], and the derivative at `values + bias` into `slope`.
pub(crate) fn gelu_bias_and_slope_in_place(values: &mut [f32], slope: &mut [f32], bias: &[f32]) {
    let d = bias.len().max(1);
    let rows = (rows_per_part(values.len() / d, d) * d).max(1);
    run_parts(
        values.chunks_mut(rows).zip(slope.chunks_mut(rows)),
        GeluBiasAndSlope { bias },
    );
}

#[derive(Clone, Copy)]
struct GeluBiasAndSlope<'b> {
    bias: &'b [f32],
}

impl Kernel<(&mut [f32], &mut [f32])> for GeluBiasAndSlope<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, (values, slope): (&mut [f32], &mut [f32])) {
        let d = self.bias.len();
        for (row, slope) in values.chunks_exact_mut(d).zip(slope.chunks_exact_mut(d)) {
            add_row(row, self.bias);
            gelu_value_and_slope(row, slope);
        }
    }
}

/// `row += bias`.
#[inline(always)]
fn add_row(row: &mut [f32], bias: &[f32]) {
    for (v, b) in row.iter_mut().zip(bias) {
        *v += b;
    }
}

/// GELU of `values` in place, and its derivative into `slope` (of the same length).
pub(crate) fn gelu_and_slope_in_place(values: &mut [f32], slope: &mut [f32]) {
    match chunk_len(values.len()) {
        None => simd(GeluAndSlope, (values, slope)),
        Some(chunk) => run_parts(
            values.chunks_mut(chunk).zip(slope.chunks_mut(chunk)),
            GeluAndSlope,
        ),
    }
}

#[derive(Clone, Copy)]
struct GeluAndSlope;

impl Kernel<(&mut [f32], &mut [f32])> for GeluAndSlope {
    type Output = ();

    #[inline(always)]
    fn run(self, (values, slope): (&mut [f32], &mut [f32])) {
        gelu_value_and_slope(values, slope);
    }
}

/// `a *= b` element-wise, over the cores.
pub(crate) fn mul_in_place(a: &mut [f32], b: &[f32]) {
    let chunk = chunk_len(a.len()).unwrap_or(a.len().max(1));
    run_parts(a.chunks_mut(chunk).zip(b.chunks(chunk)), Mul);
}

#[derive(Clone, Copy)]
struct Mul;

impl Kernel<(&mut [f32], &[f32])> for Mul {
    type Output = ();

    #[inline(always)]
    fn run(self, (a, b): (&mut [f32], &[f32])) {
        for (x, y) in a.iter_mut().zip(b) {
            *x *= y;
        }
    }
}

/// Sum of `a` with eight independent accumulators (so that the loop vectorises).
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (s, v) in acc.iter_mut().zip(c) {
            *s += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Dot product of `a` and `b` (of equal length), vectorised like [`sum`].
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest value of `a` (negative infinity for an empty slice), vectorised like [`sum`].
#[inline(always)]
fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for (m, &v) in acc.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// Softmax over rows of `d` values, from `x` into `p` (of equal length): `exp(x - max)` with
/// the vectorised [`exp_nonpositive`], then one scaling pass (flex calls `libm`'s `expf` per
/// element: 5% of an inference).
pub(crate) fn softmax_rows(x: &[f32], p: &mut [f32], d: usize) {
    let part = rows_per_part(p.len() / d.max(1), d) * d;
    run_parts(x.chunks(part).zip(p.chunks_mut(part)), Softmax { d });
}

/// Softmax of rows of `d` values.
#[derive(Clone, Copy)]
struct Softmax {
    d: usize,
}

impl Kernel<(&[f32], &mut [f32])> for Softmax {
    type Output = ();

    #[inline(always)]
    fn run(self, (x, p): (&[f32], &mut [f32])) {
        let d = self.d;
        for (x, p) in x.chunks_exact(d).zip(p.chunks_exact_mut(d)) {
            let m = max(x);
            for (o, v) in p.iter_mut().zip(x) {
                *o = exp_nonpositive(v - m);
            }
            scale_to_unit_sum(p);
        }
    }
}

impl Kernel<&mut [f32]> for Softmax {
    type Output = ();

    #[inline(always)]
    fn run(self, p: &mut [f32]) {
        for row in p.chunks_exact_mut(self.d) {
            let m = max(row);
            for v in row.iter_mut() {
                *v = exp_nonpositive(*v - m);
            }
            scale_to_unit_sum(row);
        }
    }
}

/// Divides `row` by its sum.
#[inline(always)]
fn scale_to_unit_sum(row: &mut [f32]) {
    let inv = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Softmax backward over rows of `d` values: `g <- p (g - sum_j p g)`.
pub(crate) fn softmax_backward_rows(p: &[f32], g: &mut [f32], d: usize) {
    let part = rows_per_part(g.len() / d.max(1), d) * d;
    run_parts(
        p.chunks(part).zip(g.chunks_mut(part)),
        SoftmaxBackward { d },
    );
}

/// Softmax backward over rows of `d` values.
#[derive(Clone, Copy)]
struct SoftmaxBackward {
    d: usize,
}

impl Kernel<(&[f32], &mut [f32])> for SoftmaxBackward {
    type Output = ();

    #[inline(always)]
    fn run(self, (p, g): (&[f32], &mut [f32])) {
        for (p, g) in p.chunks_exact(self.d).zip(g.chunks_exact_mut(self.d)) {
            let pg = dot(p, g);
            for (gi, pi) in g.iter_mut().zip(p) {
                *gi = pi * (*gi - pg);
            }
        }
    }
}

/// [`softmax_rows`] in place on one thread (inside a caller's own parallel part).
pub(crate) fn softmax_rows_in_place(p: &mut [f32], d: usize) {
    simd(Softmax { d }, p);
}

/// [`softmax_backward_rows`] on one thread (inside a caller's own parallel part).
pub(crate) fn softmax_backward_in_place(p: &[f32], g: &mut [f32], d: usize) {
    simd(SoftmaxBackward { d }, (p, g));
}

/// What [`layer_norm_forward`] computes.
pub(crate) struct LayerNormForward {
    /// `xhat gamma + beta`.
    pub y: Vec<f32>,
    /// `(x - mean) rstd`.
    pub xhat: Vec<f32>,
    /// `1 / sqrt(var + eps)` per row.
    pub rstd: Vec<f32>,
}

/// Layer norm of rows of `x` (row length `gamma.len()`), biased variance, two passes per row.
pub(crate) fn layer_norm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> LayerNormForward {
    let d = gamma.len();
    let rows = x.len() / d;
    let mut y = vec![0.0f32; x.len()];
    let mut xhat = vec![0.0f32; x.len()];
    let mut rstd = vec![0.0f32; rows];
    let per = rows_per_part(rows, d);
    let parts = x
        .chunks(per * d)
        .zip(y.chunks_mut(per * d))
        .zip(xhat.chunks_mut(per * d))
        .zip(rstd.chunks_mut(per))
        .map(|(((x, y), xhat), rstd)| (x, y, xhat, rstd));
    run_parts(parts, LayerNormRows { gamma, beta, eps });
    LayerNormForward { y, xhat, rstd }
}

/// Layer norm forward of rows (`gamma.len()` values each).
#[derive(Clone, Copy)]
struct LayerNormRows<'g> {
    gamma: &'g [f32],
    beta: &'g [f32],
    eps: f64,
}

/// `x`, then `y`, `xhat` and `rstd` to write.
type LayerNormForwardPart<'a> = (&'a [f32], &'a mut [f32], &'a mut [f32], &'a mut [f32]);

impl<'a> Kernel<LayerNormForwardPart<'a>> for LayerNormRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, (x, y, xhat, rstd): LayerNormForwardPart<'a>) {
        let Self { gamma, beta, eps } = self;
        let d = gamma.len();
        let rows = x
            .chunks_exact(d)
            .zip(y.chunks_exact_mut(d))
            .zip(xhat.chunks_exact_mut(d))
            .zip(rstd.iter_mut());
        for (((x, y), xhat), rstd) in rows {
            let mean = sum(x) / d as f32;
            for (h, v) in xhat.iter_mut().zip(x) {
                *h = v - mean;
            }
            let var = dot(xhat, xhat) / d as f32;
            let r = (1.0 / (var as f64 + eps).sqrt()) as f32;
            for (((o, h), g), b) in y.iter_mut().zip(xhat.iter_mut()).zip(gamma).zip(beta) {
                *h *= r;
                *o = *h * g + b;
            }
            *rstd = r;
        }
    }
}

/// What [`layer_norm_backward`] computes.
pub(crate) struct LayerNormGrads {
    /// Gradient of the input.
    pub dx: Vec<f32>,
    /// Gradient of `gamma`: `sum_rows g xhat`.
    pub dgamma: Vec<f32>,
    /// Gradient of `beta`: `sum_rows g`.
    pub dbeta: Vec<f32>,
}

/// Layer norm backward from the forward's `xhat`, `rstd`, `gamma` and the output gradient `g`:
/// `dx = rstd (g' - mean(g') - xhat mean(xhat g'))` with `g' = gamma g`.
pub(crate) fn layer_norm_backward(
    xhat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    g: &[f32],
) -> LayerNormGrads {
    let d = gamma.len();
    let rows = g.len() / d;
    let mut dx = vec![0.0f32; g.len()];
    let per = rows_per_part(rows, d);
    let parts = xhat
        .chunks(per * d)
        .zip(g.chunks(per * d))
        .zip(dx.chunks_mut(per * d))
        .zip(rstd.chunks(per))
        .map(|(((xhat, g), dx), rstd)| (xhat, g, dx, rstd));
    let partial = map_parts(parts, LayerNormBackwardRows { gamma });
    let mut dgamma = vec![0.0f32; d];
    let mut dbeta = vec![0.0f32; d];
    for (pg, pb) in partial {
        for (a, b) in dgamma.iter_mut().zip(pg) {
            *a += b;
        }
        for (a, b) in dbeta.iter_mut().zip(pb) {
            *a += b;
        }
    }
    LayerNormGrads { dx, dgamma, dbeta }
}

/// Layer norm backward of rows; each part returns its `dgamma` and `dbeta`.
#[derive(Clone, Copy)]
struct LayerNormBackwardRows<'g> {
    gamma: &'g [f32],
}

/// `xhat`, `g`, then `dx` to write, and `rstd`.
type LayerNormBackwardPart<'a> = (&'a [f32], &'a [f32], &'a mut [f32], &'a [f32]);

impl<'a> Kernel<LayerNormBackwardPart<'a>> for LayerNormBackwardRows<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    #[inline(always)]
    fn run(self, (xhat, g, dx, rstd): LayerNormBackwardPart<'a>) -> (Vec<f32>, Vec<f32>) {
        let gamma = self.gamma;
        let d = gamma.len();
        let mut dgamma = vec![0.0f32; d];
        let mut dbeta = vec![0.0f32; d];
        let mut gp = vec![0.0f32; d];
        let rows = xhat
            .chunks_exact(d)
            .zip(g.chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
            .zip(rstd);
        for (((xhat, g), dx), &r) in rows {
            for (((p, gi), gm), db) in gp.iter_mut().zip(g).zip(gamma).zip(dbeta.iter_mut()) {
                *p = gi * gm;
                *db += gi;
            }
            for ((dg, gi), h) in dgamma.iter_mut().zip(g).zip(xhat) {
                *dg += gi * h;
            }
            let a = sum(&gp) / d as f32;
            let b = dot(xhat, &gp) / d as f32;
            for ((o, p), h) in dx.iter_mut().zip(&gp).zip(xhat) {
                *o = r * (p - a - h * b);
            }
        }
        (dgamma, dbeta)
    }
}

/// `sum_i a_i b_i` over the cores (parts' dot products added in order).
pub(crate) fn dot_parallel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let chunk = chunk_len(a.len()).unwrap_or(a.len().max(1));
    map_parts(a.chunks(chunk).zip(b.chunks(chunk)), Dot)
        .into_iter()
        .sum()
}

#[derive(Clone, Copy)]
struct Dot;

impl Kernel<(&[f32], &[f32])> for Dot {
    type Output = f32;

    #[inline(always)]
    fn run(self, (a, b): (&[f32], &[f32])) -> f32 {
        dot(a, b)
    }
}

/// `sum_rows g * a` of two row-major matrices with rows of `cols` values, over the cores.
pub(crate) fn column_dots(g: &[f32], a: &[f32], cols: usize) -> Vec<f32> {
    assert_eq!(g.len(), a.len());
    let rows = rows_per_part(g.len() / cols.max(1), cols) * cols;
    let parts = map_parts(
        g.chunks(rows.max(1)).zip(a.chunks(rows.max(1))),
        ColumnDots { cols },
    );
    let mut out = vec![0.0f32; cols];
    for part in parts {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

#[derive(Clone, Copy)]
struct ColumnDots {
    cols: usize,
}

impl Kernel<(&[f32], &[f32])> for ColumnDots {
    type Output = Vec<f32>;

    #[inline(always)]
    fn run(self, (g, a): (&[f32], &[f32])) -> Vec<f32> {
        let mut out = vec![0.0f32; self.cols];
        for (g, a) in g.chunks_exact(self.cols).zip(a.chunks_exact(self.cols)) {
            for ((o, &g), &a) in out.iter_mut().zip(g).zip(a) {
                *o += g * a;
            }
        }
        out
    }
}

/// Sums of the columns of the row-major matrix `g` with rows of `cols` values.
pub(crate) fn column_sums(g: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; cols];
    simd(ColumnSums { cols }, (g, &mut out[..]));
    out
}

#[derive(Clone, Copy)]
struct ColumnSums {
    cols: usize,
}

impl Kernel<(&[f32], &mut [f32])> for ColumnSums {
    type Output = ();

    #[inline(always)]
    fn run(self, (g, out): (&[f32], &mut [f32])) {
        for row in g.chunks_exact(self.cols) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
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
