//! The training configuration (TOML). Every key can be overridden from the command line with
//! `section.key=value` (the value is parsed as TOML, e.g. `optim.lr=3e-4`,
//! `data.synthetic.camera.pan=0.02`, `model.temporal_blocks="AM/1(4)"`); an unknown key is an
//! error naming it.

use std::path::{Path, PathBuf};

use amflow::{ModelConfig, Preset};
use amflow_video::dataset::{FileDatasetConfig, ManifestSpec};
use amflow_video::synthetic::SyntheticMotionConfig;
use amflow_video::BadInputPolicy;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::mixing::MixConfig;
use crate::optim::AdamWConfig;
use crate::step::GradClip;

/// The model to train: a preset name, a model config file, or an inline `[model]` table
/// (a whole config, or `preset = "name"` with the keys that differ from that preset).
///
/// A name is a file when it ends in `.toml` or contains a `/` (`./tiny` names a file called
/// `tiny`), and a preset otherwise; an unknown preset is an error listing the presets, never a
/// silent fall-back to a file of that name, and a file never shadows a preset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelChoice {
    /// A full model config.
    Inline(Box<ModelConfig>),
    /// A preset name or a path to a model config (`.toml`).
    Named(String),
}

impl<'de> Deserialize<'de> for ModelChoice {
    /// A string is a name, a table a model config whose own errors (an unknown key, a missing
    /// one) are reported as they are, not as "no variant matched".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ChoiceVisitor;
        impl<'de> serde::de::Visitor<'de> for ChoiceVisitor {
            type Value = ModelChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a preset name, a model config file or a [model] table")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(ModelChoice::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                use serde::de::Error;
                let mut table =
                    toml::Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if let Some(name) = table.remove("preset") {
                    let name = name
                        .as_str()
                        .ok_or_else(|| A::Error::custom("`model.preset` must be a preset name"))?
                        .to_string();
                    table = preset_with_overrides(&name, table).map_err(A::Error::custom)?;
                }
                let config = ModelConfig::deserialize(toml::Value::Table(table))
                    .map_err(|e| A::Error::custom(e.message()))?;
                Ok(ModelChoice::Inline(Box::new(config)))
            }
        }
        d.deserialize_any(ChoiceVisitor)
    }
}

/// A `[model]` table with `preset = "name"`: the preset's config with the table's other keys
/// laid over it. Tables merge key by key, except those that choose a variant, which replace the
/// preset's whole: `am_flow` (by `mode`), `tpm` (by `kind`) and `backbone.weights`.
fn preset_with_overrides(
    name: &str,
    overrides: toml::Table,
) -> std::result::Result<toml::Table, String> {
    let preset = Preset::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        format!(
            "model.preset `{name}` is not a preset ({})",
            names.join(", ")
        )
    })?;
    let mut base: toml::Table = toml::from_str(&preset.config().to_toml())
        .map_err(|e| format!("preset `{name}`: {}", e.message()))?;
    fn lay_over(base: &mut toml::Table, over: toml::Table, path: &str) {
        for (key, value) in over {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let replaces = matches!(here.as_str(), "am_flow" | "tpm" | "backbone.weights");
            match (base.get_mut(&key), value) {
                (Some(toml::Value::Table(b)), toml::Value::Table(o)) if !replaces => {
                    lay_over(b, o, &here)
                }
                (_, value) => {
                    base.insert(key, value);
                }
            }
        }
    }
    lay_over(&mut base, overrides, "");
    Ok(base)
}

/// What a [`ModelChoice::Named`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelName {
    /// A preset.
    Preset(Preset),
    /// A model config file.
    File(PathBuf),
}

impl ModelName {
    /// Reads a name: a path when it looks like one (`.toml` at the end or a `/` inside),
    /// otherwise a preset.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a name that is neither a path nor a preset.
    pub fn parse(name: &str) -> Result<Self> {
        if name.ends_with(".toml") || name.contains('/') || name.contains(std::path::MAIN_SEPARATOR)
        {
            return Ok(Self::File(PathBuf::from(name)));
        }
        Preset::from_name(name).map(Self::Preset).ok_or_else(|| {
            let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
            TrainError::Config(format!(
                "model `{name}` is not a preset ({}); a config file needs a `.toml` name or a \
                 path such as `./{name}`",
                names.join(", ")
            ))
        })
    }
}

