//! The bf16 matrix product of the mixed-precision backbone's linear layers:
//! `C += bf16(A) B`, with `C` `[m, n]` f32 (row-major, starting as whatever the caller put
//! there: the bias rows, or zeros), `A` `[m, k]` f32 activations rounded to bf16 (round to
//! nearest even, as PyTorch's autocast rounds them) and `B` a `[k, n]` view of bf16 values (the
//! weight as stored: the forward passes `W^T`, the backward `W`). Products are exact (bf16 times
//! bf16 fits in f32) and accumulate in f32; the result stays f32 and is not rounded to bf16
//! (PyTorch's autocast and burn's bf16 product round it: this is more accurate, by up to half a
//! bf16 step of each output).
//!
//! Three kernels compute it ([`Kernel`], chosen once per process at run time, the first this
//! CPU has unless `AMFLOW_BF16_KERNEL` names a later one: `amx`, `avx512-bf16`, `portable`):
//!
//! - `Amx`, on x86-64 Linux with AMX-TILE and AMX-BF16 (Sapphire Rapids and later Xeons):
//!   `tdpbf16ps` on `16 x 16` tiles, in the submodule `amx` (its docs).
//! - `Native`, on x86-64 CPUs with AVX-512F and AVX-512 BF16 (Zen 4 and 5, Cooper Lake,
//!   Sapphire Rapids and later):
//!   `vdpbf16ps`, which multiplies 16 pairs of bf16 values and adds each lane's two products to
//!   an f32 accumulator, twice the multiply-adds per instruction of an f32 FMA (on AMD's Zen 4
//!   and 5; Intel's cores issue it on one port, where it is no faster than the f32 product).
//!   `B` is packed
//!   once per call (not cached: the packing was 1% of a bf16 inference's profile) into panels of `NR = 48` columns in which each k-pair of a column is one
//!   32-bit lane (odd `k`: the last pair's second half is zero, and so are the columns past `n`);
//!   each row block of `A` (one rayon task; products below 192³ multiply-adds run on the caller's
//!   thread) is rounded into bf16 pairs (`vcvtne2ps2bf16`), `KC` pairs at a time, and an `8 x 48` register tile
//!   (24 accumulators) runs over each k-block with the block of `B`'s panel in L1. Edge tiles
//!   (the last rows and columns) go through a zero-padded copy. The instructions flush
//!   denormal inputs to zero, which changes nothing at f32 precision (such terms are below
//!   1e-38).
//! - `Portable`, everywhere else: `B` widened to f32 and `A` rounded to bf16 values held in f32,
//!   then the f32 product of [`crate::gemm`]. The same numbers up to the order of the f32 sums,
//!   at the f32 path's speed but for two conversion passes over the operands (on rayon's pool;
//!   they were 3% of a bf16 inference's profile).
//!
//! The `Native` kernel's `unsafe` is confined here: the call into code compiled for the
//! AVX-512 BF16 target features (behind a run-time check) and the bit-for-bit reinterpretations
//! between `[f32; 16]` / `[u32; 16]` and the 512-bit vector types; the `Amx` kernel's (its
//! system call, CPUID and inline assembly) to `amx`.

use std::ops::Range;
use std::sync::OnceLock;

use burn::tensor::bf16;
use rayon::prelude::*;

use crate::gemm::{self, MatMut, MatRef};

/// Products of at least this many multiply-adds run on rayon's pool (as [`crate::gemm`]).
const PARALLEL_MIN_MACS: usize = 192 * 192 * 192;

/// The bits of `x` rounded to bf16, to nearest with ties to even (NaNs stay NaN, quietened).
#[inline(always)]
pub(crate) fn round_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        ((b >> 16) | 0x40) as u16
    } else {
        (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }
}

/// `x` rounded to the nearest bf16 value (ties to even), as an f32.
#[inline(always)]
pub(crate) fn round(x: f32) -> f32 {
    f32::from_bits(u32::from(round_bits(x)) << 16)
}

/// A read-only strided view of bf16 values.
pub(crate) type Bf16Ref<'a> = MatRef<'a, bf16>;

