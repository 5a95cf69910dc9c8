//! The `Amx` kernel of the bf16 product (`super`'s docs): Intel's Advanced Matrix Extensions
//! (AMX-TILE, AMX-BF16; Sapphire Rapids and later Xeons), through `tdpbf16ps`, which multiplies
//! a `16 x 32` bf16 tile of `A` by a `32 x 16` tile of `B` (k-pairs interleaved, as the `Native`
//! kernel packs them) and adds the products to a `16 x 16` f32 tile: 16 times the multiply-adds
//! of one `vdpbf16ps`. On these CPUs `vdpbf16ps` issues on one port only, so the `Native`
//! kernel runs no faster than the f32 FMA product; AMX is their bf16 path (it is what oneDNN,
//! and so PyTorch's bf16 autocast, uses on them).
//!
//! The register tile is `2 x 2` tiles: `32 x 32` of `C` in `tmm0..3`, two tiles of `A` and two
//! of `B` per step of 16 k-pairs (`tmm4..7`). `B` is packed once per call into panels of
//! `NR = 32` columns, one 128-byte row per k-pair (the two 64-byte halves are the two tiles'
//! rows), zero-padded to a multiple of 16 pairs; each row block of `A` (one rayon task) is
//! rounded to bf16 `KC` pairs at a time (with AVX-512 BF16's `vcvtne2ps2bf16`, round to nearest
//! even, as the `Native` kernel rounds), its rows and the last step's pairs padded with zeros.
//! Edge tiles go through a zero-padded `32 x 32` copy. AMX flushes denormal inputs to zero, as
//! `vdpbf16ps` does.
//!
//! Linux grants a process the tile data state only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`): [`Amx::detect`] asks once, and uses
//! the kernel only where the CPU has the extensions and the kernel granted it. Each row block
//! loads the tile configuration (`ldtilecfg`) on its thread and releases it (`tilerelease`)
//! when done; the tiles' data lives only inside one `asm!` block, the register tile's, so no
//! compiled code ever sees it (the compiler itself never uses AMX).
//!
//! This is the crate's only inline assembly: Rust's AMX intrinsics are not stable.

use std::arch::asm;
use std::marker::PhantomData;
use std::sync::OnceLock;

use super::native::{self, Avx512Bf16};
use super::{pack_and_run_row_blocks, Bf16Ref, Blocking};

/// Rows of the register tile (two tiles of 16).
const MR: usize = 32;
/// Columns of the register tile and of a panel of packed `B` (two tiles of 16).
const NR: usize = 32;
/// k-pairs per `tdpbf16ps` (a tile row of 64 bytes).
const STEP: usize = 16;
/// k-pairs per block, a multiple of [`STEP`]: a block of one panel (`KC` rows of 128 bytes,
/// 24 KiB) and of 32 rows of `A` (24 KiB) stay in L1 and L2 while a row block's register tiles
/// run over them.
const KC: usize = 192;

/// One k-pair of a panel of packed `B`: [`NR`] columns, aligned to a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct PanelRow([u32; NR]);

/// Proof that this CPU has AMX-TILE, AMX-BF16, AVX-512F and AVX-512 BF16, and that the OS
/// granted this process the tile data state: constructed only by [`Amx::detect`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Amx(Avx512Bf16);

impl Amx {
    /// `Some` where this CPU and OS run the kernel (asked once per process).
    pub(super) fn detect() -> Option<Self> {
        static GRANTED: OnceLock<bool> = OnceLock::new();
        let avx512 = Avx512Bf16::detect()?;
        GRANTED
            .get_or_init(|| cpu_has_amx_bf16() && request_tile_data())
            .then_some(Self(avx512))
    }

    /// [`row_block`], compiled for AVX-512 BF16 (its bf16 rounding) with the tiles configured.
    fn row_block(self, c: &mut [f32], a: &[f32], packed: &[PanelRow], k: usize, n: usize) {
        #[allow(unsafe_code)]
        // SAFETY: `row_block` needs the target features `avx512f` and `avx512bf16` and, for
        // its `asm!`, AMX-TILE and AMX-BF16 with the tile data state granted; `self` exists
        // only where all hold (`detect`).
        unsafe {
            row_block(self, c, a, packed, k, n)
        }
    }
}

