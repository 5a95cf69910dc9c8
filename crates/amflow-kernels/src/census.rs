//! The product census: one line per matrix product that [`crate::gemm`] computes, for finding
//! where a model step's products lose their rate (`bench/model/product_census.py` reads the
//! file; bench/model/README.md, "Product census").
//!
//! Built only with the cargo feature `product-census` and written only when
//! `AMFLOW_PRODUCT_CENSUS` names a file; without the feature [`Call`] is an empty type whose
//! methods compile to nothing. Each line is tab-separated:
//! `kind m n k lhs_rows_contiguous rhs_rows_contiguous thread start_ns duration_ns`, where
//! `kind` is `parallel` (one `gemm` call on rayon's threads), `serial` (one `gemm` call on the
//! calling thread, also each part of a product split along its inner dimension) or `small`
//! (the small-product loops), `*_rows_contiguous` is 1 when that operand's rows are contiguous
//! (column stride 1), `thread` is rayon's thread index (`-` outside the pool), and the times
//! are wall-clock nanoseconds since the first recorded call.
//!
//! A line is written after the call's own time is taken, but it still costs the step: the
//! 162,000 products of a ViT-S/14 train step (148,000 of them the temporal transformers' small
//! ones) made it 5-8 % slower on a Zen 5 (AVX2 path, 1.72 s off, 1.81-1.85 s on). With the
//! feature built in and the variable unset, the step took 1.72 s, as without the feature.

/// One product being timed: created before it starts, recorded when dropped.
#[must_use = "the call is recorded when this is dropped"]
pub(crate) struct Call {
    #[cfg(feature = "product-census")]
    inner: Option<imp::Started>,
}

/// What was computed, for the census line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// One `gemm` call on rayon's threads.
    Parallel,
    /// One `gemm` call on the calling thread.
    Serial,
    /// The small-product loops.
    Small,
}

impl Call {
    /// Starts timing a `m x k` by `k x n` product.
    #[inline(always)]
    #[cfg_attr(not(feature = "product-census"), allow(unused_variables))]
    pub(crate) fn start(kind: Kind, [m, n, k]: [usize; 3], contiguous_rows: [bool; 2]) -> Self {
        Self {
            #[cfg(feature = "product-census")]
            inner: imp::start(kind, [m, n, k], contiguous_rows),
        }
    }
}

/// Writes out the lines not yet in the file (a no-op without the feature or the variable).
/// The model benchmark calls it before it exits.
pub fn flush_product_census() {
    #[cfg(feature = "product-census")]
    imp::flush();
}

#[cfg(feature = "product-census")]
impl Drop for Call {
    fn drop(&mut self) {
        if let Some(started) = self.inner.take() {
            imp::record(started);
        }
    }
}

#[cfg(feature = "product-census")]
mod imp {
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    use super::Kind;

    /// The variable naming the census file.
    const VARIABLE: &str = "AMFLOW_PRODUCT_CENSUS";

    struct Census {
        epoch: Instant,
        out: Mutex<BufWriter<File>>,
    }

    /// The open census, or `None` when the variable is unset or the file cannot be created
    /// (said once on stderr).
    fn census() -> Option<&'static Census> {
        static CENSUS: OnceLock<Option<Census>> = OnceLock::new();
        CENSUS
            .get_or_init(|| {
                let path = std::env::var_os(VARIABLE)?;
                match File::create(&path) {
                    Ok(file) => Some(Census {
                        epoch: Instant::now(),
                        out: Mutex::new(BufWriter::with_capacity(1 << 20, file)),
                    }),
                    Err(e) => {
                        eprintln!("warning: {VARIABLE}={path:?}: {e}; no product census");
                        None
                    }
                }
            })
            .as_ref()
    }

    pub(super) struct Started {
        census: &'static Census,
        kind: Kind,
        shape: [usize; 3],
        contiguous_rows: [bool; 2],
        at: Instant,
    }

    pub(super) fn start(
        kind: Kind,
        shape: [usize; 3],
        contiguous_rows: [bool; 2],
    ) -> Option<Started> {
        let census = census()?;
        Some(Started {
            census,
            kind,
            shape,
            contiguous_rows,
            at: Instant::now(),
        })
    }

    pub(super) fn record(started: Started) {
        let duration = started.at.elapsed().as_nanos();
        let start = started.at.duration_since(started.census.epoch).as_nanos();
        let kind = match started.kind {
            Kind::Parallel => "parallel",
            Kind::Serial => "serial",
            Kind::Small => "small",
        };
        let [m, n, k] = started.shape;
        let [lhs, rhs] = started.contiguous_rows.map(u8::from);
        let thread = rayon::current_thread_index().map_or("-".to_string(), |t| t.to_string());
        let mut out = started.census.out.lock().unwrap_or_else(|e| e.into_inner());
        // A failed write loses census lines, never the product: the census is a measurement.
        let _ = writeln!(
            out,
            "{kind}\t{m}\t{n}\t{k}\t{lhs}\t{rhs}\t{thread}\t{start}\t{duration}"
        );
    }

    pub(super) fn flush() {
        if let Some(census) = census() {
            let mut out = census.out.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = out.flush() {
                eprintln!("warning: {VARIABLE}: {e}; the product census is incomplete");
            }
        }
    }
}