impl Bf16Ref<'_> {
    /// The bits of element `(i, j)`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    fn bits(&self, i: usize, j: usize) -> u16 {
        self.data[i * self.row_stride + j * self.col_stride].to_bits()
    }
}

/// The kernel that computes the product (module docs), fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kernel {
    /// `tdpbf16ps` on AMX tiles (x86-64 Linux with AMX-TILE and AMX-BF16).
    Amx,
    /// `vdpbf16ps` (x86-64 with AVX-512F and AVX-512 BF16).
    Native,
    /// bf16-rounded f32 operands through the f32 product.
    Portable,
}

/// The environment variable that caps the kernel choice (module docs).
pub(crate) const KERNEL_VARIABLE: &str = "AMFLOW_BF16_KERNEL";

impl Kernel {
    /// The fastest kernel this CPU runs, no faster than `AMFLOW_BF16_KERNEL` names (read once
    /// per process; an unknown name is reported on stderr once and ignored).
    pub(crate) fn detect() -> Self {
        static CHOSEN: OnceLock<Kernel> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let cap = match std::env::var(KERNEL_VARIABLE) {
                Ok(name) => Self::named(&name).unwrap_or_else(|| {
                    eprintln!(
                        "amflow: {KERNEL_VARIABLE}={name:?} is not amx, avx512-bf16 or portable; ignored"
                    );
                    Kernel::Amx
                }),
                Err(_) => Kernel::Amx,
            };
            Self::available()
                .into_iter()
                .find(|&kernel| kernel >= cap)
                .unwrap_or(Kernel::Portable)
        })
    }

    /// The kernel `AMFLOW_BF16_KERNEL` names.
    fn named(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "amx" => Some(Kernel::Amx),
            "avx512-bf16" | "avx512bf16" | "native" => Some(Kernel::Native),
            "portable" => Some(Kernel::Portable),
            _ => None,
        }
    }

    /// The kernels this CPU runs, fastest first (`Portable` always).
    pub(crate) fn available() -> Vec<Self> {
        let mut kernels = Vec::with_capacity(3);
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if amx::Amx::detect().is_some() {
            kernels.push(Kernel::Amx);
        }
        #[cfg(target_arch = "x86_64")]
        if native::Avx512Bf16::detect().is_some() {
            kernels.push(Kernel::Native);
        }
        kernels.push(Kernel::Portable);
        kernels
    }
}

/// `c += bf16(a) b` (module docs) for `c` `[m, n]` and `a` `[m, k]` row-major, `b` `[k, n]`,
/// with the best kernel this CPU has.
///
/// # Panics
/// When the lengths of `a` and `c` are not `m k` and `m n`.
pub(crate) fn matmul(c: &mut [f32], a: &[f32], b: Bf16Ref<'_>, m: usize) {
    matmul_with(Kernel::detect(), c, a, b, m);
}