impl ModelChoice {
    /// The model config (relative file names are resolved against `base`).
    pub fn resolve(&self, base: Option<&Path>) -> Result<ModelConfig> {
        match self {
            ModelChoice::Inline(c) => {
                c.validate()?;
                Ok((**c).clone())
            }
            ModelChoice::Named(name) => match ModelName::parse(name)? {
                ModelName::Preset(p) => Ok(p.config()),
                ModelName::File(path) => {
                    let path = match base {
                        Some(b) if path.is_relative() => b.join(path),
                        _ => path,
                    };
                    Ok(ModelConfig::from_toml_file(&path)?)
                }
            },
        }
    }
}

/// Where the clips come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(clippy::large_enum_variant)] // one per run
pub enum DataConfig {
    /// The synthetic motion data, generated in memory. The validation set uses the same
    /// settings with another seed and `val_samples` clips.
    Synthetic {
        /// Training set settings.
        #[serde(default)]
        train: SyntheticMotionConfig,
        /// Validation clips.
        #[serde(default = "default_val_samples")]
        val_samples: usize,
    },
    /// Video files listed by manifests (Kinetics-400, SSv2, Toyota Smarthome, path-label lists).
    Files {
        /// Training manifest.
        train: ManifestSpec,
        /// Validation manifest.
        val: ManifestSpec,
        /// Training clip reading and transforms.
        #[serde(default)]
        train_clips: FileDatasetConfig,
        /// Validation clip reading and transforms (set `split = "test"` for multi-view).
        #[serde(default)]
        val_clips: FileDatasetConfig,
    },
}

fn default_val_samples() -> usize {
    256
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Epochs.
    pub epochs: u64,
    /// Clips per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub accumulate: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine decay.
    pub min_lr: f64,
    /// Warm-up length in epochs (fractions allowed).
    pub warmup_epochs: f64,
    /// Maximum global gradient L2 norm, or `"off"`.
    pub clip_grad_norm: GradClip,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// AdamW's other hyper-parameters.
    pub adamw: AdamWConfig,
    /// Mixup / CutMix of the training clips (off by default; `crate::mixing`).
    pub mix: MixConfig,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 16,
            accumulate: 1,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_epochs: 1.0,
            clip_grad_norm: GradClip::MaxNorm(1.0),
            label_smoothing: 0.1,
            adamw: AdamWConfig::default(),
            mix: MixConfig::default(),
        }
    }
}

/// Data loading settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderSettings {
    /// Decoding threads (0: one per core).
    pub workers: usize,
    /// Batches decoded ahead (0: twice the workers).
    pub prefetch: usize,
    /// What a broken or missing video does: `skip` (warn, count, replace) or `fail`.
    pub bad_input: BadInputPolicy,
}

impl Default for LoaderSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            prefetch: 0,
            bad_input: BadInputPolicy::Skip,
        }
    }
}

/// Which validation metric picks the best checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectBy {
    /// Top-1 accuracy.
    Top1,
    /// Mean class accuracy (Toyota Smarthome's metric).
    MeanClassAccuracy,
}

/// A training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of the data order and augmentation (the model's init seed is `model.seed`).
    #[serde(default)]
    pub seed: u64,
    /// The model.
    pub model: ModelChoice,
    /// The data.
    pub data: DataConfig,
    /// Optimisation.
    #[serde(default)]
    pub optim: OptimConfig,
    /// Data loading.
    #[serde(default)]
    pub loader: LoaderSettings,
    /// Save `last` every this many optimizer steps as well as at each epoch's end (0: epochs only).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Read the training loss and accuracy back from the device every this many optimizer
    /// steps (and at each epoch's end and checkpoint); between, they accumulate on the device
    /// so that a GPU step waits for nothing but the clipping norm. The progress bar and
    /// TensorBoard's `train/loss` show the mean over each interval.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Metric for the `best` checkpoint.
    #[serde(default = "default_select")]
    pub select_by: SelectBy,
}

