//! A bounds-checked, safe front for the `gemm` crate's strided matrix product (the kernel that
//! burn's CPU backend itself calls), for the fused linear layer in [`super::fused`].
//!
//! `gemm::gemm` takes raw pointers and strides. [`MatRef`] and [`MatMut`] hold a slice with its
//! shape and strides and check at construction that every element the strides reach lies inside
//! the slice, so [`matmul`] can hand their pointers over soundly; [`product`] and
//! [`bias_rows`] write a new output buffer without zero-filling it first. This is one of the
//! few places with `unsafe` in the workspace (the others: the bf16 kernel in
//! [`super::bf16_gemm`] and the `amflow` binary's allocator setting).

use crate::census::{Call, Kind};

/// Products of at least this many multiply-adds run on rayon's pool (burn's flex backend uses
/// the same threshold).
const PARALLEL_MIN_MACS: usize = 192 * 192 * 192;

/// Products of at most this many multiply-adds, with rows or columns of the operands
/// contiguous, run in [`SmallProduct`]'s loops instead of `gemm`, whose set-up per call is
/// comparable to the work of the temporal transformers' attention products (`8 x 24 x 8`,
/// 150 thousand calls per train step). Measured on the op (`[257, 8, 96]`, 4 heads, forward and
/// backward): 1.33 ms against 1.45-1.53 ms through `gemm` (`docs/performance.md`).
const SMALL_MAX_MACS: usize = 16 * 1024;

/// Outputs of at least this many values start as bias rows written on rayon's threads
/// ([`bias_rows`]): below it the serial copy is as fast (measured on a Zen 3, 2 threads:
/// `2056 x 96` values 0.026 ms serial against 0.029 ms in parallel, `2056 x 384` 0.16 against
/// 0.11 ms).
const PARALLEL_FILL_MIN: usize = 256 * 1024;

/// `rows` copies of `bias` one after another: a linear layer's output before its product
/// accumulates onto it. Large outputs are written in parallel, straight into the new buffer
/// (no zero-fill first: a zeroed buffer filled in parallel was slower than the serial
/// `bias.repeat(rows)`). Measured on a Zen 3 with 2 threads, the fill and product of the
/// `2056 x 384 -> 1536` layer: 15.5 ms against 16.8 ms with the serial copy
/// (`docs/performance.md`).
pub(crate) fn bias_rows(bias: &[f32], rows: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let n = bias.len() * rows;
    if n < PARALLEL_FILL_MIN {
        return bias.repeat(rows);
    }
    let mut out: Vec<f32> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(bias.len() * 64)
        .for_each(|chunk| {
            for row in chunk.chunks_mut(bias.len()) {
                row.write_copy_of_slice(bias);
            }
        });
    #[allow(unsafe_code)]
    // SAFETY: the capacity is at least `n`, and the loop above wrote every one of the first `n`
    // elements: the chunks cover `[..n]`, every chunk is a whole number of `bias.len()`-long rows
    // (`n` and the chunk length are multiples of it, `bias.len() > 0` since `n > 0`), and each
    // row is written in full.
    unsafe {
        out.set_len(n);
    }
    out
}

/// A read-only strided matrix view of `f32` values (or `bf16`: `bf16_gemm::Bf16Ref`).
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T = f32> {
    pub(crate) data: &'a [T],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

/// Whether a `rows x cols` matrix with these strides fits in `len` elements.
fn fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    rows == 0
        || cols == 0
        || (rows - 1)
            .checked_mul(row_stride)
            .zip((cols - 1).checked_mul(col_stride))
            .and_then(|(a, b)| a.checked_add(b))
            .is_some_and(|last| last < len)
}

