//! amflow side of the model benchmark (`bench/model/README.md`, `docs/performance.md`).
//!
//! The model is the `dinov2-s14-am12-transformer` preset (ViT-S/14, AM/12 aligned AM flow,
//! transformer TPMs, bottleneck 96, 400 classes, 8 frames at 224²) with random backbone
//! weights. One case per process, so that the peak RSS is the case's own:
//!
//! ```sh
//! cargo bench -p amflow-train --bench model -- --case infer --batch 1 --reps 5 --warmup 1
//! cargo bench -p amflow-train --bench model -- --case train --batch 4
//! cargo bench -p amflow-train --bench model -- --case sgemm
//! cargo bench -p amflow-train --bench model -- --case backbone   # the frozen ViT alone
//! ```
//!
//! Each run prints one JSON line: the median and all times in seconds, the FLOP count of the
//! case (see [`flop_count`]) and the peak RSS (`VmHWM`) in bytes. A train step is forward,
//! label-smoothed cross-entropy, backward, gradient collection and an AdamW step, as in
//! `amflow_train::trainer`.
//!
//! Like the `amflow` binary, it keeps freed memory mapped (the binary's own `allocator` module,
//! included below) unless
//! `AMFLOW_BENCH_DEFAULT_MALLOC=1` is set, which measures glibc's defaults.

use std::time::Instant;

// The process-wide allocator setting is the `amflow` binary's; the bench is a program too.
#[path = "../../amflow-cli/src/allocator.rs"]
#[allow(dead_code, unused_imports)] // its tests run with the binary's, not here
mod allocator;

use amflow::config::BackboneWeights;
use amflow::info::compute_per_clip;
use amflow::{AmFlowModel, ModelConfig, Preset};
use amflow_train::loss::cross_entropy;
use amflow_train::optim::{AdamW, AdamWConfig, Gradients};
use burn::prelude::*;
use burn::tensor::Distribution;

/// Side of the square matrices of the sgemm case.
const SGEMM_N: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Infer,
    Train,
    Sgemm,
    /// Inference of the frozen backbone alone (`Vit::forward_plain`), for the profile.
    Backbone,
    /// The tiny preset's logits on `--device` against the CPU backend, for every AM flow mode
    /// and TPM (one JSON line each; for a GPU machine, bench/gpu).
    Parity,
    /// The matrix products of one block of the benchmark's model at batch 1 (`x W^T` through
    /// `amflow_kernels::ops::linear`, the model's path), one JSON line each with its GFLOP/s:
    /// where a kernel (AVX2 or AVX-512) loses against its own square-sgemm rate.
    Products,
}

struct Args {
    case: Case,
    /// The model (`--preset`, default the ViT-S/14 AM/12 one), with random backbone weights.
    preset: Preset,
    /// The device (`--device`, as the `amflow` command names them; default `flex`).
    device: String,
    /// `--precision bf16`: the frozen backbone's matrix weights and products in bf16.
    bf16: bool,
    batch: usize,
    reps: usize,
    warmup: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        case: Case::Infer,
        preset: Preset::Dinov2S14Am12Transformer,
        device: "flex".into(),
        bf16: false,
        batch: 1,
        reps: 5,
        warmup: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--case" => {
                args.case = match value.as_str() {
                    "infer" => Case::Infer,
                    "train" => Case::Train,
                    "sgemm" => Case::Sgemm,
                    "backbone" => Case::Backbone,
                    "parity" => Case::Parity,
                    "products" => Case::Products,
                    other => return Err(format!("unknown case {other}")),
                }
            }
            "--preset" => {
                args.preset = Preset::from_name(&value).ok_or(format!("unknown preset {value}"))?
            }
            "--device" => args.device = value,
            "--precision" => {
                args.bf16 = match value.as_str() {
                    "f32" => false,
                    "bf16" => true,
                    other => return Err(format!("unknown precision {other} (f32 or bf16)")),
                }
            }
            "--batch" => args.batch = number()?,
            "--reps" => args.reps = number()?,
            "--warmup" => args.warmup = number()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The benchmark's model configuration.
fn config(preset: Preset) -> ModelConfig {
    let mut c = preset.config();
    c.backbone.weights = BackboneWeights::Random { seed: 0 };
    c
}

/// FLOP of one forward (`infer`) or train step (`train`) on `batch` clips: `2 * MACs` of the
/// matrix products and convolutions as `amflow::info` counts them. A train step adds the
/// backward: the frozen linear layers need only their input gradient (1x forward), the
/// attention products `Q K^T`, `P V` and all trainable layers need both operands' gradients
/// (2x forward), the patch embedding needs none.
fn flop_count(config: &ModelConfig, train: bool, batch: usize) -> u64 {
    let c = compute_per_clip(config).expect("the preset is valid");
    if !train {
        return batch as u64 * c.flops();
    }
    let a = &config.backbone.arch;
    let t = config.num_frames as u64;
    let n = config.tokens_per_frame() as u64;
    let (d, p) = (a.hidden_size as u64, a.patch_size as u64);
    let patches = n - 1 - a.num_registers as u64;
    let patch = t * patches * 3 * p * p * d;
    let attn_products = t * a.num_layers as u64 * 2 * n * n * d;
    let frozen_linear = c.backbone_macs - patch - attn_products;
    let macs = patch + 2 * frozen_linear + 3 * attn_products + 3 * c.additions_macs;
    2 * batch as u64 * macs
}

fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Times `step` (after `warmup` untimed calls). Each call runs on rayon's pool, as the
/// trainer runs its passes (`amflow_kernels::on_pool`).
fn timed(reps: usize, warmup: usize, mut step: impl FnMut() + Send) -> Vec<f64> {
    let mut run = || amflow_kernels::on_pool(&mut step);
    for _ in 0..warmup {
        run();
    }
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect()
}

fn median(times: &[f64]) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Rayon's global pool size, which burn's flex backend and its matrix products use:
/// `RAYON_NUM_THREADS` when set, else the available parallelism.
fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The tiny preset on `device` and on the CPU backend, same weights and clip: the largest
/// logit difference relative to the largest logit, per AM flow mode and TPM.
fn parity(device: &str) -> amflow::Result<()> {
    use amflow::flow::AmFlowMode;
    use amflow::tpm::{TpmConfig, TpmKind};
    let device = amflow_train::device::parse(device)
        .map_err(|e| amflow::AmflowError::Config(e.to_string()))?;
    let clip = amflow::HostTensor::new(
        vec![2, 4, 3, 16, 16],
        (0..2 * 4 * 3 * 16 * 16)
            .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
            .collect(),
    )?;
    for mode in [AmFlowMode::Vanilla, AmFlowMode::Aligned, AmFlowMode::Off] {
        for tpm in [TpmKind::Transformer, TpmKind::Tcn, TpmKind::Lstm] {
            let mut config = Preset::Tiny.config();
            config.am_flow = config.am_flow.with_mode(mode);
            config.tpm = TpmConfig::new(tpm);
            let logits = |device: &Device| -> amflow::Result<amflow::HostTensor> {
                let (model, _) = AmFlowModel::new(&config, device)?;
                let out = model.forward(clip.to_tensor::<5>(device)?)?;
                Ok(amflow::HostTensor::from_tensor(&out))
            };
            let (on_device, on_cpu) = (logits(&device)?, logits(&Device::flex())?);
            let scale = on_cpu.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            println!(
                "{{\"side\": \"amflow\", \"case\": \"parity\", \"am_flow\": \"{mode:?}\", \
                 \"tpm\": \"{tpm:?}\", \"relative_error\": {:e}}}",
                on_device.max_abs_diff(&on_cpu) / scale
            );
        }
    }
    Ok(())
}

/// `(label, rows, in, out)` of the linear layers of one block of `dinov2-s14-am12-transformer`
/// at batch 1: 8 frames x 257 tokens = 2056 rows everywhere (the TPMs see the same rows as
/// `[257, 8, 96]` sequences).
const BLOCK_PRODUCTS: [(&str, usize, usize, usize); 10] = [
    ("vit q/k/v/o", 2056, 384, 384),
    ("vit fc1", 2056, 384, 1536),
    ("vit fc2", 2056, 1536, 384),
    ("adapter down", 2056, 384, 96),
    ("adapter up", 2056, 96, 384),
    ("align proj", 2056, 6, 192),
    ("align q/k/v/o", 2056, 192, 192),
    ("align fc1", 2056, 192, 768),
    ("align fc2", 2056, 768, 192),
    ("tpm q/k/v/o", 2056, 96, 96),
];

fn products(args: &Args) {
    let device = amflow_train::device::parse("flex").expect("the CPU device");
    for (label, rows, input, output) in BLOCK_PRODUCTS {
        let x = Tensor::<2>::random([rows, input], Distribution::Default, &device);
        let w = Tensor::<2>::random([output, input], Distribution::Default, &device);
        let b = Tensor::<1>::random([output], Distribution::Default, &device);
        let times = timed(args.reps, args.warmup, || {
            let y = amflow_kernels::ops::linear(x.clone(), w.clone(), Some(b.clone()));
            let _: f32 = y.slice([0..1, 0..1]).into_scalar();
        });
        let flop = 2.0 * (rows * input * output) as f64;
        println!(
            "{{\"side\": \"amflow\", \"case\": \"products\", \"product\": \"{label}\",              \"m\": {rows}, \"k\": {input}, \"n\": {output}, \"threads\": {},              \"median_s\": {:.7}, \"gflops\": {:.1}}}",
            threads(),
            median(&times),
            flop / median(&times) / 1e9
        );
    }
}

