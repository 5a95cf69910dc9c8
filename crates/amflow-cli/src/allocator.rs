//! Process-wide `malloc` settings for the CPU backend (docs/performance.md, "The allocator").
//!
//! burn's CPU backend allocates a fresh buffer for every op's output. glibc serves blocks of
//! 128 KiB and more with `mmap` and unmaps them on `free` (and trims the heap's top once 128 KiB
//! are free there), so the next op of the same size faults the same pages in and the kernel
//! zeroes them again: 15-25% of an inference went to page faults. [`keep_freed_memory_mapped`]
//! serves every block from the heap (`M_MMAP_MAX = 0`; the threshold alone stops at 32 MiB,
//! less than one attention map of a 4-clip batch) and raises the trim threshold to 2 GiB, so
//! that freed blocks stay in the heap for the next op. glibc still falls back to `mmap` for
//! a request that no heap can serve. Every thread allocates from that one heap
//! (`M_ARENA_MAX = 1`): a model pass runs on a rayon worker (`amflow_kernels::on_pool`), and
//! glibc's per-thread arenas of 64 MiB heaps faulted its tensors in again (the kernel's
//! `clear_page_erms` at 8 % of a train step, against 0.6 % in the main arena). Measured on
//! the ViT-S/14 AM/12 benchmark (2 threads), against glibc's defaults: inference 1.4x faster
//! at batch 1 and 1.2x at batch 4, train step 1.05x at batch 1 and 1.16x at batch 4; peak RSS
//! within 1%, except inference at batch 4
//! (392 -> 446 MiB, still a fifth of PyTorch's).
//!
//! The setting is process-wide, so it belongs to programs, not to the model library: the
//! `amflow` binary calls it once at start-up, and the model benchmark includes this file. On
//! other C libraries it does nothing.

/// The `mmap` threshold set: glibc's largest (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit); it
/// matters only where `mmap` is used at all (the fallback).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Keeps freed memory mapped for reuse (see the module docs). Returns whether the C library
/// took the settings (`false` on C libraries other than glibc).
pub fn keep_freed_memory_mapped() -> bool {
    platform::keep_freed_memory_mapped()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod platform {
    pub fn keep_freed_memory_mapped() -> bool {
        let mmap = super::MMAP_THRESHOLD as libc::c_int;
        // SAFETY: `mallopt` sets a parameter of glibc's allocator under the allocator's own
        // lock; it takes no pointers and is callable at any time from any thread. It returns
        // 1 on success and 0 for a rejected value.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) == 1
                && libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod platform {
    pub fn keep_freed_memory_mapped() -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    /// Minor page faults of the calling thread so far.
    fn thread_minor_faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` writes one `rusage` into the pointer it is given, which points
        // to a zeroed value of that type; RUSAGE_THREAD is Linux's per-thread query.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
        assert_eq!(rc, 0);
        // SAFETY: initialised by the successful call above (and zeroed before).
        unsafe { usage.assume_init() }.ru_minflt
    }

    /// Faults taken by writing a fresh `bytes`-byte buffer, after one of the same size was
    /// written and freed on the same thread.
    fn faults_of_a_reused_buffer(bytes: usize) -> i64 {
        std::thread::spawn(move || {
            drop(std::hint::black_box(vec![1u8; bytes]));
            let before = thread_minor_faults();
            let again = std::hint::black_box(vec![2u8; bytes]);
            let faults = thread_minor_faults() - before;
            assert_eq!(again[bytes - 1], 2);
            faults
        })
        .join()
        .unwrap()
    }

    #[test]
    fn freed_buffers_stay_mapped_and_are_reused_without_page_faults() {
        // 16 MiB: above glibc's default mmap threshold, so by default every such buffer is a
        // fresh mapping and writing it faults all of its 4096 pages in again.
        let bytes = 16 << 20;
        let pages = (bytes / 4096) as i64;
        assert!(keep_freed_memory_mapped());
        let faults = faults_of_a_reused_buffer(bytes);
        assert!(
            faults < pages / 8,
            "{faults} page faults writing a reused {bytes}-byte buffer ({pages} pages)"
        );
        // Allocations keep working on both sides of the threshold and beyond one arena heap.
        let small = vec![1u8; MMAP_THRESHOLD - 4096];
        let large = vec![2u8; MMAP_THRESHOLD + 4096];
        let huge = std::thread::spawn(|| vec![3u8; 3 * MMAP_THRESHOLD])
            .join()
            .unwrap();
        assert_eq!(small[small.len() - 1] + large[large.len() - 1], 3);
        assert_eq!(huge[huge.len() - 1], 3);
    }
}