impl<'a, T> MatRef<'a, T> {
    /// A view of `data`; element `(i, j)` is `data[i * row_stride + j * col_stride]`.
    ///
    /// # Panics
    /// When an element lies outside `data`.
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(
            fits(data.len(), rows, cols, row_stride, col_stride),
            "matrix {rows}x{cols} (strides {row_stride}, {col_stride}) exceeds {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A row-major `rows x cols` view.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (a view: strides swapped).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// The columns `range` of this view (a view).
    ///
    /// # Panics
    /// When the range reaches past the last column.
    pub(crate) fn col_range(self, range: std::ops::Range<usize>) -> Self {
        assert!(range.start <= range.end && range.end <= self.cols);
        let offset = if range.is_empty() || self.rows == 0 {
            0
        } else {
            range.start * self.col_stride
        };
        Self {
            data: &self.data[offset..],
            cols: range.len(),
            ..self
        }
    }

    /// The rows `range` of this view (a view).
    ///
    /// # Panics
    /// When the range reaches past the last row.
    pub(crate) fn row_range(self, range: std::ops::Range<usize>) -> Self {
        self.t().col_range(range).t()
    }
}

/// A writable matrix with contiguous rows `row_stride` apart.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A `rows x cols` matrix over `data`; element `(i, j)` is `data[i * row_stride + j]`.
    ///
    /// # Panics
    /// When an element lies outside `data`, or rows overlap (`row_stride < cols`).
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            (rows <= 1 || row_stride >= cols) && fits(data.len(), rows, cols, row_stride, 1),
            "matrix {rows}x{cols} (row stride {row_stride}) exceeds {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }

    /// A row-major `rows x cols` matrix over `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }

    /// The rows, each `cols` long.
    fn rows_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        // One row may have any stride (`new`); a step of at least `cols` keeps it whole.
        let (cols, step) = (self.cols, self.row_stride.max(self.cols).max(1));
        self.data
            .chunks_mut(step)
            .take(self.rows)
            .map(move |row| &mut row[..cols])
    }
}

/// `dst = scale lhs rhs`, or `dst += scale lhs rhs` when `accumulate`.
///
/// The [`Plan`]: small products ([`SMALL_MAX_MACS`]) run in [`SmallProduct`]'s loops.
/// Products big enough for the pool run on rayon's threads. `gemm` splits the rows and columns
/// of `dst` among them, which starves the threads when `dst` is small and the inner dimension is
/// long (the weight gradients `x^T g` of the adapters and TPMs: 384 x 96 over 2056 tokens); such
/// products split the inner dimension instead ([`split_k_parts`]), each thread summing its share
/// into a private buffer, and the buffers are added at the end.
///
/// # Panics
/// When the shapes do not chain.
pub(crate) fn matmul(
    mut dst: MatMut<'_>,
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
) {
    assert!(
        lhs.cols == rhs.rows && dst.rows == lhs.rows && dst.cols == rhs.cols,
        "matmul of {}x{} by {}x{} into {}x{}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols,
        dst.rows,
        dst.cols
    );
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.rows_mut().for_each(|row| row.fill(0.0));
        }
        return;
    }
    match Plan::of(lhs, rhs) {
        Plan::Small => {
            let _census = Call::start(Kind::Small, [m, n, k], contiguous_rows(lhs, rhs));
            pulp::Arch::new().dispatch(SmallProduct {
                dst: &mut dst,
                accumulate,
                lhs,
                rhs,
                scale,
            })
        }
        Plan::Gemm { parallel } => gemm_call(&mut dst, accumulate, lhs, rhs, scale, parallel),
        Plan::SplitInner(parts) => {
            let first = part_range(0, parts, k);
            let ((), later) = rayon::join(
                || {
                    let (lhs, rhs) = (lhs.col_range(first.clone()), rhs.row_range(first));
                    gemm_call(&mut dst, accumulate, lhs, rhs, scale, false);
                },
                || later_parts(lhs, rhs, scale, parts),
            );
            add_parts(&mut dst, &later);
        }
    }
}

/// How [`matmul`] and [`product`] compute a product whose dimensions are all nonzero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// [`SmallProduct`]'s loops: at most [`SMALL_MAX_MACS`] multiply-adds, with rows of `rhs`,
    /// or rows of `lhs` and columns of `rhs`, contiguous.
    Small,
    /// One `gemm` call, on rayon's threads when `parallel` (at least [`PARALLEL_MIN_MACS`]).
    Gemm { parallel: bool },
    /// The inner dimension split into this many parts ([`split_k_parts`]): the first summed
    /// into the destination, each of the others into a buffer of its own on another thread,
    /// the buffers added at the end.
    SplitInner(usize),
}