/// [`matmul`] with a given kernel.
///
/// # Panics
/// As [`matmul`], and for `Kernel::Native` on a CPU without it.
pub(crate) fn matmul_with(kernel: Kernel, c: &mut [f32], a: &[f32], b: Bf16Ref<'_>, m: usize) {
    let (k, n) = (b.rows, b.cols);
    assert!(
        a.len() == m * k && c.len() == m * n,
        "bf16 matmul of {m}x{k} by {k}x{n}: operands of {} and {} values",
        a.len(),
        c.len()
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let parallel = m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_MACS;
    match kernel {
        Kernel::Portable => portable(c, a, b, m, parallel),
        #[cfg(target_arch = "x86_64")]
        Kernel::Native => {
            let cpu = native::Avx512Bf16::detect().expect("a CPU with AVX-512 BF16");
            native::matmul(cpu, c, a, b, m, parallel);
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Native => panic!("the native bf16 kernel needs x86-64 with AVX-512 BF16"),
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Kernel::Amx => {
            let cpu = amx::Amx::detect().expect("a CPU with AMX-BF16, granted the tile data");
            amx::matmul(cpu, c, a, b, m, parallel);
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        Kernel::Amx => panic!("the AMX bf16 kernel needs x86-64 Linux with AMX-BF16"),
    }
}

/// The blocking both native kernels share: `B` packed into `panels` panels of `pairs` k-pairs
/// each, then row blocks of a multiple of `tile_rows` rows (one rayon task each).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
struct Blocking {
    panels: usize,
    pairs: usize,
    tile_rows: usize,
}

/// Rows of a row block (one rayon task) at most, about.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MC_MAX: usize = 256;

/// `pack(jp, panel)` for each panel of packed `B` (rows of type `P`), then
/// `row_block(c, a, packed)` for each block of rows of `c` `[m, n]` and `a` `[m, k]`: on
/// rayon's pool when `parallel` and the pool has more than one thread, in a multiple of its
/// threads tasks of near-equal size, else on the caller's thread.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pack_and_run_row_blocks<P: Clone + Default + Send + Sync>(
    blocking: Blocking,
    c: &mut [f32],
    a: &[f32],
    m: usize,
    parallel: bool,
    pack: impl Fn(usize, &mut [P]) + Sync,
    row_block: impl Fn(&mut [f32], &[f32], &[P]) + Sync,
) {
    let (k, n) = (a.len() / m, c.len() / m);
    let threads = rayon::current_num_threads();
    let parallel = parallel && threads > 1;
    let mut packed = vec![P::default(); blocking.panels * blocking.pairs];
    let pack = |(jp, panel): (usize, &mut [P])| pack(jp, panel);
    if parallel {
        packed
            .par_chunks_mut(blocking.pairs)
            .enumerate()
            .for_each(pack);
    } else {
        packed.chunks_mut(blocking.pairs).enumerate().for_each(pack);
    }
    let packed = &packed[..];
    let work = |(c, a): (&mut [f32], &[f32])| row_block(c, a, packed);
    if parallel {
        let tasks = m.div_ceil(MC_MAX).next_multiple_of(threads);
        let mc = m.div_ceil(tasks).next_multiple_of(blocking.tile_rows);
        c.par_chunks_mut(mc * n)
            .zip(a.par_chunks(mc * k))
            .for_each(work);
    } else {
        work((c, a));
    }
}

/// Packs the `columns` of `b` as k-pairs: `set(p, j, word)` for each pair `p` of column `j`,
/// the word holding `b[2p][j]` in its low half and `b[2p + 1][j]` in its high half (zero past
/// the last row for odd `k`). Both native kernels pack `B` this way, into their own panels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pack_columns(b: Bf16Ref<'_>, columns: Range<usize>, mut set: impl FnMut(usize, usize, u32)) {
    let k = b.rows;
    if b.row_stride == 1 {
        // Each column's k values are contiguous (the forward's `W^T`, a row of `W`): a
        // pair is one 32-bit word of it.
        for j in columns {
            let column = &b.data[j * b.col_stride..][..k];
            for (p, pair) in column.chunks(2).enumerate() {
                let hi = pair.get(1).map_or(0, |x| u32::from(x.to_bits()));
                set(p, j, u32::from(pair[0].to_bits()) | (hi << 16));
            }
        }
        return;
    }
    // Any other layout (the backward's `W`: rows of `n` contiguous values), pair by pair.
    for p in 0..k.div_ceil(2) {
        for j in columns.clone() {
            let lo = u32::from(b.bits(2 * p, j));
            let hi = if 2 * p + 1 < k {
                u32::from(b.bits(2 * p + 1, j))
            } else {
                0
            };
            set(p, j, lo | (hi << 16));
        }
    }
}

/// The `Portable` kernel: bf16 operands widened to f32, the f32 product.
fn portable(c: &mut [f32], a: &[f32], b: Bf16Ref<'_>, m: usize, parallel: bool) {
    let (k, n) = (b.rows, b.cols);
    let wide = convert(b.data, parallel, |v| v.to_f32());
    let rounded = convert(a, parallel, |&x| round(x));
    gemm::matmul(
        MatMut::row_major(c, m, n),
        true,
        MatRef::row_major(&rounded, m, k),
        MatRef::new(&wide, k, n, b.row_stride, b.col_stride),
        1.0,
    );
}

/// `f` of each value of `src`, on rayon's pool when `parallel`.
fn convert<T: Sync>(src: &[T], parallel: bool, f: impl Fn(&T) -> f32 + Sync + Send) -> Vec<f32> {
    if parallel {
        src.par_iter().with_min_len(1 << 14).map(f).collect()
    } else {
        src.iter().map(f).collect()
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx;

/// The `Native` kernel (module docs).
#[cfg(target_arch = "x86_64")]
mod native {
    use std::arch::x86_64::{
        _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_set1_epi32, _mm512_setzero_ps,
    };

    use super::{pack_and_run_row_blocks, round_bits, Bf16Ref, Blocking};

    /// Rows of the register tile.
    const MR: usize = 8;
    /// 16-lane vectors across the register tile: `NR = 16 NV` columns.
    const NV: usize = 3;
    /// Columns of the register tile and of a panel of packed `B`.
    const NR: usize = 16 * NV;
    /// k-pairs per block: a block of one panel of `B` (`KC NR` lanes, 36 KiB) stays in the
    /// 48 KiB L1 while the register tiles of a row block run over it.
    const KC: usize = 192;

    /// 16 lanes of two bf16 values each (the low half holds the even k), aligned as a vector.
    #[derive(Debug, Clone, Copy, Default)]
    #[repr(C, align(64))]
    struct Lanes([u32; 16]);

    /// One k-pair of a panel of packed `B`: `NR` columns.
    type PanelRow = [Lanes; NV];

    /// Proof that this CPU has AVX-512F and AVX-512 BF16: constructed only by
    /// [`Avx512Bf16::detect`].
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Avx512Bf16(());

    impl Avx512Bf16 {
        /// `Some` where this CPU has both extensions.
        pub(super) fn detect() -> Option<Self> {
            (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"))
                .then_some(Self(()))
        }

        /// [`pack_pairs`] (for the tests).
        #[cfg(test)]
        pub(super) fn pack_pairs(self, dst: &mut [u32], src: &[f32]) {
            #[allow(unsafe_code)]
            // SAFETY: as in `row_block`.
            unsafe {
                pack_pairs(dst, src)
            }
        }

        /// [`row_block`], compiled for AVX-512 BF16.
        fn row_block(self, c: &mut [f32], a: &[f32], packed: &[PanelRow], k: usize, n: usize) {
            #[allow(unsafe_code)]
            // SAFETY: `row_block` needs only the target features `avx512f` and `avx512bf16`,
            // and `self` exists only where the CPU has them (`detect`).
            unsafe {
                row_block(c, a, packed, k, n)
            }
        }
    }

    /// `c += bf16(a) b` for `c` `[m, n]`, `a` `[m, k]`, with `m n k > 0`.
    pub(super) fn matmul(
        cpu: Avx512Bf16,
        c: &mut [f32],
        a: &[f32],
        b: Bf16Ref<'_>,
        m: usize,
        parallel: bool,
    ) {
        let (k, n) = (b.rows, b.cols);
        let blocking = Blocking {
            panels: n.div_ceil(NR),
            pairs: k.div_ceil(2),
            tile_rows: MR,
        };
        pack_and_run_row_blocks(
            blocking,
            c,
            a,
            m,
            parallel,
            |jp, panel| pack_panel(b, jp, panel),
            |c, a, packed| cpu.row_block(c, a, packed, k, n),
        );
    }

    /// Packs the columns `jp NR ..` of `b` (zeros past its last column and, for odd `k`, in the
    /// last pair's high half) into `panel`, one [`PanelRow`] per k-pair.
    fn pack_panel(b: Bf16Ref<'_>, jp: usize, panel: &mut [PanelRow]) {
        let columns = jp * NR..b.cols.min((jp + 1) * NR);
        super::pack_columns(b, columns, |p, j, word| {
            panel[p][(j % NR) / 16].0[j % 16] = word;
        });
    }

    /// `c += bf16(a) b` for one block of rows (`c` `[rows, n]`, `a` `[rows, k]`) against all
    /// of packed `b`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn row_block(c: &mut [f32], a: &[f32], packed: &[PanelRow], k: usize, n: usize) {
        let rows = c.len() / n;
        let kp = k.div_ceil(2);
        // The rows' bf16 pairs of one k-block; rows past the last stay zero.
        let mut apack = vec![[0u32; KC]; rows.div_ceil(MR) * MR];
        let mut edge = vec![0.0f32; MR * NR];
        for kb in (0..kp).step_by(KC) {
            let kc = KC.min(kp - kb);
            for (dst, src) in apack.iter_mut().zip(a.chunks_exact(k)) {
                pack_pairs(&mut dst[..kc], &src[2 * kb..k.min(2 * (kb + kc))]);
            }
            for jp in 0..n.div_ceil(NR) {
                let panel = &packed[jp * kp + kb..][..kc];
                let (j0, cols) = (jp * NR, NR.min(n - jp * NR));
                for (t, tile_a) in apack.chunks_exact(MR).enumerate() {
                    let tile_a: &[[u32; KC]; MR] = tile_a.try_into().expect("MR rows");
                    let (i0, tile_rows) = (t * MR, MR.min(rows - t * MR));
                    if tile_rows == MR && cols == NR {
                        tile(kc, tile_a, panel, c, n, i0 * n + j0);
                        continue;
                    }
                    edge.fill(0.0);
                    for i in 0..tile_rows {
                        edge[i * NR..][..cols].copy_from_slice(&c[(i0 + i) * n + j0..][..cols]);
                    }
                    tile(kc, tile_a, panel, &mut edge, NR, 0);
                    for i in 0..tile_rows {
                        c[(i0 + i) * n + j0..][..cols].copy_from_slice(&edge[i * NR..][..cols]);
                    }
                }
            }
        }
    }

    /// `dst[p]` = the bf16 pair of `src[2p]` (low half) and `src[2p + 1]` (high half; zero
    /// past the end of an odd-length `src`), rounded to nearest even: 32 values at a time by
    /// `vcvtne2ps2bf16` (which flushes denormals to zero, as the products do), the rest one by
    /// one.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn pack_pairs(dst: &mut [u32], src: &[f32]) {
        let mut vectors = src.chunks_exact(32);
        let mut words = dst.chunks_exact_mut(16);
        for (s, d) in (&mut vectors).zip(&mut words) {
            let lo = bits::load(&s[..16]);
            let hi = bits::load(&s[16..]);
            // The result's lanes 0..16 are `lo` rounded, 16..32 `hi`: in order, so each
            // 32-bit word is a pair.
            d.copy_from_slice(&bits::words(_mm512_cvtne2ps_pbh(hi, lo)));
        }
        let (src, dst) = (vectors.remainder(), &mut dst[src.len() / 32 * 16..]);
        let pairs = src.chunks_exact(2);
        let last = pairs.remainder().first().copied();
        for (d, s) in dst.iter_mut().zip(pairs) {
            *d = u32::from(round_bits(s[0])) | (u32::from(round_bits(s[1])) << 16);
        }
        if let (Some(x), Some(d)) = (last, dst.last_mut()) {
            *d = u32::from(round_bits(x));
        }
    }

    /// The register tile: `c[off + i ldc + j] += sum_p a[i][p] . b[p][j]` for `i < MR`,
    /// `j < NR`, `p < kc` (each term the two products of a k-pair).
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn tile(kc: usize, a: &[[u32; KC]; MR], b: &[PanelRow], c: &mut [f32], ldc: usize, off: usize) {
        assert!(kc <= KC && b.len() >= kc);
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = bits::load(&c[off + i * ldc + 16 * v..][..16]);
            }
        }
        for (p, bp) in b[..kc].iter().enumerate() {
            let bv = bp.map(|lanes| bits::pairs(lanes.0));
            for (acc_i, a_i) in acc.iter_mut().zip(a) {
                let ai = bits::broadcast(_mm512_set1_epi32(a_i[p] as i32));
                for (x, bv) in acc_i.iter_mut().zip(&bv) {
                    *x = _mm512_dpbf16_ps(*x, ai, *bv);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                bits::store(*x, &mut c[off + i * ldc + 16 * v..][..16]);
            }
        }
    }

    /// Bit-for-bit reinterpretations between arrays and the 512-bit vector types: all are 64
    /// bytes of plain data, in which every bit pattern is a valid value of each type
    /// (`transmute` checks the sizes at compile time).
    #[allow(unsafe_code)]
    mod bits {
        use std::arch::x86_64::{__m512, __m512bh, __m512i};
        use std::mem::transmute;

        /// 16 f32 values as a vector.
        ///
        /// # Panics
        /// When `v` does not hold 16 values.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) fn load(v: &[f32]) -> __m512 {
            let v: [f32; 16] = v.try_into().expect("16 values");
            // SAFETY: 64 bytes of f32 values as 64 bytes of f32 lanes (see the module docs).
            unsafe { transmute::<[f32; 16], __m512>(v) }
        }

        /// Writes the 16 lanes of `x` to `v`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) fn store(x: __m512, v: &mut [f32]) {
            // SAFETY: as in `load`, the other way round.
            let x = unsafe { transmute::<__m512, [f32; 16]>(x) };
            v.copy_from_slice(&x);
        }

        /// 16 lanes of bf16 pairs as a bf16 vector (element `2l` the low half of lane `l`).
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) fn pairs(v: [u32; 16]) -> __m512bh {
            // SAFETY: 64 bytes of bf16 pairs as 32 bf16 lanes (see the module docs).
            unsafe { transmute::<[u32; 16], __m512bh>(v) }
        }

        /// 32 bf16 lanes as 16 words of pairs (lane `2l` the low half of word `l`).
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) fn words(x: __m512bh) -> [u32; 16] {
            // SAFETY: 32 bf16 lanes as 64 bytes of bf16 pairs (see the module docs).
            unsafe { transmute::<__m512bh, [u32; 16]>(x) }
        }

        /// An integer vector as a bf16 vector of the same bits.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) fn broadcast(x: __m512i) -> __m512bh {
            // SAFETY: 64 bytes of integer lanes as 32 bf16 lanes (see the module docs).
            unsafe { transmute::<__m512i, __m512bh>(x) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random value in about `[-2, 2)` (no rng crate here).
    fn value(i: usize, seed: u64) -> f32 {
        let mut z = (i as u64)
            .wrapping_add(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^= z >> 31;
        z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 29;
        (z >> 40) as f32 / (1u64 << 22) as f32 - 2.0
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len).map(|i| value(i, seed)).collect()
    }

    /// `bias + sum_p bf16(a[i][p]) w[j][p]` in f64, for `w` `[n, k]`.
    fn naive(a: &[f32], w: &[bf16], bias: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| round(a[i * k + p]) as f64 * w[j * k + p].to_f64())
                    .sum();
                out[i * n + j] = (bias[j] as f64 + dot) as f32;
            }
        }
        out
    }

    /// Largest `|got - want|` relative to the largest `|want|` (floored at 1).
    fn relative_error(got: &[f32], want: &[f32]) -> f32 {
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    /// The kernels that run on this CPU.
    fn kernels() -> Vec<Kernel> {
        let kernels = Kernel::available();
        for (kernel, missing) in [(Kernel::Amx, "AMX-BF16"), (Kernel::Native, "AVX-512 BF16")] {
            if !kernels.contains(&kernel) {
                eprintln!("no {missing} on this CPU (or OS): the {kernel:?} kernel is not tested");
            }
        }
        kernels
    }

    /// `x W^T + bias` by `kernel` against [`naive`].
    fn check(kernel: Kernel, m: usize, n: usize, k: usize) {
        let a = values(m * k, 1);
        let w: Vec<bf16> = values(n * k, 2).into_iter().map(bf16::from_f32).collect();
        let bias = values(n, 3);
        let want = naive(&a, &w, &bias, m, n, k);
        let mut got = bias.repeat(m);
        matmul_with(kernel, &mut got, &a, Bf16Ref::row_major(&w, n, k).t(), m);
        let e = relative_error(&got, &want);
        assert!(e < 1e-5, "{kernel:?} {m}x{k} by {k}x{n}: {e}");
    }

    #[test]
    fn rounding_is_to_nearest_even_as_half_rounds() {
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::from_bits(0x3f80_8000), // a tie, rounds down to even
            f32::from_bits(0x3f81_8000), // a tie, rounds up to even
            f32::from_bits(0x3f80_8001),
        ];
        let samples = (0..100_000).map(|i| value(i, 9) * 1e3);
        for x in specials.into_iter().chain(samples) {
            assert_eq!(round_bits(x), bf16::from_f32(x).to_bits(), "{x:e}");
        }
        assert!(round(f32::NAN).is_nan());
    }

    #[test]
    fn products_match_a_naive_sum_with_edges() {
        let sizes = [1, 7, 16, 17, 33];
        for kernel in kernels() {
            for m in sizes {
                for n in sizes {
                    for k in sizes {
                        check(kernel, m, n, k);
                    }
                }
            }
        }
    }

    #[test]
    fn large_products_match_with_blocks_edges_and_threads() {
        // Several k-blocks (k = 385 and 1025: odd), several panels with an edge, row blocks on
        // rayon's pool (at least 192^3 multiply-adds), and edges in every direction.
        for kernel in kernels() {
            for (m, n, k) in [(257, 385, 385), (33, 257, 1025), (1030, 100, 257)] {
                check(kernel, m, n, k);
            }
        }
    }

    #[test]
    fn the_transposed_view_serves_the_backward() {
        // dx = bf16(g) W for W [n, k] as stored: b is W itself, a [k_out, ...] view.
        let (rows, d_out, d_in) = (37, 50, 61);
        let g = values(rows * d_out, 4);
        let w: Vec<bf16> = values(d_out * d_in, 5)
            .into_iter()
            .map(bf16::from_f32)
            .collect();
        // naive wants `[n, k]` = W^T: transpose W by hand.
        let wt: Vec<bf16> = (0..d_in * d_out)
            .map(|i| w[(i % d_out) * d_in + i / d_out])
            .collect();
        let want = naive(&g, &wt, &vec![0.0; d_in], rows, d_in, d_out);
        for kernel in kernels() {
            let mut got = vec![0.0f32; rows * d_in];
            matmul_with(
                kernel,
                &mut got,
                &g,
                Bf16Ref::row_major(&w, d_out, d_in),
                rows,
            );
            let e = relative_error(&got, &want);
            assert!(e < 1e-5, "{kernel:?}: {e}");
        }
    }

    #[test]
    fn the_variable_names_each_kernel_and_caps_the_choice() {
        assert_eq!(Kernel::named("amx"), Some(Kernel::Amx));
        assert_eq!(Kernel::named(" AVX512-BF16\n"), Some(Kernel::Native));
        assert_eq!(Kernel::named("portable"), Some(Kernel::Portable));
        assert_eq!(Kernel::named("mkl"), None);
        let available = Kernel::available();
        assert_eq!(available.last(), Some(&Kernel::Portable));
        assert!(available.windows(2).all(|w| w[0] < w[1]), "{available:?}");
        assert!(available.contains(&Kernel::detect()));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_rounding_matches_the_scalar_rounding() {
        let Some(cpu) = native::Avx512Bf16::detect() else {
            eprintln!("no AVX-512 BF16 on this CPU: its rounding is not tested");
            return;
        };
        // Normal values (the instruction flushes denormals), ties both ways, every length's
        // tail (odd lengths, fewer than 32 left).
        let mut src: Vec<f32> = (0..200).map(|i| value(i, 11) * 1e3).collect();
        src[5] = f32::from_bits(0x3f80_8000);
        src[40] = f32::from_bits(0x3f81_8000);
        src[41] = f32::INFINITY;
        for len in [1, 31, 32, 33, 64, 65, 199, 200] {
            let src = &src[..len];
            let mut got = vec![0u32; len.div_ceil(2)];
            cpu.pack_pairs(&mut got, src);
            let want: Vec<u32> = src
                .chunks(2)
                .map(|p| {
                    u32::from(round_bits(p[0]))
                        | p.get(1).map_or(0, |&x| u32::from(round_bits(x)) << 16)
                })
                .collect();
            assert_eq!(got, want, "length {len}");
        }
    }

    #[test]
    fn empty_products_leave_the_output() {
        for kernel in kernels() {
            let mut c = vec![3.0f32; 6];
            matmul_with(kernel, &mut c, &[], Bf16Ref::row_major(&[], 0, 2), 3);
            assert_eq!(c, [3.0; 6]);
        }
    }
}
