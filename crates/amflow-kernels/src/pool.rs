//! Runs a model's work on a thread of rayon's pool, the pool that every CPU kernel splits its
//! products and loops over (`gemm`, burn's CPU backend, [`crate::ops`]).
//!
//! A parallel op called from a thread outside the pool (a program's main thread) goes through
//! rayon's cold path: the caller queues the job, wakes a sleeping worker with a `futex` call,
//! then sleeps on a latch until a worker wakes it again. A model step is thousands of such
//! ops, each paying two wake-ups, and on a virtual machine a wake-up of another vCPU is an
//! inter-processor interrupt through the hypervisor. `perf` on a 2-vCPU AMD EPYC (Zen 3) put
//! that wake-up path at 1.4 % of a train step's CPU time and the scheduler at 1 %
//! (docs/performance.md, "One change: the passes run on rayon's pool"). Called from a worker,
//! the same op pushes half of its work onto the worker's own queue, does the other half itself
//! and, when no other worker took the queued half, does that too: no wake-up of the caller, and
//! one thread fewer competing for the cores. Measured there, binary against binary in both
//! orders: inference about 4 % faster, the train step unchanged, both within that host's noise.
//!
//! [`on_pool`] is that entry: the work runs on a pool thread while the caller waits (once);
//! [`on_pool_for`] does so for work on the CPU backend only.

/// [`on_pool`] when `device` is the CPU backend (with or without autodiff); on another device
/// `work` runs on the calling thread (its kernels run on the device, not on the pool).
pub fn on_pool_for<R: Send>(device: &burn::prelude::Device, work: impl FnOnce() -> R + Send) -> R {
    if crate::flex_host::is_cpu(device) {
        on_pool(work)
    } else {
        work()
    }
}

/// `work` applied to each item, results in the items' order: on the CPU backend the items run
/// concurrently on rayon's pool (each one's own parallel kernels nest inside and share the
/// threads by work stealing), on another device one after another on the calling thread (its
/// kernels run on the device). For independent pieces of a pass whose kernels are too small to
/// keep every core busy on their own: the temporal heads of a model (docs/performance.md,
/// "The Zen 5's AVX2 path, piece by piece").
pub fn map_on_pool_for<T: Send, R: Send>(
    device: &burn::prelude::Device,
    items: Vec<T>,
    work: impl Fn(T) -> R + Send + Sync,
) -> Vec<R> {
    if crate::flex_host::is_cpu(device) && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        on_pool(|| items.into_par_iter().map(work).collect())
    } else {
        items.into_iter().map(work).collect()
    }
}

/// Runs `work` on a thread of rayon's global pool and returns its result; the calling thread
/// waits. From a thread of that pool it runs `work` in place.
///
/// Blocking inside `work` (a channel, a lock held by a pool job) stalls a pool thread, so
/// wrap computation (a forward pass, a train step), not waits for data.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    rayon::scope(|_| work())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_pool_thread_and_returns_its_result() {
        assert!(
            rayon::current_thread_index().is_none(),
            "test threads are not the pool's"
        );
        let (index, sum) = on_pool(|| {
            let sum: u64 = rayon::iter::ParallelIterator::sum(
                rayon::iter::IntoParallelIterator::into_par_iter(0..1000u64),
            );
            (rayon::current_thread_index(), sum)
        });
        assert!(index.is_some());
        assert_eq!(sum, 499_500);
        // Nested: in place on the same thread.
        let (outer, inner) = on_pool(|| {
            (
                rayon::current_thread_index(),
                on_pool(rayon::current_thread_index),
            )
        });
        assert_eq!(outer, inner);
        // The CPU device, in the autodiff graph or not, runs on the pool.
        let cpu = burn::prelude::Device::flex();
        assert!(on_pool_for(&cpu, rayon::current_thread_index).is_some());
        assert!(on_pool_for(&cpu.autodiff(), rayon::current_thread_index).is_some());
    }

    #[test]
    fn mapped_items_keep_their_order() {
        let cpu = burn::prelude::Device::flex();
        let items: Vec<u64> = (0..50).collect();
        let squares = map_on_pool_for(&cpu, items.clone(), |i| {
            // Uneven work, so that the items finish out of order.
            let spin: u64 = (0..(50 - i) * 1000).sum();
            (i * i, spin)
        });
        assert_eq!(
            squares.iter().map(|s| s.0).collect::<Vec<_>>(),
            items.iter().map(|i| i * i).collect::<Vec<_>>()
        );
    }
}
