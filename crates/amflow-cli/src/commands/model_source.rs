//! Resolving what the user names as a model: a preset name, a TOML config file or a
//! checkpoint (whose config is in its metadata).

use std::path::Path;

use amflow::{checkpoint, ModelConfig, Preset, TensorFile};
use anyhow::{bail, Result};

/// What a model argument named.
pub enum ModelSource {
    /// A preset.
    Preset(Preset),
    /// A TOML config file.
    Config(ModelConfig),
    /// A checkpoint file, parsed.
    Checkpoint(ModelConfig, TensorFile),
}

impl ModelSource {
    /// Resolves `arg`.
    pub fn resolve(arg: &str) -> Result<Self> {
        if let Some(p) = Preset::from_name(arg) {
            return Ok(Self::Preset(p));
        }
        let path = Path::new(arg);
        if !path.exists() {
            let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
            bail!(
                "`{arg}` is neither a file nor a preset (presets: {})",
                names.join(", ")
            );
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Ok(Self::Config(ModelConfig::from_toml_file(path)?)),
            Some("safetensors") => {
                let file = TensorFile::read(path)?;
                let config = checkpoint::read_config(&file, path)?;
                Ok(Self::Checkpoint(config, file))
            }
            _ => bail!("`{arg}`: expected a .toml config or a .safetensors checkpoint"),
        }
    }

    /// The model configuration.
    pub fn config(&self) -> ModelConfig {
        match self {
            Self::Preset(p) => p.config(),
            Self::Config(c) | Self::Checkpoint(c, _) => c.clone(),
        }
    }
}
