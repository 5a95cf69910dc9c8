//! A bounds-checked, safe front for the `gemm` crate's strided matrix product (the kernel that
//! burn's CPU backend itself calls), for the fused linear layer in [`super::fused`].
//!
//! `gemm::gemm` takes raw pointers and strides. [`MatRef`] and [`MatMut`] hold a slice with its
//! shape and strides and check at construction that every element the strides reach lies inside
//! the slice, so [`matmul`] can hand their pointers over soundly. This is one of the few
//! places with `unsafe` in the workspace (the others: the bf16 kernel in
//! [`super::bf16_gemm`] and the `amflow` binary's allocator setting).

/// Products of at least this many multiply-adds run on rayon's pool (burn's flex backend uses
/// the same threshold).
const PARALLEL_MIN_MACS: usize = 192 * 192 * 192;

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
}

/// `dst = scale lhs rhs`, or `dst += scale lhs rhs` when `accumulate`.
///
/// # Panics
/// When the shapes do not chain.
pub(crate) fn matmul(
    dst: MatMut<'_>,
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
            for row in dst.data.chunks_mut(dst.row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // Strides as `isize`: every reachable offset is below the slice length, which fits.
    let stride = |s: usize| s as isize;
    #[allow(unsafe_code)]
    // SAFETY: `MatRef::new` and `MatMut::new` checked that every element
    // `(i, j)` with `i < rows`, `j < cols` at `i * row_stride + j * col_stride` lies inside its
    // slice, and the shapes were checked to chain above, so `gemm` reads and writes only inside
    // the three slices; `dst` is a unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            stride(dst.row_stride),
            accumulate,
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
    #[should_panic(expected = "exceeds")]
    fn views_past_the_slice_are_refused() {
        let a = [0.0f32; 10];
        MatRef::new(&a, 3, 4, 4, 1);
    }
}