impl Plan {
    fn of(lhs: MatRef<'_>, rhs: MatRef<'_>) -> Self {
        let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
        let macs = m.saturating_mul(n).saturating_mul(k);
        if macs <= SMALL_MAX_MACS
            && (rhs.col_stride == 1 || (lhs.col_stride == 1 && rhs.row_stride == 1))
        {
            return Plan::Small;
        }
        if macs < PARALLEL_MIN_MACS {
            return Plan::Gemm { parallel: false };
        }
        match split_k_parts(m, n, k, rayon::current_num_threads()) {
            parts if parts >= 2 => Plan::SplitInner(parts),
            _ => Plan::Gemm { parallel: true },
        }
    }
}

/// The inner indices of part `part` of `parts` of an inner dimension `k`.
fn part_range(part: usize, parts: usize, k: usize) -> std::ops::Range<usize> {
    part * k / parts..(part + 1) * k / parts
}

/// Parts `1..parts` of a product split along its inner dimension, each `scale lhs_p rhs_p`
/// in a new row-major buffer, on rayon's threads.
fn later_parts(lhs: MatRef<'_>, rhs: MatRef<'_>, scale: f32, parts: usize) -> Vec<Vec<f32>> {
    use rayon::prelude::*;
    (1..parts)
        .into_par_iter()
        .map(|part| {
            let range = part_range(part, parts, lhs.cols);
            fresh_product(
                lhs.col_range(range.clone()),
                rhs.row_range(range),
                scale,
                false,
            )
        })
        .collect()
}

/// Adds each row-major part (`dst.rows x dst.cols`) to `dst`.
fn add_parts(dst: &mut MatMut<'_>, parts: &[Vec<f32>]) {
    let n = dst.cols;
    for part in parts {
        for (row, part_row) in dst.rows_mut().zip(part.chunks(n)) {
            for (out, add) in row.iter_mut().zip(part_row) {
                *out += add;
            }
        }
    }
}

/// Into how many parts [`matmul`] splits the inner dimension of an `m x n x k` product on
/// `threads` threads (below 2: not at all). Splitting pays when `k` is at least as long as
/// `dst`'s longer side: measured on the 2-thread Xeon (GFLOP/s, gemm's own row/column split
/// against a split of `k` in two), 384x96x2056 210 against 310, 96x96x2056 142 against 341,
/// 192x768x2056 272 against 357, but 2056x384x384 428 against 341 (`docs/performance.md`).
fn split_k_parts(m: usize, n: usize, k: usize, threads: usize) -> usize {
    threads.min(k / m.max(n).max(1))
}

/// A product too small for `gemm`'s set-up ([`SMALL_MAX_MACS`]), as plain loops compiled by
/// `pulp` for the widest vector instructions of the CPU (AVX-512, AVX2 or the baseline, chosen
/// at run time): rows of `dst` updated by rows of `rhs` (`dst[i, :] += a_ip rhs[p, :]`) when
/// `rhs`'s rows are contiguous, else dot products of `lhs`'s rows with `rhs`'s columns when
/// both are contiguous. [`matmul`] sends only those layouts here.
struct SmallProduct<'d, 'a> {
    dst: &'d mut MatMut<'a>,
    accumulate: bool,
    lhs: MatRef<'d>,
    rhs: MatRef<'d>,
    scale: f32,
}

