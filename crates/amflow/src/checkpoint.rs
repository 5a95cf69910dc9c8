//! Checkpoints: a safetensors file holding the trainable tensors under stable names, with the
//! configuration that built the model in its metadata, so that the checkpoint alone rebuilds
//! the model (`docs/checkpoint-format.md`).
//!
//! Tensor names are the parameter paths of [`Additions`](crate::model::Additions), e.g.
//! `blocks.0.attn_adapter.down.weight`, in PyTorch layouts (`[out, in]` for linear weights).
//! Metadata keys: `format` = `amflow-checkpoint`, `format_version` = `1`, `config` = the model
//! config as TOML, and any extra keys the caller adds (training state, for instance).
//! Files are written atomically.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use crate::config::ModelConfig;
use crate::error::{AmflowError, Result};
use crate::host_tensor::{HostTensor, TensorFile};
use crate::model::{load_backbone, Additions, AmFlowModel};
use crate::nn::{FileSource, LoadReport, PathStack, TensorSource, VarBuilder};

/// The `format` metadata value.
pub const FORMAT: &str = "amflow-checkpoint";
/// The `format_version` metadata value.
pub const FORMAT_VERSION: &str = "1";

/// Collects float parameters by dotted path. Enum variants are not part of the path: the
/// variant is fixed by the configuration.
struct PathCollector {
    path: PathStack,
    out: BTreeMap<String, HostTensor>,
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out
            .insert(self.path.path(), HostTensor::from_tensor(&param.val()));
    }
}

/// The trainable tensors of `additions` by checkpoint name.
pub fn named_tensors(additions: &Additions) -> BTreeMap<String, HostTensor> {
    let mut collector = PathCollector {
        path: PathStack::default(),
        out: BTreeMap::new(),
    };
    additions.visit(&mut collector);
    collector.out
}

/// Saves the model's trainable tensors and config to `path` (atomically), with `extra`
/// metadata entries.
pub fn save(model: &AmFlowModel, path: &Path, extra: &BTreeMap<String, String>) -> Result<()> {
    let mut metadata = extra.clone();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("config".into(), model.config.to_toml());
    TensorFile {
        tensors: named_tensors(&model.additions),
        metadata,
    }
    .write_atomic(path)
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Loaded {
    /// The rebuilt model.
    pub model: AmFlowModel,
    /// The checkpoint's metadata (config included).
    pub metadata: BTreeMap<String, String>,
    /// The backbone's load report, when its weights came from a file.
    pub backbone_report: Option<LoadReport>,
}

/// Reads the config stored in a checkpoint file.
pub fn read_config(file: &TensorFile, path: &Path) -> Result<ModelConfig> {
    let bad = |reason: String| AmflowError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    match file.metadata.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => return Err(bad(format!("format is `{other}`, expected `{FORMAT}`"))),
        None => return Err(bad("no `format` metadata: not an amflow checkpoint".into())),
    }
    let version = file.metadata.get("format_version").map(String::as_str);
    if version != Some(FORMAT_VERSION) {
        return Err(bad(format!(
            "format_version {version:?} is not supported (expected {FORMAT_VERSION})"
        )));
    }
    let text = file
        .metadata
        .get("config")
        .ok_or_else(|| bad("no `config` metadata".into()))?;
    ModelConfig::from_toml_str(text, path.parent()).map_err(|e| bad(format!("stored config: {e}")))
}

/// Loads a checkpoint: its config, the backbone that config names, and the trainable tensors.
/// A missing, unexpected or mis-shaped tensor is an error naming it.
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let file = TensorFile::read(path)?;
    let config = read_config(&file, path)?;
    let (backbone, backbone_report) = load_backbone(&config, device)?;
    let metadata = file.metadata.clone();
    let additions = additions_from_file(file, &config, device)?;
    Ok(Loaded {
        model: AmFlowModel::from_parts(&config, backbone, additions)?,
        metadata,
        backbone_report,
    })
}

/// Builds the additions of `config` from the tensors of `file`, every one of which must be used.
pub fn additions_from_file(
    file: TensorFile,
    config: &ModelConfig,
    device: &Device,
) -> Result<Additions> {
    let source = RefCell::new(FileSource::new(file));
    let additions = {
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        Additions::new(&vb, config)?
    };
    source.into_inner().finish(|_| false)?;
    Ok(additions)
}
