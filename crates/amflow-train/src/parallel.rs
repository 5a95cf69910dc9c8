//! One micro-batch's forward and backward pass, on one device or data parallel over several
//! devices of one machine (the scheme of PyTorch's `DistributedDataParallel` and of burn-train's
//! multi-device strategy, within one process).
//!
//! With `k` devices the batch of `B` clips is cut into `k` contiguous shards of
//! `ceil(B / k)` clips (the last ones may be smaller or empty). Every device gets its own
//! replica of the model ([`Module::fork`]: same weights, its own autodiff graph) and runs its
//! shard on its own thread. Shard `i`'s mean cross-entropy is weighted by `n_i / B` before its
//! backward pass, so the replicas' gradients, moved to the first device and added, are the
//! gradients of the whole batch's mean loss: the optimizer step is the single-device one, up
//! to the order of floating-point sums. Validation and the optimizer stay on the first device.

use amflow::checkpoint::BACKBONE_PREFIX;
use amflow::AmFlowModel;
use burn::module::Module;
use burn::prelude::*;

use crate::error::{Result, TrainError};
use crate::input::Pixels;
use crate::loss::{cross_entropy, soft_cross_entropy};
use crate::mixing::{MixConfig, MixPlan};
use crate::optim::Gradients;

/// What a pass returns besides the gradients, on the first device: nothing is read back to the
/// host, so a training step waits for the device only where it must (the clipping norm).
#[derive(Debug, Clone)]
pub struct PassOutput {
    /// Predicted class per clip, `[B]`.
    pub predictions: Tensor<1, Int>,
    /// Mean loss over the batch, `[1]`.
    pub loss: Tensor<1>,
    /// Clips predicted right, `[1]` (a float count, so that it sums with the loss).
    pub correct: Tensor<1>,
}

/// Settings of a pass.
#[derive(Debug, Clone, Copy)]
pub struct PassSettings {
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Whether the backbone's gradients are collected too (under [`BACKBONE_PREFIX`]).
    pub trains_backbone: bool,
    /// Mixup / CutMix (off by default), applied on the device to each shard, partners
    /// mirrored within the shard.
    pub mix: MixConfig,
    /// `(seed, epoch, batch position)` of this micro-batch: what the mixing draws from.
    pub mix_seed: [u64; 3],
}