impl pulp::WithSimd for SmallProduct<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            dst,
            accumulate,
            lhs,
            rhs,
            scale,
        } = self;
        let (n, k) = (dst.cols, lhs.cols);
        let rows = dst.rows_mut();
        if rhs.col_stride == 1 {
            for (i, row) in rows.enumerate() {
                if !accumulate {
                    row.fill(0.0);
                }
                for p in 0..k {
                    let a = scale * lhs.data[i * lhs.row_stride + p * lhs.col_stride];
                    let start = p * rhs.row_stride;
                    for (out, b) in row.iter_mut().zip(&rhs.data[start..start + n]) {
                        *out += a * b;
                    }
                }
            }
        } else {
            debug_assert!(lhs.col_stride == 1 && rhs.row_stride == 1);
            for (i, row) in rows.enumerate() {
                let a = &lhs.data[i * lhs.row_stride..i * lhs.row_stride + k];
                for (j, out) in row.iter_mut().enumerate() {
                    let b = &rhs.data[j * rhs.col_stride..j * rhs.col_stride + k];
                    let product = scale * crate::host_kernels::dot(a, b);
                    *out = if accumulate { *out + product } else { product };
                }
            }
        }
    }
}

/// `scale lhs rhs` as a new row-major `lhs.rows x rhs.cols` buffer, computed as [`matmul`]
/// would ([`Plan`]). Products that go to `gemm` write straight into the new buffer, which is
/// not zero-filled first (a zero-fill of a linear layer's input gradient, `2056 x 384` values,
/// was one thread's `memset` while the other waited: -1.0 % per AVX2-path train step on a Zen 5,
/// `docs/performance.md`, "One change: gradients written into unfilled buffers"); small ones go
/// through [`matmul`] into a zeroed buffer.
///
/// # Panics
/// When the shapes do not chain.
pub(crate) fn product(lhs: MatRef<'_>, rhs: MatRef<'_>, scale: f32) -> Vec<f32> {
    assert!(
        lhs.cols == rhs.rows,
        "product of {}x{} by {}x{}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0f32; m * n];
    }
    match Plan::of(lhs, rhs) {
        Plan::Small => {
            let mut out = vec![0.0f32; m * n];
            matmul(MatMut::row_major(&mut out, m, n), false, lhs, rhs, scale);
            out
        }
        Plan::Gemm { parallel } => fresh_product(lhs, rhs, scale, parallel),
        Plan::SplitInner(parts) => {
            let first = part_range(0, parts, k);
            let (mut out, later) = rayon::join(
                || {
                    fresh_product(
                        lhs.col_range(first.clone()),
                        rhs.row_range(first),
                        scale,
                        false,
                    )
                },
                || later_parts(lhs, rhs, scale, parts),
            );
            add_parts(&mut MatMut::row_major(&mut out, m, n), &later);
            out
        }
    }
}

/// One call of `gemm` writing `scale lhs rhs` into a new row-major buffer that is not
/// initialised first. `gemm` (pinned to 0.19.0 for this) never reads the destination when
/// `read_dst` is false: its kernels then store without loading, the `k = 0` path stores
/// zeros, and the vector paths store zeros before they accumulate. `gemm_never_reads_the_
/// destination_it_overwrites` checks every path with a destination full of NaN.
fn fresh_product(lhs: MatRef<'_>, rhs: MatRef<'_>, scale: f32, parallel: bool) -> Vec<f32> {
    debug_assert!(lhs.cols == rhs.rows);
    let (m, n) = (lhs.rows, rhs.cols);
    let len = m * n;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    #[allow(unsafe_code)]
    // SAFETY: the spare capacity holds at least `m * n` values, row-major `m x n` with row
    // stride `n` stays inside it, and it aliases neither input (a new allocation); with
    // `read_dst` false `gemm` only writes it (above). It then wrote every one of the `m * n`
    // values, so they are initialised for `set_len`.
    unsafe {
        gemm_into(
            out.spare_capacity_mut().as_mut_ptr().cast(),
            n,
            false,
            lhs,
            rhs,
            scale,
            parallel,
        );
        out.set_len(len);
    }
    out
}

/// One call of `gemm::gemm` on views that [`matmul`] checked to chain.
fn gemm_call(
    dst: &mut MatMut<'_>,
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
    parallel: bool,
) {
    debug_assert!(lhs.cols == rhs.rows && dst.rows == lhs.rows && dst.cols == rhs.cols);
    #[allow(unsafe_code)]
    // SAFETY: `MatMut::new` checked that every element `(i, j)`, `i < rows`, `j < cols`, at
    // `i * row_stride + j` lies inside its slice, which is initialised and a unique borrow, so it
    // aliases neither input.
    unsafe {
        gemm_into(
            dst.data.as_mut_ptr(),
            dst.row_stride,
            accumulate,
            lhs,
            rhs,
            scale,
            parallel,
        );
    }
}