fn default_log_every() -> u64 {
    10
}

fn default_select() -> SelectBy {
    SelectBy::Top1
}

impl TrainConfig {
    /// Parses TOML text, applying `overrides` (`a.b.c=value`) first.
    pub fn from_toml(text: &str, overrides: &[String]) -> Result<Self> {
        Self::from_toml_in(text, overrides, None)
    }

    /// [`TrainConfig::from_toml`] with relative model files resolved against `base`. An
    /// override of a `model.` key on a model named by a preset or file first expands that
    /// model into an inline table (`model = "synthetic-small"` with `--set model.num_classes=3`).
    fn from_toml_in(text: &str, overrides: &[String], base: Option<&Path>) -> Result<Self> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| TrainError::Config(e.message().replace('\n', " ")))?;
        for o in overrides {
            if o.trim_start().starts_with("model.") {
                expand_named_model(&mut value, base)?;
            }
            apply_override(&mut value, o)?;
        }
        value
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(e.message().replace('\n', " ")))
    }

    /// Reads a TOML file with overrides; relative model paths are resolved against its folder.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut config = Self::from_toml_in(&text, overrides, path.parent())?;
        if let (ModelChoice::Named(name), Some(base)) = (&config.model, path.parent()) {
            if let ModelName::File(file) = ModelName::parse(name)? {
                if file.is_relative() {
                    let joined = base.join(file);
                    config.model = ModelChoice::Named(joined.to_string_lossy().into_owned());
                }
            }
        }
        Ok(config)
    }

    /// As TOML, with the model config inlined (what a run directory records).
    pub fn resolved(&self) -> Result<Self> {
        let mut c = self.clone();
        c.model = ModelChoice::Inline(Box::new(self.model.resolve(None)?));
        Ok(c)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a training config serialises to TOML")
    }
}

impl TrainConfig {
    /// The embedded default run: AM Flow (`synthetic-small`, vanilla AM flow on every block,
    /// transformer TPMs) on the synthetic motion data, 8 frames of 56x56, 11 motion classes.
    /// Sized to finish in a few minutes on a 2-core CPU.
    pub fn embedded_default() -> Self {
        Self {
            seed: 0,
            model: ModelChoice::Named(Preset::SyntheticSmall.name().to_string()),
            data: DataConfig::Synthetic {
                train: SyntheticMotionConfig {
                    num_samples: 1100,
                    num_frames: 8,
                    size: 56,
                    ..SyntheticMotionConfig::default()
                },
                val_samples: 330,
            },
            optim: OptimConfig {
                epochs: 6,
                batch_size: 16,
                lr: 2e-3,
                warmup_epochs: 0.5,
                ..OptimConfig::default()
            },
            loader: LoaderSettings::default(),
            checkpoint_every: 0,
            log_every: default_log_every(),
            select_by: SelectBy::Top1,
        }
    }

    /// The frame-only baseline of this run: the same frozen backbone and data, no AM flow and no
    /// temporal units (only the final-frame head and plain adapters).
    pub fn frame_only_baseline(&self) -> Result<Self> {
        let mut model = self.model.resolve(None)?;
        model.temporal_blocks = amflow::config::TemporalBlocks::List(vec![]);
        model.am_flow = amflow::flow::AmFlowConfig::Off {};
        let mut c = self.clone();
        c.model = ModelChoice::Inline(Box::new(model));
        Ok(c)
    }
}

/// Replaces a `model` given by name (preset or file) with its config as an inline table, so
/// that `model.` overrides apply to it.
fn expand_named_model(root: &mut toml::Value, base: Option<&Path>) -> Result<()> {
    let Some(toml::Value::String(name)) = root.get("model") else {
        return Ok(());
    };
    let config = ModelChoice::Named(name.clone()).resolve(base)?;
    let table: toml::Value = toml::from_str(&config.to_toml())
        .map_err(|e| TrainError::Config(format!("model `{name}`: {}", e.message())))?;
    if let Some(t) = root.as_table_mut() {
        t.insert("model".into(), table);
    }
    Ok(())
}

