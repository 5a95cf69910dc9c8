//! Checkpoints: a safetensors file holding the trainable tensors under stable names, with the
//! configuration that built the model in its metadata, so that the checkpoint alone rebuilds
//! the model (`docs/checkpoint-format.md`).
//!
//! Tensor names are the parameter paths of [`Additions`](crate::model::Additions), e.g.
//! `blocks.0.attn_adapter.down.weight`, in PyTorch layouts (`[out, in]` for linear weights).
//! With a trainable backbone (`backbone.trainable`), its parameters are stored too, under
//! `backbone.<module path>`.
//! Metadata keys: `format` = `amflow-checkpoint`, `format_version` = `1`, `config` = the model
//! config as TOML, and any extra keys the caller adds (training state, for instance).
//! Files are written atomically.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::backbone::Vit;
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

/// The float parameters of `module` by dotted path.
pub fn named_params<M: Module>(module: &M) -> BTreeMap<String, HostTensor> {
    let mut collector = PathCollector {
        path: PathStack::default(),
        out: BTreeMap::new(),
    };
    module.visit(&mut collector);
    collector.out
}

/// The trainable tensors of `additions` by checkpoint name.
pub fn named_tensors(additions: &Additions) -> BTreeMap<String, HostTensor> {
    named_params(additions)
}

/// The prefix of the backbone's tensors in checkpoints of models with a trainable backbone.
pub const BACKBONE_PREFIX: &str = "backbone.";

/// The model's trained tensors by checkpoint name: the additions, and with a trainable
/// backbone its parameters under [`BACKBONE_PREFIX`] (module paths, e.g.
/// `backbone.blocks.0.attention.q.weight`).
pub fn trained_tensors(model: &AmFlowModel) -> BTreeMap<String, HostTensor> {
    let mut tensors = named_tensors(&model.additions);
    if model.config.backbone.trainable {
        for (name, t) in named_params(&model.backbone) {
            tensors.insert(format!("{BACKBONE_PREFIX}{name}"), t);
        }
    }
    tensors
}

/// Replaces every float parameter of `module` by the tensor of the same path in `tensors`,
/// keeping whether it requires a gradient. A missing or mis-shaped tensor is an error naming
/// it ([`AmflowError::MissingTensor`], [`AmflowError::ShapeMismatch`]); so is a tensor of
/// `tensors` that `module` does not have ([`AmflowError::UnexpectedTensor`]). Errors name the
/// tensors as the file does: `prefix` + path.
pub fn assign_params<M: Module>(
    module: M,
    tensors: &BTreeMap<String, HostTensor>,
    prefix: &str,
) -> Result<M> {
    let mut assigner = PathAssigner {
        prefix,
        path: PathStack::default(),
        tensors,
        used: 0,
        error: None,
    };
    let module = module.map(&mut assigner);
    if let Some(err) = assigner.error {
        return Err(err);
    }
    if assigner.used != tensors.len() {
        let expected = named_params(&module);
        if let Some((name, t)) = tensors.iter().find(|(k, _)| !expected.contains_key(*k)) {
            return Err(AmflowError::UnexpectedTensor {
                name: format!("{prefix}{name}"),
                shape: t.shape.clone(),
            });
        }
    }
    Ok(module)
}

struct PathAssigner<'a> {
    prefix: &'a str,
    path: PathStack,
    tensors: &'a BTreeMap<String, HostTensor>,
    used: usize,
    error: Option<AmflowError>,
}

impl ModuleMapper for PathAssigner<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let name = self.path.path();
        let expected = param.val().dims().to_vec();
        let Some(t) = self.tensors.get(&name) else {
            self.error = Some(AmflowError::MissingTensor {
                name: format!("{}{name}", self.prefix),
                expected,
            });
            return param;
        };
        if t.shape != expected {
            self.error = Some(AmflowError::ShapeMismatch {
                name: format!("{}{name}", self.prefix),
                expected,
                found: t.shape.clone(),
            });
            return param;
        }
        self.used += 1;
        param.map(|p| {
            let grad = p.is_require_grad();
            let fresh = Tensor::<D>::from_data(
                TensorData::new(t.data.clone(), t.shape.clone()),
                &p.device(),
            );
            if grad {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }
}

/// Saves the model's trained tensors ([`trained_tensors`]) and config to `path`
/// (atomically), with `extra` metadata entries.
pub fn save(model: &AmFlowModel, path: &Path, extra: &BTreeMap<String, String>) -> Result<()> {
    let mut metadata = extra.clone();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("config".into(), model.config.to_toml());
    TensorFile {
        tensors: trained_tensors(model),
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

/// Loads a checkpoint: its config, the backbone that config names (with a trainable backbone,
/// its trained weights from the file), and the trainable tensors.
/// A missing, unexpected or mis-shaped tensor is an error naming it.
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let file = TensorFile::read(path)?;
    let config = read_config(&file, path)?;
    let metadata = file.metadata.clone();
    let (backbone, backbone_report, additions) = model_parts_from_file(file, &config, device)?;
    let config = config.pinned(backbone_report.as_ref());
    Ok(Loaded {
        model: AmFlowModel::from_parts(&config, backbone, additions)?,
        metadata,
        backbone_report,
    })
}

/// The backbone and additions of `config` from a checkpoint's tensors (`file`):
/// the backbone's configured weights, overwritten by the file's [`BACKBONE_PREFIX`] tensors
/// when the backbone is trainable, and the additions from the rest.
pub fn model_parts_from_file(
    mut file: TensorFile,
    config: &ModelConfig,
    device: &Device,
) -> Result<(Vit, Option<LoadReport>, Additions)> {
    let (backbone, report) = load_backbone(config, device)?;
    let backbone_tensors: BTreeMap<String, HostTensor> = file
        .tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(BACKBONE_PREFIX)
                .map(|n| (n.to_string(), v.clone()))
        })
        .collect();
    file.tensors.retain(|k, _| !k.starts_with(BACKBONE_PREFIX));
    let backbone = match (config.backbone.trainable, backbone_tensors.is_empty()) {
        (true, _) => assign_params(backbone, &backbone_tensors, BACKBONE_PREFIX)?,
        (false, _) => match backbone_tensors.iter().next() {
            // A frozen backbone comes from its configured weights, never from a checkpoint.
            Some((name, t)) => {
                return Err(AmflowError::UnexpectedTensor {
                    name: format!("{BACKBONE_PREFIX}{name}"),
                    shape: t.shape.clone(),
                })
            }
            None => backbone,
        },
    };
    let additions = additions_from_file(file, config, device)?;
    Ok((backbone, report, additions))
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
