//! `amflow forward`: run one clip through a checkpoint and write the logits and every
//! intermediate, so that amflow can be compared with another implementation tensor by tensor.
//!
//! Output tensor names: `logits` `[B, C]`, `head_logits.<k>` `[B, C]` (averaging order),
//! `blocks.<l>.attn_logits` `[B, T, h, N, N]`, `blocks.<l>.am_flow` `[B, T, N, f]` (temporal
//! blocks with AM flow), `blocks.<l>.e_attn` and `blocks.<l>.e_mlp` `[B, T, N, r]`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use amflow::{checkpoint, HostTensor, TensorFile};
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use crate::cli::ForwardArgs;

/// Runs `amflow forward`.
pub fn run(args: &ForwardArgs, device: &Device) -> Result<ExitCode> {
    let loaded = checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let clip_file = TensorFile::read(&args.clip)?;
    let clip = match (clip_file.tensors.get("clip"), clip_file.tensors.len()) {
        (Some(t), _) => t.clone(),
        (None, 1) => clip_file
            .tensors
            .values()
            .next()
            .cloned()
            .expect("one tensor"),
        (None, n) => bail!("{}: {n} tensors and none named `clip`", args.clip.display()),
    };
    if clip.shape.len() != 5 {
        bail!(
            "{}: the clip must be (B, T, 3, H, W), got {:?}",
            args.clip.display(),
            clip.shape
        );
    }
    let out = loaded
        .model
        .forward_detailed(clip.to_tensor::<5>(device)?, true)?;
    let inter = out.intermediates.expect("asked for intermediates");
    let mut tensors = BTreeMap::new();
    tensors.insert("logits".to_string(), HostTensor::from_tensor(&out.logits));
    for (k, h) in inter.head_logits.iter().enumerate() {
        tensors.insert(format!("head_logits.{k}"), HostTensor::from_tensor(h));
    }
    for (l, b) in inter.blocks.iter().enumerate() {
        tensors.insert(
            format!("blocks.{l}.attn_logits"),
            HostTensor::from_tensor(&b.attn_logits),
        );
        tensors.insert(
            format!("blocks.{l}.e_attn"),
            HostTensor::from_tensor(&b.e_attn),
        );
        tensors.insert(
            format!("blocks.{l}.e_mlp"),
            HostTensor::from_tensor(&b.e_mlp),
        );
        if let Some(f) = &b.am_flow {
            tensors.insert(format!("blocks.{l}.am_flow"), HostTensor::from_tensor(f));
        }
    }
    let logits = tensors["logits"].clone();
    let count = tensors.len();
    TensorFile {
        tensors,
        metadata: BTreeMap::from([(
            "producer".to_string(),
            format!("amflow {}", env!("CARGO_PKG_VERSION")),
        )]),
    }
    .write_atomic(&args.out)
    .with_context(|| format!("writing {}", args.out.display()))?;
    tracing::info!("wrote {count} tensors to {}", args.out.display());
    let classes = logits.shape[1];
    for row in logits.data.chunks(classes) {
        let items: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
        println!("{}", items.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