/// `dst = scale lhs rhs`, or `dst += scale lhs rhs` when `read_dst`, through `gemm::gemm`, for
/// views whose shapes chain; `dst` is `lhs.rows x rhs.cols` with rows `dst_row_stride` apart.
///
/// # Safety
/// Every `dst.add(i * dst_row_stride + j)`, `i < lhs.rows`, `j < rhs.cols`, must be valid for
/// writes, and for reads of an initialised value when `read_dst`; none may alias `lhs` or `rhs`.
#[allow(unsafe_code)]
unsafe fn gemm_into(
    dst: *mut f32,
    dst_row_stride: usize,
    read_dst: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
    parallel: bool,
) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    let kind = if parallel {
        Kind::Parallel
    } else {
        Kind::Serial
    };
    let _census = Call::start(kind, [m, n, k], contiguous_rows(lhs, rhs));
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // Strides as `isize`: every reachable offset is below the slice length, which fits.
    let stride = |s: usize| s as isize;
    // SAFETY: `MatRef::new` (and the sub-views of `col_range` / `row_range`, which keep to the
    // parent's elements) checked that every element of `lhs` and `rhs` lies inside its slice;
    // the destination is the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            stride(dst_row_stride),
            read_dst,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Whether the rows of `lhs` and of `rhs` are contiguous, for the product census.