/// CPUID leaf 7: EDX bit 22 (AMX-BF16) and bit 24 (AMX-TILE).
fn cpu_has_amx_bf16() -> bool {
    #[allow(unsafe_code, unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 sub-leaf 0 is defined where the maximum
    // leaf (leaf 0's EAX) is at least 7, checked first.
    let edx = unsafe {
        use std::arch::x86_64::__cpuid_count;
        if __cpuid_count(0, 0).eax < 7 {
            return false;
        }
        __cpuid_count(7, 0).edx
    };
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

/// Asks Linux for the AMX tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA)`, process-wide): whether it was granted.
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    #[allow(unsafe_code)]
    // SAFETY: a plain system call with two integer arguments; it changes only which XSAVE
    // states this process may use.
    let result = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    result == 0
}

/// The tile configuration (palette 1): `tmm0..7` all 16 rows of 64 bytes.
#[derive(Debug)]
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const TILES: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// The tiles configured on this thread while it lives ([`TILES`]); released on drop, also
/// when a panic unwinds. Not `Send`: the configuration belongs to the thread that loaded it.
struct ConfiguredTiles(PhantomData<*const ()>);

impl ConfiguredTiles {
    fn load(_: Amx) -> Self {
        #[allow(unsafe_code)]
        // SAFETY: `Amx` proves AMX-TILE with the tile data state granted; `TILES` is a valid
        // 64-byte configuration (palette 1, every used tile within its 16 rows x 64 bytes).
        unsafe {
            asm!("ldtilecfg [{cfg}]", cfg = in(reg) &TILES, options(nostack, readonly));
        }
        Self(PhantomData)
    }
}

