//! `amflow init`: build a model from a config or preset (loading its backbone weights) and save
//! it as an untrained checkpoint.

use std::collections::BTreeMap;
use std::process::ExitCode;

use amflow::{checkpoint, AmFlowModel};
use anyhow::{Context, Result};
use burn::prelude::*;

use super::model_source::ModelSource;
use crate::cli::InitArgs;

/// Runs `amflow init`.
pub fn run(args: &InitArgs, device: &Device) -> Result<ExitCode> {
    let config = ModelSource::resolve(&args.config)?.config();
    let (model, report) = AmFlowModel::new(&config, device)?;
    if let Some(report) = report {
        tracing::info!("backbone: {report}");
    }
    checkpoint::save(&model, &args.out, &BTreeMap::new())
        .with_context(|| format!("writing {}", args.out.display()))?;
    tracing::info!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
