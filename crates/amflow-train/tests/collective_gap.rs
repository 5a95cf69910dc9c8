//! Issue 17 asks for data-parallel training on burn's collective engine. This test pins down
//! what burn 0.22.1 (the version amflow is built on) offers, so that the day it changes, this
//! test fails and says so:
//!
//! - `burn-collective`, the crate with the global coordinator for several nodes, is published
//!   for burn 0.21 only (0.21.0 is its newest release); it cannot be used with 0.22.1's tensors.
//! - burn 0.22.1's own in-process collectives (`burn::tensor::distributed`: `DistributedContext`,
//!   `all_reduce`) have no network transport, and its backend catalog
//!   (`burn-backend-extension/src/catalog.rs`) marks only the cubecl backends (where only CUDA
//!   implements them) and `Remote` as collective-capable: `Flex`, the CPU device amflow trains
//!   on here and in CI, is not. An all-reduce between two CPU replicas panics inside burn.
//!
//! So the multi-device scheme of `amflow_train::parallel` (replicas forked per micro-batch,
//! gradients added on the first device) stays until burn's engine runs on the CPU and across
//! machines; see the closing note of issue 17.

use burn::prelude::*;
use burn::tensor::distributed::{
    all_reduce, DistributedConfig, DistributedContext, ReduceOperation,
};

#[test]
fn burn_0_22_collectives_do_not_run_on_the_cpu_device() {
    let devices = vec![Device::flex(), Device::flex()];
    let outcome = std::panic::catch_unwind(|| {
        let _context = DistributedContext::init(
            devices.clone(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Sum,
            },
        );
        let x = Tensor::<1>::from_floats([1.0, 2.0], &devices[0]);
        all_reduce(x, ReduceOperation::Sum, devices.clone()).resolve()
    });
    assert!(
        outcome.is_err(),
        "burn's all-reduce now runs on the CPU device: issue 17 can move onto it"
    );
}
