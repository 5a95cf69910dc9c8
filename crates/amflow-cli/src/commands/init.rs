//! `amflow init`: make a model from a config or preset, optionally on another backbone named
//! by its Hugging Face Hub id (`--backbone facebook/dinov2-base`: weights and architecture from
//! the Hub, pinned to the commit they resolve to), and write it as a model config (`.toml`) or
//! as an untrained checkpoint (loading the backbone's weights).

use std::collections::BTreeMap;
use std::process::ExitCode;

use amflow::backbone::hub::architecture;
use amflow::config::{BackboneWeights, HubWeights};
use amflow::{checkpoint, AmFlowModel, ModelConfig, Preset};
use anyhow::{Context, Result};
use burn::prelude::*;

use super::model_source::ModelSource;
use crate::cli::InitArgs;

/// The config `args` describe.
fn config_of(args: &InitArgs) -> Result<ModelConfig> {
    let mut config = match &args.config {
        Some(c) => ModelSource::resolve(c)?.config(),
        None => Preset::Dinov2B14Am12Transformer.config(),
    };
    if let Some(repo) = &args.backbone {
        let mut hub = HubWeights::new(repo);
        hub.revision = args.revision.clone();
        let (arch, commit) =
            architecture(&hub).with_context(|| format!("reading {repo}'s architecture"))?;
        tracing::info!(
            "{repo}: {:?} ViT, width {}, {} blocks, patch {} (commit {commit})",
            arch.family,
            arch.hidden_size,
            arch.num_layers,
            arch.patch_size
        );
        hub.commit = Some(commit);
        config.adapter.bottleneck = (arch.hidden_size / 4).max(1);
        config.backbone.arch = arch;
        config.backbone.weights = BackboneWeights::Hub(hub);
        config.validate()?;
    }
    Ok(config)
}

/// Runs `amflow init`.
pub fn run(args: &InitArgs, device: &Device) -> Result<ExitCode> {
    let config = config_of(args)?;
    if args.out.extension().and_then(|e| e.to_str()) == Some("toml") {
        amflow::fs_util::write_atomic(&args.out, config.to_toml().as_bytes())?;
        tracing::info!("wrote {}", args.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (model, report) = AmFlowModel::new(&config, device)?;
    if let Some(report) = report {
        tracing::info!("backbone: {report}");
    }
    checkpoint::save(&model, &args.out, &BTreeMap::new())
        .with_context(|| format!("writing {}", args.out.display()))?;
    tracing::info!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
