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
    match &source.config().backbone.weights {
        amflow::config::BackboneWeights::Random { seed } => {
            println!("backbone weights random (seed {seed})")
        }
        amflow::config::BackboneWeights::File { path } => {
            println!("backbone weights {}", path.display())
        }
    }
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
