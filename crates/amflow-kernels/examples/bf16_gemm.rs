//! GFLOP/s of the backbone's linear-layer products on the CPU backend, three ways: the f32
//! layer (`ops::linear` with an f32 weight: the `gemm` crate's product from the bias rows), the
//! bf16 layer (`ops::linear` with a bf16 weight: the crate's bf16 kernel, `vdpbf16ps` where the
//! CPU has AVX-512 BF16) and burn's own bf16 path (`x.cast(bf16).matmul(W^T).cast(f32)`, what
//! the bf16 layer did before). Shapes: ViT-S/14 on 8 frames of 224² (2056 tokens), the
//! projections `(k, n)` of its blocks: qkv (384, 1152), the attention output (384, 384), fc1
//! (384, 1536), fc2 (1536, 384). Not run by `cargo test`.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p amflow-kernels --example bf16_gemm [-- REPS]
//! ```
//!
//! Each figure is the median of REPS (default 5) timed calls after one warm-up call, counting
//! `2 m n k` FLOP.

use std::hint::black_box;
use std::time::Instant;

use amflow_kernels::ops;
use burn::prelude::*;
use burn::tensor::{DType, Distribution};

/// The median of `reps` timed calls of `f`, in seconds, after one untimed call.
fn median_seconds(reps: usize, mut f: impl FnMut() -> Tensor<2>) -> f64 {
    black_box(f());
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("REPS: a number"))
        .unwrap_or(5);
    let device = Device::flex();
    let m = 8 * 257;
    println!(
        "threads {}, m = {m}, median of {reps}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "(all)".into())
    );
    println!("| k | n | f32 layer GFLOP/s | bf16 layer GFLOP/s | burn bf16 path GFLOP/s |");
    println!("| --- | --- | --- | --- | --- |");
    for (k, n) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<2>::random([m, k], normal, &device);
        let w = Tensor::<2>::random([n, k], normal, &device);
        let b = Tensor::<1>::random([n], normal, &device);
        let w_bf16 = w.clone().cast(DType::BF16);
        let f32_layer = median_seconds(reps, || ops::linear(x.clone(), w.clone(), Some(b.clone())));
        let bf16_layer = median_seconds(reps, || {
            ops::linear(x.clone(), w_bf16.clone(), Some(b.clone()))
        });
        let burn_bf16 = median_seconds(reps, || {
            let y = x
                .clone()
                .cast(DType::BF16)
                .matmul(w_bf16.clone().transpose());
            y.cast(DType::F32) + b.clone().unsqueeze::<2>()
        });
        let gflops = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        println!(
            "| {k} | {n} | {:.1} | {:.1} | {:.1} |",
            gflops(f32_layer),
            gflops(bf16_layer),
            gflops(burn_bf16)
        );
    }
}