/// Sets `a.b.c = value` in a TOML tree; `value` is parsed as TOML, or taken as a string.
pub fn apply_override(root: &mut toml::Value, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| TrainError::Config(format!("override `{assignment}` is not key=value")))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| {
            TrainError::Config(format!("override `{key}`: `{part}` is not inside a table"))
        })?;
        if i + 1 == parts.len() {
            table.insert((*part).to_string(), value);
            return Ok(());
        }
        node = table
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Err(TrainError::Config(format!(
        "override `{assignment}` has an empty key"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_file_only_when_it_looks_like_one() {
        assert_eq!(
            ModelName::parse("tiny").unwrap(),
            ModelName::Preset(Preset::Tiny)
        );
        assert_eq!(
            ModelName::parse("tiny.toml").unwrap(),
            ModelName::File("tiny.toml".into())
        );
        assert_eq!(
            ModelName::parse("./tiny").unwrap(),
            ModelName::File("./tiny".into())
        );
        let err = ModelName::parse("tinyy").unwrap_err().to_string();
        assert!(
            err.contains("not a preset") && err.contains("synthetic-small"),
            "{err}"
        );
    }

    #[test]
    fn a_preset_takes_model_overrides() {
        let text = "model = \"synthetic-small\"\n[data.synthetic]\n";
        let c = TrainConfig::from_toml(text, &["model.num_classes=3".into()]).unwrap();
        let model = c.model.resolve(None).unwrap();
        let mut want = Preset::SyntheticSmall.config();
        want.num_classes = 3;
        assert_eq!(model, want);
        // Without a model override the name stays a name.
        let c = TrainConfig::from_toml(text, &["optim.lr=0.1".into()]).unwrap();
        assert_eq!(c.model, ModelChoice::Named("synthetic-small".into()));
        // A key the model does not have is still an error naming it.
        let e = TrainConfig::from_toml(text, &["model.num_clases=3".into()]).unwrap_err();
        assert!(e.to_string().contains("num_clases"), "{e}");
    }

    #[test]
    fn a_model_table_can_start_from_a_preset() {
        let text = r#"
[model]
preset = "dinov2-b14-am12-transformer"
num_classes = 174
num_frames = 24
am_flow = { mode = "vanilla" }
tpm = { kind = "tcn" }
[model.backbone]
precision = "bf16"
[data.synthetic]
"#;
        let c = TrainConfig::from_toml(text, &[]).unwrap();
        let got = c.model.resolve(None).unwrap();
        let mut want = Preset::Dinov2B14Am12Transformer.config();
        want.num_classes = 174;
        want.num_frames = 24;
        want.am_flow = amflow::flow::AmFlowConfig::Vanilla {};
        want.tpm = amflow::tpm::TpmConfig::new(amflow::tpm::TpmKind::Tcn);
        want.backbone.precision = amflow::backbone::BackbonePrecision::Bf16;
        assert_eq!(got, want);
        let e = TrainConfig::from_toml("[model]\npreset = \"nope\"\n[data.synthetic]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a preset"), "{e}");
        let e = TrainConfig::from_toml(
            "[model]\npreset = \"tiny\"\nnum_frame = 3\n[data.synthetic]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("num_frame"), "{e}");
    }

    #[test]
    fn a_file_named_like_a_preset_does_not_shadow_it() {
        let dir = std::env::temp_dir().join(format!("amflow-model-choice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A file called `tiny` holding another model: the name still means the preset.
        let mut other = Preset::Tiny.config();
        other.num_classes = 9;
        std::fs::write(dir.join("tiny"), other.to_toml()).unwrap();
        let choice = ModelChoice::Named("tiny".into());
        assert_eq!(choice.resolve(Some(&dir)).unwrap().num_classes, 5);
        // Written as a path, the file is read.
        let file = ModelChoice::Named("./tiny".into());
        assert_eq!(file.resolve(Some(&dir)).unwrap().num_classes, 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
