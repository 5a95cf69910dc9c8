//! Backbones by Hugging Face Hub name (`backbone.weights = { hub = "facebook/dinov2-base" }`):
//! the repository's `config.json` gives the architecture ([`VitConfig::from_hf_config`]), its
//! `model.safetensors` the weights, both through [`amflow_hub`] (the shared Hugging Face cache,
//! `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_TOKEN`, checksums). The commit both came from is
//! recorded in [`HubWeights::commit`], so that a checkpoint names exactly its weights.

use std::path::PathBuf;

use amflow_hub::Hub;

use super::{VitConfig, HF_CONFIG_FILE, HF_WEIGHTS_FILE};
use crate::config::HubWeights;
use crate::error::{AmflowError, Result};

/// A Hub backbone's files in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct HubBackbone {
    /// The architecture read from `config.json`.
    pub arch: VitConfig,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// The commit both files belong to.
    pub commit: String,
}

fn client() -> Result<Hub> {
    Hub::from_env().map_err(|e| AmflowError::Hub(Box::new(e)))
}

fn fetch(hub: &Hub, weights: &HubWeights, file: &str) -> Result<amflow_hub::Fetched> {
    hub.fetch(&weights.hub, weights.revision_to_load(), file)
        .map_err(|e| AmflowError::Hub(Box::new(e)))
}

/// The architecture in `config.json` of `weights`' repository, and the commit it was read at.
pub fn architecture(weights: &HubWeights) -> Result<(VitConfig, String)> {
    let fetched = fetch(&client()?, weights, HF_CONFIG_FILE)?;
    let text = std::fs::read_to_string(&fetched.path)
        .map_err(|e| AmflowError::io(fetched.path.clone(), e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| AmflowError::ConfigParse {
            path: fetched.path.clone(),
            reason: e.to_string(),
        })?;
    let arch = VitConfig::from_hf_config(&json).map_err(|e| AmflowError::ConfigParse {
        path: fetched.path.clone(),
        reason: format!("{}'s config.json: {e}", weights.hub),
    })?;
    Ok((arch, fetched.commit))
}

/// Fetches the backbone (both files at one commit) and checks `configured` against its
/// `config.json`: a differing field is [`AmflowError::HubArchitecture`] naming it.
pub fn fetch_backbone(weights: &HubWeights, configured: &VitConfig) -> Result<HubBackbone> {
    let (arch, commit) = architecture(weights)?;
    if let Some((field, configured, hub)) = configured.first_difference(&arch) {
        return Err(AmflowError::HubArchitecture {
            repo: weights.hub.clone(),
            field,
            configured,
            hub,
        });
    }
    // The weights of the commit config.json came from, even if the branch moved meanwhile.
    let pinned = HubWeights {
        commit: Some(commit.clone()),
        ..weights.clone()
    };
    let file = fetch(&client()?, &pinned, HF_WEIGHTS_FILE)?;
    Ok(HubBackbone {
        arch,
        weights: file.path,
        commit,
    })
}