fn run(args: &Args) -> amflow::Result<(Vec<f64>, u64)> {
    let device = amflow_train::device::parse(&args.device)
        .map_err(|e| amflow::AmflowError::Config(e.to_string()))?;
    let mut config = config(args.preset);
    if args.bf16 {
        config.backbone.precision = amflow::backbone::BackbonePrecision::Bf16;
    }
    let clip_shape = [
        args.batch,
        config.num_frames,
        3,
        config.image_size[0],
        config.image_size[1],
    ];
    match args.case {
        Case::Parity | Case::Products => Err(amflow::AmflowError::Config(
            "parity and products run by themselves, not through `run`".into(),
        )),
        Case::Sgemm => {
            let x = Tensor::<2>::random([SGEMM_N, SGEMM_N], Distribution::Default, &device);
            let y = Tensor::<2>::random([SGEMM_N, SGEMM_N], Distribution::Default, &device);
            let times = timed(args.reps, args.warmup, || {
                let z = x.clone().matmul(y.clone());
                let _: f32 = z.slice([0..1, 0..1]).into_scalar();
            });
            Ok((times, 2 * (SGEMM_N as u64).pow(3)))
        }
        Case::Backbone => {
            let (model, _) = AmFlowModel::new(&config, &device)?;
            let [b, t, ch, h, w] = clip_shape;
            let pixels = Tensor::<4>::random([b * t, ch, h, w], Distribution::Default, &device);
            let mut result = Ok(());
            let times = timed(args.reps, args.warmup, || {
                match model.backbone.forward_plain(pixels.clone()) {
                    Ok((x, _)) => drop(x.into_data()),
                    Err(e) => result = Err(e),
                };
            });
            let c = compute_per_clip(&config)?;
            result.map(|()| (times, 2 * args.batch as u64 * c.backbone_macs))
        }
        Case::Infer => {
            let (model, _) = AmFlowModel::new(&config, &device)?;
            let clip = Tensor::<5>::random(clip_shape, Distribution::Normal(0.0, 1.0), &device);
            let mut result = Ok(());
            let times = timed(args.reps, args.warmup, || {
                match model.forward(clip.clone()) {
                    Ok(logits) => drop(logits.into_data()),
                    Err(e) => result = Err(e),
                };
            });
            result.map(|()| (times, flop_count(&config, false, args.batch)))
        }
        Case::Train => {
            let ad = device.clone().autodiff();
            let (mut model, _) = AmFlowModel::new(&config, &ad)?;
            let clip = Tensor::<5>::random(clip_shape, Distribution::Normal(0.0, 1.0), &ad);
            let labels: Vec<usize> = (0..args.batch).map(|i| i % config.num_classes).collect();
            let mut opt = AdamW::new(AdamWConfig::default());
            let mut result = Ok(());
            let times = timed(args.reps, args.warmup, || {
                // As the trainer's pass does (amflow_train::parallel): the temporal heads'
                // backward passes side by side on the CPU.
                let pass = match model.forward_split(clip.clone()) {
                    Ok(p) => p,
                    Err(e) => {
                        result = Err(e);
                        return;
                    }
                };
                let loss = cross_entropy(pass.logits.clone(), &labels, 0.1)
                    .expect("one label per clip, each below num_classes");
                let mut grads = Gradients::default();
                match pass.backward(loss) {
                    Ok(sets) => sets
                        .iter()
                        .for_each(|g| grads.accumulate(&model.additions, g)),
                    Err(e) => {
                        result = Err(e);
                        return;
                    }
                }
                model.additions = opt.step(model.additions.clone(), &grads, 1e-4);
                // The new parameters are computed when read: wait for them.
                let _: f32 = model.additions.final_head.weight.val().sum().into_scalar();
            });
            result.map(|()| (times, flop_count(&config, true, args.batch)))
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("model bench: {e}");
            std::process::exit(2);
        }
    };
    let tuned_malloc = std::env::var("AMFLOW_BENCH_DEFAULT_MALLOC").as_deref() != Ok("1")
        && allocator::keep_freed_memory_mapped();
    if args.case == Case::Products {
        products(&args);
        return;
    }
    if args.case == Case::Parity {
        if let Err(e) = parity(&args.device) {
            eprintln!("model bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    let result = run(&args);
    // Lines still buffered (`--features amflow-kernels/product-census`; else nothing to do).
    amflow_kernels::flush_product_census();
    match result {
        Ok((times, flop)) => {
            let case = match args.case {
                Case::Infer => "infer",
                Case::Train => "train",
                Case::Sgemm => "sgemm",
                Case::Backbone => "backbone",
                Case::Parity => "parity",
                Case::Products => "products",
            };
            let list: Vec<String> = times.iter().map(|t| format!("{t:.6}")).collect();
            println!(
                "{{\"side\": \"amflow\", \"case\": \"{case}\", \"batch\": {}, \"threads\": {}, \
                 \"median_s\": {:.6}, \"times_s\": [{}], \"flop\": {flop}, \
                 \"peak_rss_bytes\": {}, \"malloc_tuned\": {tuned_malloc}, \"preset\": \"{}\", \"device\": \"{}\", \"precision\": \"{}\"}}",
                args.batch,
                threads(),
                median(&times),
                list.join(", "),
                peak_rss().map_or("null".into(), |v| v.to_string()),
                args.preset.name(),
                args.device,
                if args.bf16 { "bf16" } else { "f32" },
            );
        }
        Err(e) => {
            eprintln!("model bench: {e}");
            std::process::exit(1);
        }
    }
}