/// Runs the clips `[B, T, 3, H, W]` (8-bit `pixels`, normalised on each device) with `labels`
/// through `model` (on `devices[0]`, an autodiff device) and adds the gradients of the mean
/// loss to `grads`, on `devices[0]`. With more than one device the pass is data parallel
/// (module docs).
///
/// # Errors
/// Model errors, and [`TrainError::Config`] for an empty device list or a non-finite loss
/// (reported by the caller with its step).
pub fn forward_backward(
    model: &AmFlowModel,
    pixels: Pixels<'_>,
    labels: &[usize],
    devices: &[Device],
    settings: PassSettings,
    grads: &mut Gradients,
) -> Result<PassOutput> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Config("no training device".into()))?;
    let b = pixels.shape[0];
    if devices.len() == 1 || b == 1 {
        // On the CPU the forward and backward passes run on rayon's pool, where the kernels'
        // parallel parts start without waking this thread (docs/performance.md, "One change:
        // the passes run on rayon's pool").
        let (out, g) = amflow_kernels::on_pool_for(main, || {
            shard_pass(model, pixels, labels, 1.0, settings, main)
        })?;
        grads.add(g, main);
        return Ok(out);
    }
    let shard = b.div_ceil(devices.len());
    let jobs: Vec<(usize, usize, &Device)> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (i * shard, ((i + 1) * shard).min(b), d))
        .filter(|(start, end, _)| start < end)
        .collect();
    let results: Vec<Result<(PassOutput, Gradients)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(start, end, device)| {
                let replica = model.clone().fork(device);
                let pixels = pixels.clips(start..end);
                let labels = &labels[start..end];
                let weight = (end - start) as f64 / b as f64;
                let mut settings = settings;
                settings.mix_seed[2] = (settings.mix_seed[2] << 20) | start as u64;
                scope.spawn(move || shard_pass(&replica, pixels, labels, weight, settings, device))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TrainError::Config(
                        "a data-parallel worker thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut predictions = Vec::with_capacity(jobs.len());
    let (mut loss, mut correct) = (Tensor::zeros([1], main), Tensor::zeros([1], main));
    for r in results {
        let (out, g) = r?;
        predictions.push(out.predictions.to_device(main));
        loss = loss + out.loss.to_device(main);
        correct = correct + out.correct.to_device(main);
        grads.add(g, main);
    }
    Ok(PassOutput {
        predictions: Tensor::cat(predictions, 0),
        loss,
        correct,
    })
}

/// One shard on one device: its loss weighted by `weight` (its share of the batch), backward,
/// gradients by path. The returned loss is the weighted one.
fn shard_pass(
    model: &AmFlowModel,
    pixels: Pixels<'_>,
    labels: &[usize],
    weight: f64,
    settings: PassSettings,
    device: &Device,
) -> Result<(PassOutput, Gradients)> {
    let clip = pixels.to_device(device)?;
    // Each shard mixes its own clips; `mix_seed` tells shards apart ([`forward_backward`]).
    let [_, _, _, h, w] = clip.dims();
    let plan = settings
        .mix
        .enabled()
        .then(|| MixPlan::draw(&settings.mix, clip.dims()[0], h, w, settings.mix_seed));
    let clip = match &plan {
        Some(p) => p.apply(clip),
        None => clip,
    };
    // On the CPU the temporal heads' backward passes then run side by side (SplitPass).
    let pass = model.forward_split(clip)?;
    let logits = pass.logits.clone();
    let predictions: Tensor<1, Int> = logits.clone().detach().argmax(1).flatten(0, 1);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&y| y as i64).collect(), [labels.len()]),
        device,
    );
    let correct = predictions.clone().equal(targets).float().sum();
    let loss = match &plan {
        Some(p) => soft_cross_entropy(
            logits,
            p.targets(labels, model.config.num_classes, settings.label_smoothing)?,
        )?,
        None => cross_entropy(logits, labels, settings.label_smoothing)?,
    };
    let loss = if weight == 1.0 {
        loss
    } else {
        loss.mul_scalar(weight)
    };
    let value = loss.clone().detach();
    let mut grads = Gradients::default();
    for backward in pass.backward(loss)? {
        grads.accumulate(&model.additions, &backward);
        if settings.trains_backbone {
            grads.accumulate_under(&model.backbone, &backward, BACKBONE_PREFIX);
        }
    }
    Ok((
        PassOutput {
            predictions,
            loss: value,
            correct,
        },
        grads,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amflow::config::Preset;
    use amflow::flow::AmFlowMode;
    use amflow::tpm::{TpmConfig, TpmKind};
    use burn::tensor::Distribution;

    use crate::loss::cross_entropy;

    fn by_path(grads: &Gradients) -> std::collections::BTreeMap<String, Vec<f32>> {
        grads
            .iter()
            .map(|(k, g)| (k.to_string(), amflow::read_values(g.clone())))
            .collect()
    }

    /// The split backward (the temporal heads' passes side by side) gives every trainable
    /// parameter the one-graph backward's gradient, for each AM flow mode and TPM kind.
    #[test]
    fn split_backward_matches_the_one_graph_backward() {
        let device = Device::flex().autodiff();
        for (mode, tpm) in [
            (AmFlowMode::Aligned, TpmKind::Transformer),
            (AmFlowMode::Vanilla, TpmKind::Lstm),
            (AmFlowMode::Off, TpmKind::Tcn),
        ] {
            let mut config = Preset::Tiny.config();
            config.am_flow = config.am_flow.with_mode(mode);
            config.tpm = TpmConfig::new(tpm);
            let (model, _) = AmFlowModel::new(&config, &device).unwrap();
            let [h, w] = config.image_size;
            let clip = Tensor::<5>::random(
                [2, config.num_frames, 3, h, w],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let labels = [1, 0];
            let loss_of = |logits| cross_entropy(logits, &labels, 0.1).unwrap();

            let mut whole = Gradients::default();
            let logits = model.forward(clip.clone()).unwrap();
            whole.accumulate(&model.additions, &loss_of(logits).backward());

            let mut split = Gradients::default();
            let pass = model.forward_split(clip).unwrap();
            let loss = loss_of(pass.logits.clone());
            let sets = pass.backward(loss).unwrap();
            assert!(sets.len() > 1, "{mode:?}: the pass was not split");
            for set in &sets {
                split.accumulate(&model.additions, set);
            }

            let (whole, split) = (by_path(&whole), by_path(&split));
            assert_eq!(
                whole.keys().collect::<Vec<_>>(),
                split.keys().collect::<Vec<_>>(),
                "{mode:?}: the same parameters get gradients"
            );
            for (path, a) in &whole {
                let b = &split[path];
                let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let diff = a
                    .iter()
                    .zip(b)
                    .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    diff <= 1e-5 * scale,
                    "{mode:?} {path}: largest difference {diff} against a largest gradient {scale}"
                );
            }
        }
    }
}
