//! `amflow preset`: list the presets, or print one as a TOML config to start from.

use std::process::ExitCode;

use amflow::Preset;
use anyhow::{bail, Result};

use crate::cli::PresetArgs;

/// Runs `amflow preset`.
pub fn run(args: &PresetArgs) -> Result<ExitCode> {
    match &args.name {
        None => {
            for p in Preset::ALL {
                println!("{}", p.name());
            }
        }
        Some(name) => match Preset::from_name(name) {
            Some(p) => print!("{}", p.config().to_toml()),
            None => bail!("unknown preset `{name}` (see `amflow preset`)"),
        },
    }
    Ok(ExitCode::SUCCESS)
}