impl Drop for ConfiguredTiles {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: AMX-TILE exists (this value was made by `load`); releasing returns the
        // tiles to their initial state, which nothing after this reads.
        unsafe {
            asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// `c += bf16(a) b` for `c` `[m, n]`, `a` `[m, k]`, with `m n k > 0`.
pub(super) fn matmul(cpu: Amx, c: &mut [f32], a: &[f32], b: Bf16Ref<'_>, m: usize, parallel: bool) {
    let (k, n) = (b.rows, b.cols);
    let blocking = Blocking {
        panels: n.div_ceil(NR),
        pairs: k.div_ceil(2).next_multiple_of(STEP),
        tile_rows: MR,
    };
    let pack = |jp: usize, panel: &mut [PanelRow]| {
        super::pack_columns(b, jp * NR..n.min((jp + 1) * NR), |p, j, word| {
            panel[p].0[j % NR] = word;
        });
    };
    pack_and_run_row_blocks(blocking, c, a, m, parallel, pack, |c, a, packed| {
        cpu.row_block(c, a, packed, k, n)
    });
}

/// `c += bf16(a) b` for one block of rows (`c` `[rows, n]`, `a` `[rows, k]`) against all of
/// packed `b` (panels of `packed.len() / panels` k-pairs).
#[target_feature(enable = "avx512f,avx512bf16")]
fn row_block(cpu: Amx, c: &mut [f32], a: &[f32], packed: &[PanelRow], k: usize, n: usize) {
    let rows = c.len() / n;
    let kp = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let pairs = packed.len() / panels;
    // The rows' bf16 pairs of one k-block; rows past the last, and pairs past the block's
    // last up to its last step, are zero.
    let mut apack = vec![[0u32; KC]; rows.next_multiple_of(MR)];
    let mut edge = vec![0.0f32; MR * NR];
    let tiles = ConfiguredTiles::load(cpu);
    for kb in (0..kp).step_by(KC) {
        let kc = KC.min(kp - kb);
        let padded = kc.next_multiple_of(STEP);
        for (dst, src) in apack.iter_mut().zip(a.chunks_exact(k)) {
            native::pack_pairs(&mut dst[..kc], &src[2 * kb..k.min(2 * (kb + kc))]);
            dst[kc..padded].fill(0);
        }
        for jp in 0..panels {
            let panel = &packed[jp * pairs + kb..][..padded];
            let (j0, cols) = (jp * NR, NR.min(n - jp * NR));
            for (t, tile_a) in apack.chunks_exact(MR).enumerate() {
                let (i0, tile_rows) = (t * MR, MR.min(rows - t * MR));
                if tile_rows == MR && cols == NR {
                    register_tile(&tiles, tile_a, panel, &mut c[i0 * n + j0..], n);
                    continue;
                }
                edge.fill(0.0);
                for i in 0..tile_rows {
                    edge[i * NR..][..cols].copy_from_slice(&c[(i0 + i) * n + j0..][..cols]);
                }
                register_tile(&tiles, tile_a, panel, &mut edge, NR);
                for i in 0..tile_rows {
                    c[(i0 + i) * n + j0..][..cols].copy_from_slice(&edge[i * NR..][..cols]);
                }
            }
        }
    }
}

/// The register tile: `c[i ldc + j] += sum_p a[i][p] . b[p][j]` for `i < MR`, `j < NR` and
/// the `b.len()` k-pairs `p` (a multiple of [`STEP`], each term the two products of a pair),
/// on the thread whose tiles `ConfiguredTiles` configured.
///
/// # Panics
/// When `a` has not `MR` rows of at least `b.len()` pairs, `b.len()` is not a multiple of
/// `STEP`, or `c` does not hold `MR` rows of `NR` values `ldc` apart.
fn register_tile(_: &ConfiguredTiles, a: &[[u32; KC]], b: &[PanelRow], c: &mut [f32], ldc: usize) {
    let steps = b.len() / STEP;
    assert!(a.len() == MR && b.len().is_multiple_of(STEP) && b.len() <= KC && steps > 0);
    assert!(ldc >= NR && c.len() >= (MR - 1) * ldc + NR);
    let row_bytes = std::mem::size_of::<[u32; KC]>();
    let c_bytes = ldc * std::mem::size_of::<f32>();
    #[allow(unsafe_code)]
    // SAFETY: a `ConfiguredTiles` exists only where `Amx` does (AMX-TILE and AMX-BF16 with the
    // tile data state) and, not being `Send`, on the thread where it loaded `TILES`.
    // Every access is in bounds, by the asserts: the C tiles are rows `0..16` and `16..32` of
    // `c`, 64 bytes each at byte offsets 0 and 64 of a row, `c_bytes` apart; the A tiles are
    // rows `0..16` and `16..32` of `a`, 64 bytes of pairs `16 s .. 16 s + 16` in step `s`
    // (`16 steps <= KC` pairs per row); the B tiles are the 16 rows (128 bytes apart) of step
    // `s`, bytes `0..64` and `64..128` of each, within `b`'s `16 steps` rows. The tile
    // registers are used only inside this block.
    unsafe {
        asm!(
            "tileloadd tmm0, [{c0} + {cs}*1]",
            "tileloadd tmm1, [{c0} + {cs}*1 + 64]",
            "tileloadd tmm2, [{c1} + {cs}*1]",
            "tileloadd tmm3, [{c1} + {cs}*1 + 64]",
            "2:",
            "tileloadd tmm4, [{a0} + {as_}*1]",
            "tileloadd tmm5, [{a1} + {as_}*1]",
            "tileloadd tmm6, [{b} + {bs}*1]",
            "tileloadd tmm7, [{b} + {bs}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a0}, 64",
            "add {a1}, 64",
            "add {b}, {step_b}",
            "dec {steps}",
            "jnz 2b",
            "tilestored [{c0} + {cs}*1], tmm0",
            "tilestored [{c0} + {cs}*1 + 64], tmm1",
            "tilestored [{c1} + {cs}*1], tmm2",
            "tilestored [{c1} + {cs}*1 + 64], tmm3",
            c0 = in(reg) c.as_mut_ptr(),
            c1 = in(reg) c.as_mut_ptr().add(16 * ldc),
            cs = in(reg) c_bytes,
            a0 = inout(reg) a.as_ptr() => _,
            a1 = inout(reg) a[16..].as_ptr() => _,
            as_ = in(reg) row_bytes,
            b = inout(reg) b.as_ptr() => _,
            bs = in(reg) std::mem::size_of::<PanelRow>(),
            step_b = const STEP * std::mem::size_of::<PanelRow>(),
            steps = inout(reg) steps => _,
            options(nostack),
        );
    }
}
