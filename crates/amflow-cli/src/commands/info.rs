//! `amflow info`: the architecture summary (parameter counts split as in the paper's tables,
//! compute per clip) of a preset, config or checkpoint, computed from the config alone.

use std::process::ExitCode;

use amflow::info::summary;
use anyhow::Result;

use super::model_source::ModelSource;
use crate::cli::InfoArgs;

/// Runs `amflow info`.
pub fn run(args: &InfoArgs) -> Result<ExitCode> {
    let source = ModelSource::resolve(&args.model)?;
    let config = source.config();
    print!("{}", summary(&config)?);
    println!("backbone weights {}", config.backbone.weights);
    if let ModelSource::Checkpoint(_, file) = &source {
        let values: usize = file.tensors.values().map(|t| t.data.len()).sum();
        println!(
            "checkpoint      {} tensors, {} values",
            file.tensors.len(),
            values
        );
        for (k, v) in &file.metadata {
            if k != "config" {
                println!("  {k} = {v}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