fn contiguous_rows(lhs: MatRef<'_>, rhs: MatRef<'_>) -> [bool; 2] {
    [lhs.col_stride == 1, rhs.col_stride == 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &MatRef<'_>, b: &MatRef<'_>) -> Vec<f32> {
        let mut out = vec![0.0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|p| {
                        a.data[i * a.row_stride + p * a.col_stride]
                            * b.data[p * b.row_stride + j * b.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    /// `lhs` `m x k` over `a` and `rhs` `k x n` over `b`, each read as stored or, when its flag
    /// is set, through a transposed view of the other layout.
    fn operands<'a>(
        a: &'a [f32],
        b: &'a [f32],
        (m, n, k): (usize, usize, usize),
        lhs_t: bool,
        rhs_t: bool,
    ) -> (MatRef<'a>, MatRef<'a>) {
        let lhs = if lhs_t {
            MatRef::row_major(a, k, m).t()
        } else {
            MatRef::row_major(a, m, k)
        };
        let rhs = if rhs_t {
            MatRef::row_major(b, n, k).t()
        } else {
            MatRef::row_major(b, k, n)
        };
        (lhs, rhs)
    }

    #[test]
    fn strided_products_match_loops() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..35).map(|i| (i as f32 * 0.11).cos()).collect();
        // 5x7 by (7x5)^T... as views: a is 5x7 row-major, b^T is 7x5 read from a 5x7 buffer.
        let lhs = MatRef::row_major(&a, 5, 7);
        let rhs = MatRef::row_major(&b, 5, 7).t();
        let want = naive(&lhs, &rhs);
        let mut out = vec![1.0f32; 25];
        matmul(MatMut::row_major(&mut out, 5, 5), false, lhs, rhs, 1.0);
        for (x, y) in out.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // Accumulating adds to what is there.
        let mut acc = vec![2.0f32; 25];
        matmul(MatMut::row_major(&mut acc, 5, 5), true, lhs, rhs, 1.0);
        for (x, y) in acc.iter().zip(&want) {
            assert!((x - (y + 2.0)).abs() < 1e-5);
        }
        // Into every other column pair of a wider buffer (row stride 8), scaled.
        let mut wide = [7.0f32; 5 * 8];
        matmul(MatMut::new(&mut wide[2..], 5, 5, 8), false, lhs, rhs, 0.5);
        for i in 0..5 {
            assert_eq!(&wide[i * 8..i * 8 + 2], &[7.0, 7.0]);
            for j in 0..5 {
                assert!((wide[i * 8 + 2 + j] - 0.5 * want[i * 5 + j]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn bias_rows_repeat_the_bias_serially_and_in_parallel() {
        // Below and above the parallel threshold, with a row length that does not divide the
        // chunk size evenly into the threshold.
        for (width, rows) in [(3, 5), (1536, 2056), (97, 4099), (1, PARALLEL_FILL_MIN + 1)] {
            let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.5 - 3.0).collect();
            assert_eq!(
                bias_rows(&bias, rows),
                bias.repeat(rows),
                "{width} x {rows}"
            );
        }
        assert!(bias_rows(&[], 7).is_empty());
        assert!(bias_rows(&[1.0, 2.0], 0).is_empty());
    }

    #[test]
    fn small_products_match_loops_in_every_layout() {
        // The temporal transformer's attention shapes (8 x 24 x 8, 8 x 8 x 24) and odd ones;
        // each operand read as stored or through a transpose, so that every small path (rows of
        // `rhs` contiguous, dot products) and the `gemm` fallback run.
        for (m, n, k) in [(8, 8, 24), (8, 24, 8), (3, 17, 5), (1, 9, 33), (16, 16, 64)] {
            assert!(m * n * k <= SMALL_MAX_MACS);
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            for (lhs_t, rhs_t) in [(false, false), (false, true), (true, false), (true, true)] {
                let (lhs, rhs) = operands(&a, &b, (m, n, k), lhs_t, rhs_t);
                let want = naive(&lhs, &rhs);
                let stride = n + 2;
                let mut out = vec![3.0f32; m * stride];
                matmul(MatMut::new(&mut out, m, n, stride), false, lhs, rhs, -0.5);
                let mut acc = vec![3.0f32; m * stride];
                matmul(MatMut::new(&mut acc, m, n, stride), true, lhs, rhs, 2.0);
                for i in 0..m {
                    for j in 0..n {
                        let (w, at) = (want[i * n + j], i * stride + j);
                        assert!(
                            (out[at] + 0.5 * w).abs() < 1e-4,
                            "{m}x{n}x{k} {lhs_t} {rhs_t}"
                        );
                        assert!((acc[at] - 3.0 - 2.0 * w).abs() < 1e-4, "{m}x{n}x{k}");
                    }
                    assert_eq!(&out[i * stride + n..(i + 1) * stride], &[3.0, 3.0]);
                }
            }
        }
        // One output row may have any stride.
        let (a, b) = ([1.0f32, 2.0], [3.0f32, 4.0, 5.0, 6.0]);
        let mut out = [0.0f32; 2];
        let (lhs, rhs) = (MatRef::row_major(&a, 1, 2), MatRef::row_major(&b, 2, 2));
        matmul(MatMut::new(&mut out, 1, 2, 0), false, lhs, rhs, 1.0);
        assert_eq!(out, [13.0, 16.0]);
    }

    #[test]
    fn long_inner_dimensions_split_across_threads_and_match_loops() {
        // Weight-gradient shaped: lhs = x^T read through a transposed view, k long.
        let (m, n, k) = (40, 48, 3700);
        let x: Vec<f32> = (0..k * m)
            .map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5)
            .collect();
        let g: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 991) as f32 / 991.0 - 0.5)
            .collect();
        let lhs = MatRef::row_major(&x, k, m).t();
        let rhs = MatRef::row_major(&g, k, n);
        assert!(m * n * k >= PARALLEL_MIN_MACS);
        let want = naive(&lhs, &rhs);
        for threads in [1, 2, 3] {
            assert_eq!(split_k_parts(m, n, k, threads), threads);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Scaled, accumulating, into a buffer with a row stride wider than `n`.
            let mut wide = vec![1.0f32; m * (n + 3)];
            pool.install(|| matmul(MatMut::new(&mut wide, m, n, n + 3), true, lhs, rhs, 0.5));
            for i in 0..m {
                for j in 0..n {
                    let got = wide[i * (n + 3) + j];
                    let expected = 1.0 + 0.5 * want[i * n + j];
                    assert!(
                        (got - expected).abs() < 1e-3,
                        "{threads} threads ({i}, {j})"
                    );
                }
                assert_eq!(&wide[i * (n + 3) + n..(i + 1) * (n + 3)], &[1.0; 3]);
            }
        }
    }

    /// Deterministic values in `[-0.5, 0.5)`.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 997) as f32 / 997.0 - 0.5)
            .collect()
    }

    #[test]
    #[allow(unsafe_code)]
    fn gemm_never_reads_the_destination_it_overwrites() {
        // `fresh_product` hands `gemm` uninitialised memory with `read_dst = false`. Here the
        // destination is full of NaN instead: one read of it (even times zero) would leave a NaN
        // in the result. The shapes reach gemm's paths: one row or one column (its vector
        // paths), a dot product, a tiny output with a long inner dimension, `k = 0`, odd serial
        // shapes, the linear layers' shapes and large parallel ones; each with both operands as
        // stored and transposed.
        let shapes = [
            (1, 1, 300),
            (1, 77, 130),
            (65, 1, 130),
            (4, 5, 2000),
            (16, 16, 16),
            (7, 9, 0),
            (37, 29, 41),
            (257, 8, 96),
            (96, 96, 1028),
            (300, 200, 150),
        ];
        for (m, n, k) in shapes {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            for (lhs_t, rhs_t) in [(false, false), (false, true), (true, false), (true, true)] {
                let (lhs, rhs) = operands(&a, &b, (m, n, k), lhs_t, rhs_t);
                let want = naive(&lhs, &rhs);
                for parallel in [false, true] {
                    let mut dst = vec![f32::NAN; m * n];
                    // SAFETY: `dst` holds the `m x n` row-major values and aliases neither input.
                    unsafe { gemm_into(dst.as_mut_ptr(), n, false, lhs, rhs, -2.0, parallel) };
                    for (at, (got, w)) in dst.iter().zip(&want).enumerate() {
                        assert!(
                            (got + 2.0 * w).abs() < 1e-3,
                            "{m}x{n}x{k} {lhs_t} {rhs_t} parallel {parallel}: [{at}] {got}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn new_products_match_loops_on_every_branch() {
        // Small (through `matmul`), serial `gemm`, parallel `gemm`, the inner split, and empty
        // shapes; on one, two and three threads.
        let shapes = [
            (8, 8, 24),
            (0, 5, 3),
            (5, 4, 0),
            (37, 29, 41),
            (2056, 96, 96),
            (96, 384, 2056),
            (40, 48, 3700),
        ];
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (m, n, k) in shapes {
                let (a, b) = (values(k * m, 3), values(k * n, 4));
                // The weight-gradient layout: `x^T g`, lhs read through a transpose.
                let lhs = MatRef::row_major(&a, k, m).t();
                let rhs = MatRef::row_major(&b, k, n);
                let want = naive(&lhs, &rhs);
                let got = pool.install(|| product(lhs, rhs, 0.5));
                assert_eq!(got.len(), m * n);
                for (at, (got, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (got - 0.5 * w).abs() < 1e-3,
                        "{m}x{n}x{k} on {threads} threads: [{at}]"
                    );
                }
            }
        }
    }

    #[test]
    fn short_inner_dimensions_keep_gemms_own_split() {
        assert_eq!(split_k_parts(2056, 384, 384, 2), 0);
        assert_eq!(split_k_parts(2056, 96, 96, 2), 0);
        assert_eq!(split_k_parts(384, 96, 2056, 2), 2);
        assert_eq!(split_k_parts(192, 768, 2056, 8), 2);
    }

    #[test]
    fn sub_views_keep_to_their_range() {
        let a: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let m = MatRef::row_major(&a, 3, 4);
        let c = m.col_range(1..3);
        assert_eq!((c.rows, c.cols, c.data[0]), (3, 2, 1.0));
        let r = m.row_range(2..3);
        assert_eq!((r.rows, r.cols, r.data[0]), (1, 4, 8.0));
        assert_eq!(m.col_range(4..4).cols, 0);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn views_past_the_slice_are_refused() {
        let a = [0.0f32; 10];
        MatRef::new(&a, 3, 4, 4, 1);
    }
}
