//! The model configuration (TOML via serde) and its named presets.
//!
//! A [`ModelConfig`] fixes everything that builds an [`AmFlowModel`](crate::model::AmFlowModel):
//! the frozen backbone and where its weights come from, the input size, the adapters, the AM
//! flow, the temporal processing modules and which blocks are temporal (`temporal_blocks`,
//! "AM/12", "AM/2(1,12)" or a list). A checkpoint stores its config, so that it alone rebuilds
//! its model.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backbone::{BackboneFamily, BackbonePrecision, PosInterpolation, VitConfig};
use crate::error::{AmflowError, Result};
use crate::flow::{AligningEncoderConfig, AmFlowConfig};
use crate::nn::Activation;
use crate::tpm::{TpmConfig, TpmKind};

/// Where the frozen backbone's weights come from.
///
/// In TOML: `{ random = { seed = S } }`, `{ file = { path = P } }`,
/// `{ embedded = { name = N } }`, or `{ hub = "org/name" }` with optional `revision` (a branch,
/// tag or commit; default `main`) and `commit` (the commit the revision resolved to, recorded by
/// amflow when it loads the weights, so that a checkpoint names exactly the weights it was
/// trained on).
#[derive(Debug, Clone, PartialEq)]
pub enum BackboneWeights {
    /// Deterministic random weights (tests, from-scratch baselines).
    Random {
        /// The seed.
        seed: u64,
    },
    /// A `transformers` `model.safetensors` file. A relative path is resolved against the
    /// directory of the config file that names it.
    File {
        /// The file.
        path: PathBuf,
    },
    /// Weights compiled into amflow (the project's own small pretrained models).
    Embedded {
        /// Which.
        name: EmbeddedBackbone,
    },
    /// `model.safetensors` and `config.json` of a Hugging Face Hub repository, through the
    /// shared Hugging Face cache (`amflow-hub`; `HF_HOME`, `HF_HUB_CACHE`, `HF_ENDPOINT`,
    /// `HF_HUB_OFFLINE`, `HF_TOKEN`).
    Hub(HubWeights),
}

/// A Hub repository's weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubWeights {
    /// Repository id, e.g. `facebook/dinov2-base`.
    pub hub: String,
    /// Branch, tag or commit (default `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The commit the weights were loaded from; when set, it is what is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl HubWeights {
    /// The weights of `repo` at its default branch.
    pub fn new(repo: &str) -> Self {
        Self {
            hub: repo.into(),
            revision: None,
            commit: None,
        }
    }

    /// The revision to ask for: the recorded commit, else the configured revision, else `main`.
    pub fn revision_to_load(&self) -> &str {
        self.commit
            .as_deref()
            .or(self.revision.as_deref())
            .unwrap_or("main")
    }
}

/// The serde form of [`BackboneWeights`]: one key names the kind.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum TaggedWeights {
    Random { seed: u64 },
    File { path: PathBuf },
    Embedded { name: EmbeddedBackbone },
}

impl Serialize for BackboneWeights {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BackboneWeights::Random { seed } => TaggedWeights::Random { seed: *seed }.serialize(s),
            BackboneWeights::File { path } => {
                TaggedWeights::File { path: path.clone() }.serialize(s)
            }
            BackboneWeights::Embedded { name } => {
                TaggedWeights::Embedded { name: *name }.serialize(s)
            }
            BackboneWeights::Hub(h) => h.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BackboneWeights {
    /// A table with a `hub` key is Hub weights; any other is one of the tagged kinds, whose
    /// errors (an unknown kind, a missing field) are reported as they are.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(d)?;
        let is_hub = value.as_table().is_some_and(|t| t.contains_key("hub"));
        if is_hub {
            return HubWeights::deserialize(value)
                .map(BackboneWeights::Hub)
                .map_err(|e| D::Error::custom(e.message()));
        }
        let tagged = TaggedWeights::deserialize(value).map_err(|e| {
            D::Error::custom(format!(
                "{} (weights are {{ random = {{ seed = S }} }}, {{ file = {{ path = P }} }}, \
                 {{ embedded = {{ name = N }} }} or {{ hub = \"org/name\" }})",
                e.message()
            ))
        })?;
        Ok(match tagged {
            TaggedWeights::Random { seed } => BackboneWeights::Random { seed },
            TaggedWeights::File { path } => BackboneWeights::File { path },
            TaggedWeights::Embedded { name } => BackboneWeights::Embedded { name },
        })
    }
}

impl fmt::Display for BackboneWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackboneWeights::Random { seed } => write!(f, "random (seed {seed})"),
            BackboneWeights::File { path } => write!(f, "file {}", path.display()),
            BackboneWeights::Embedded { name } => write!(f, "embedded {name:?}"),
            BackboneWeights::Hub(h) => {
                write!(
                    f,
                    "hub {}@{}",
                    h.hub,
                    h.revision.as_deref().unwrap_or("main")
                )?;
                match &h.commit {
                    Some(c) => write!(f, " (commit {c})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Backbone weights shipped inside amflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbeddedBackbone {
    /// A DINOv2-layout ViT (width 64, 4 blocks, 4 heads, patch 8, 56x56) pretrained by
    /// `amflow pretrain-image` on single synthetic frames with shape labels only
    /// (`crates/amflow/assets/synthetic-vit-s8/`, with the config that reproduces it).
    SyntheticVitS8,
}

impl EmbeddedBackbone {
    /// The `transformers`-layout safetensors bytes.
    pub fn safetensors(self) -> &'static [u8] {
        match self {
            EmbeddedBackbone::SyntheticVitS8 => {
                include_bytes!("../assets/synthetic-vit-s8/model.safetensors")
            }
        }
    }
}

/// The frozen backbone: architecture and weights.
///
/// With Hub weights `arch` may be left out of the TOML: it is then read from the repository's
/// `config.json` when the config is read (from the cache, or downloaded), and the commit it
/// came from is recorded. Given, it is checked against `config.json` when the weights load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawBackboneConfig")]
pub struct BackboneConfig {
    /// Where the weights come from.
    pub weights: BackboneWeights,
    /// The architecture.
    pub arch: VitConfig,
    /// Whether the backbone trains too (default `false`: frozen, as in the paper). Used for the
    /// from-scratch baseline of the ablation study (random weights, every backbone weight and
    /// its position embedding trained). Checkpoints of such models hold the backbone's weights.
    /// Needs `image_size` equal to the native size (the position embedding trains on its
    /// native grid).
    #[serde(default, skip_serializing_if = "is_false")]
    pub trainable: bool,
    /// Number format of the frozen backbone's matrix weights and products: `f32` (default) or
    /// `bf16` (mixed precision: bf16 weights and products, f32 elsewhere; for GPUs).
    #[serde(default, skip_serializing_if = "BackbonePrecision::is_f32")]
    pub precision: BackbonePrecision,
}

/// [`BackboneConfig`] as written, `arch` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackboneConfig {
    weights: BackboneWeights,
    #[serde(default)]
    arch: Option<VitConfig>,
    #[serde(default)]
    trainable: bool,
    #[serde(default)]
    precision: BackbonePrecision,
}

impl TryFrom<RawBackboneConfig> for BackboneConfig {
    type Error = String;

    fn try_from(raw: RawBackboneConfig) -> std::result::Result<Self, String> {
        let RawBackboneConfig {
            mut weights,
            arch,
            trainable,
            precision,
        } = raw;
        let arch = match (arch, &mut weights) {
            (Some(arch), _) => arch,
            (None, BackboneWeights::Hub(hub)) => {
                let (arch, commit) =
                    crate::backbone::hub::architecture(hub).map_err(|e| e.to_string())?;
                hub.commit = Some(commit);
                arch
            }
            (None, _) => {
                return Err(
                    "missing field `arch` (only Hub weights, `weights = { hub = \
                            \"org/name\" }`, read it from their config.json)"
                        .into(),
                )
            }
        };
        Ok(Self {
            weights,
            arch,
            trainable,
            precision,
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The adapters' settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// Bottleneck width `r`.
    pub bottleneck: usize,
}

/// Which blocks get AM flow and temporal processing units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemporalBlocks {
    /// Every block ("AM/12" for a 12-block backbone, or "all").
    All,
    /// These blocks, 1-based, ascending ("AM/2(1,12)" or `[1, 12]`; empty: none).
    List(Vec<usize>),
}

impl TemporalBlocks {
    /// Per block (0-based), whether it is temporal, for a backbone of `depth` blocks.
    pub fn resolve(&self, depth: usize) -> Result<Vec<bool>> {
        match self {
            TemporalBlocks::All => Ok(vec![true; depth]),
            TemporalBlocks::List(list) => {
                let mut mask = vec![false; depth];
                for &b in list {
                    if b == 0 || b > depth {
                        return Err(AmflowError::Config(format!(
                            "temporal block {b} is outside 1..={depth}"
                        )));
                    }
                    mask[b - 1] = true;
                }
                Ok(mask)
            }
        }
    }
}

impl fmt::Display for TemporalBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemporalBlocks::All => write!(f, "all"),
            TemporalBlocks::List(l) if l.is_empty() => write!(f, "none"),
            TemporalBlocks::List(l) => {
                let items: Vec<String> = l.iter().map(|b| b.to_string()).collect();
                write!(f, "AM/{}({})", l.len(), items.join(","))
            }
        }
    }
}

/// The largest `n` of a `temporal_blocks = "AM/n"` string (no backbone has more blocks).
pub const MAX_TEMPORAL_BLOCKS: usize = 4096;

impl FromStr for TemporalBlocks {
    type Err = AmflowError;

    /// Parses "all", "none", "AM/12" (all of a 12-block model: checked when resolved against
    /// the backbone by [`ModelConfig::validate`]), "AM/2(1,12)" or "1,12".
    fn from_str(s: &str) -> Result<Self> {
        let bad = || AmflowError::Config(format!("cannot parse temporal_blocks `{s}`"));
        let s = s.trim();
        match s {
            "all" => return Ok(Self::All),
            "none" | "" => return Ok(Self::List(vec![])),
            _ => {}
        }
        let parse_list = |body: &str| -> Result<Vec<usize>> {
            let mut v: Vec<usize> = body
                .split(',')
                .map(|x| x.trim().parse::<usize>().map_err(|_| bad()))
                .collect::<Result<_>>()?;
            v.sort_unstable();
            v.dedup();
            Ok(v)
        };
        if let Some(rest) = s.strip_prefix("AM/") {
            return match rest.split_once('(') {
                None => {
                    let n: usize = rest.parse().map_err(|_| bad())?;
                    // `n` sizes the list: bound it before the backbone can check it.
                    if n > MAX_TEMPORAL_BLOCKS {
                        return Err(AmflowError::Config(format!(
                            "`{s}`: at most {MAX_TEMPORAL_BLOCKS} blocks"
                        )));
                    }
                    Ok(Self::List((1..=n).collect()))
                }
                Some((n, body)) => {
                    let n: usize = n.parse().map_err(|_| bad())?;
                    let body = body.strip_suffix(')').ok_or_else(bad)?;
                    let list = parse_list(body)?;
                    if list.len() != n {
                        return Err(AmflowError::Config(format!(
                            "`{s}` announces {n} blocks but lists {}",
                            list.len()
                        )));
                    }
                    Ok(Self::List(list))
                }
            };
        }
        Ok(Self::List(parse_list(s)?))
    }
}

impl Serialize for TemporalBlocks {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TemporalBlocks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<usize>),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Raw::List(mut l) => {
                l.sort_unstable();
                l.dedup();
                Ok(TemporalBlocks::List(l))
            }
        }
    }
}

/// Everything that builds an AM Flow model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Number of classes `C`. Left out (or 0) in a training config, it is the training data's
    /// class count; a model is never built with 0.
    #[serde(default)]
    pub num_classes: usize,
    /// Frames per clip the model is built for (`T`; the transformer TPM's position embedding).
    pub num_frames: usize,
    /// Input frame size `[height, width]` in pixels.
    pub image_size: [usize; 2],
    /// Seed of the trainable parts' initialisation.
    #[serde(default)]
    pub seed: u64,
    /// Which blocks are temporal.
    pub temporal_blocks: TemporalBlocks,
    /// The frozen backbone.
    pub backbone: BackboneConfig,
    /// The adapters.
    pub adapter: AdapterConfig,
    /// The AM flow.
    pub am_flow: AmFlowConfig,
    /// The temporal processing modules.
    pub tpm: TpmConfig,
}

impl ModelConfig {
    /// Parses a TOML config. Relative weight paths are resolved against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: Option<&Path>) -> Result<Self> {
        let mut config: ModelConfig =
            toml::from_str(text).map_err(|e| AmflowError::ConfigParse {
                path: "<string>".into(),
                reason: one_line_toml_error(text, &e),
            })?;
        if let (Some(base), BackboneWeights::File { path }) =
            (base_dir, &mut config.backbone.weights)
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML config file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AmflowError::io(path, e))?;
        Self::from_toml_str(&text, path.parent()).map_err(|e| match e {
            AmflowError::ConfigParse { reason, .. } => AmflowError::ConfigParse {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a model config always serialises to TOML")
    }

    /// Checks that the configuration can build a model: [`ModelConfig::validate`], and a
    /// class count (which only training fills in when it is left out).
    pub fn validate_complete(&self) -> Result<()> {
        if self.num_classes == 0 {
            return Err(AmflowError::Config(
                "num_classes is not set (only training takes it from the data); set \
                 `num_classes`"
                    .into(),
            ));
        }
        self.validate()
    }

    /// Checks the configuration for consistency; `num_classes` may still be 0 (not set).
    pub fn validate(&self) -> Result<()> {
        let arch = &self.backbone.arch;
        arch.validate()?;
        let err = |m: String| Err(AmflowError::Config(m));
        if self.num_frames == 0 {
            return err("num_frames must be at least 1".into());
        }
        let [h, w] = self.image_size;
        if h < arch.patch_size || w < arch.patch_size {
            return err(format!(
                "image_size {h}x{w} is smaller than one {p}x{p} patch",
                p = arch.patch_size
            ));
        }
        if self.adapter.bottleneck == 0 {
            return err("adapter bottleneck must be at least 1".into());
        }
        if let TemporalBlocks::List(list) = &self.temporal_blocks {
            if let Some(&b) = list.iter().find(|&&b| b == 0 || b > arch.num_layers) {
                return err(format!(
                    "temporal block {b} is outside 1..={} (the backbone's blocks)",
                    arch.num_layers
                ));
            }
        }
        if let Some(a) = self.am_flow.aligning_encoder() {
            a.validate()?;
        }
        self.tpm.validate(self.adapter.bottleneck)?;
        if arch.pos_interpolation == PosInterpolation::Forbid
            && (h != arch.native_image_size || w != arch.native_image_size)
        {
            return err(format!(
                "image_size {h}x{w} differs from the backbone's native {n}x{n} and position \
                 interpolation is off",
                n = arch.native_image_size
            ));
        }
        if self.backbone.trainable && !self.backbone.precision.is_f32() {
            return err(
                "a trainable backbone must be f32 (bf16 is for the frozen backbone)".into(),
            );
        }
        if self.backbone.trainable && (h != arch.native_image_size || w != arch.native_image_size) {
            return err(format!(
                "a trainable backbone needs image_size equal to its native {n}x{n} (its \
                 position embedding trains on the native grid), got {h}x{w}",
                n = arch.native_image_size
            ));
        }
        Ok(())
    }

    /// The config with Hub weights pinned to the commit `report` says they were loaded from
    /// (unchanged for other weights).
    pub fn pinned(mut self, report: Option<&crate::nn::LoadReport>) -> Self {
        if let (BackboneWeights::Hub(hub), Some(commit)) = (
            &mut self.backbone.weights,
            report.and_then(|r| r.hub_commit.as_ref()),
        ) {
            hub.commit = Some(commit.clone());
        }
        self
    }

    /// Tokens per frame `N` at the configured input size.
    pub fn tokens_per_frame(&self) -> usize {
        self.backbone
            .arch
            .num_tokens(self.image_size[0], self.image_size[1])
    }

    /// Per block, whether it is temporal.
    pub fn temporal_mask(&self) -> Result<Vec<bool>> {
        self.temporal_blocks.resolve(self.backbone.arch.num_layers)
    }
}

/// A TOML error on one line: `line L: message`.
fn one_line_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// Named configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// A 2-block, 32-wide random-weight model for tests (aligned AM flow, transformer TPM).
    Tiny,
    /// A small model for the synthetic motion data (8 frames of 56x56, 11 classes) on the
    /// embedded `synthetic-vit-s8` backbone (4 blocks, width 64, patch 8, pretrained on single
    /// synthetic frames): vanilla AM flow, transformer TPMs.
    SyntheticSmall,
    /// DINOv2 ViT-S/14, AM/12 aligned, transformer TPMs, 8 x 224², Kinetics-400.
    Dinov2S14Am12Transformer,
    /// DINOv2 ViT-B/14, AM/12 aligned, transformer TPMs, 8 x 224², Kinetics-400 (paper, Table 2).
    Dinov2B14Am12Transformer,
    /// DINOv2 ViT-L/14, AM flow on all 24 blocks (aligned), transformer TPMs, 8 x 224².
    Dinov2L14Am24Transformer,
    /// DINOv2 ViT-S/14 with registers, AM/12 aligned, transformer TPMs, 8 x 224².
    Dinov2S14RegAm12Transformer,
    /// DINOv2 ViT-B/14, AM/2(1,12) vanilla, TCN TPMs, Toyota Smarthome (paper, Table 3).
    Dinov2B14Am2VanillaTcn,
    /// CLIP ViT-B/16, AM/12 aligned, TCN TPMs, 8 x 224², Something-Something v2.
    ClipB16Am12Tcn,
    /// CLIP ViT-B/32, AM/12 aligned, transformer TPMs, 8 x 224², Kinetics-400.
    ClipB32Am12Transformer,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 9] = [
        Preset::Tiny,
        Preset::SyntheticSmall,
        Preset::Dinov2S14Am12Transformer,
        Preset::Dinov2B14Am12Transformer,
        Preset::Dinov2L14Am24Transformer,
        Preset::Dinov2S14RegAm12Transformer,
        Preset::Dinov2B14Am2VanillaTcn,
        Preset::ClipB16Am12Tcn,
        Preset::ClipB32Am12Transformer,
    ];

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::SyntheticSmall => "synthetic-small",
            Preset::Dinov2S14Am12Transformer => "dinov2-s14-am12-transformer",
            Preset::Dinov2B14Am12Transformer => "dinov2-b14-am12-transformer",
            Preset::Dinov2L14Am24Transformer => "dinov2-l14-am24-transformer",
            Preset::Dinov2S14RegAm12Transformer => "dinov2-s14-reg-am12-transformer",
            Preset::Dinov2B14Am2VanillaTcn => "dinov2-b14-am2-vanilla-tcn",
            Preset::ClipB16Am12Tcn => "clip-b16-am12-tcn",
            Preset::ClipB32Am12Transformer => "clip-b32-am12-transformer",
        }
    }

    /// Looks a preset up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The preset's configuration.
    pub fn config(self) -> ModelConfig {
        match self {
            Preset::Tiny => ModelConfig {
                num_classes: 5,
                num_frames: 4,
                image_size: [16, 16],
                seed: 0,
                temporal_blocks: TemporalBlocks::All,
                backbone: BackboneConfig {
                    weights: BackboneWeights::Random { seed: 0 },
                    trainable: false,
                    precision: BackbonePrecision::F32,
                    arch: VitConfig {
                        family: BackboneFamily::Dinov2,
                        hidden_size: 32,
                        num_layers: 2,
                        num_heads: 4,
                        mlp_dim: 64,
                        patch_size: 4,
                        native_image_size: 16,
                        num_registers: 0,
                        layer_scale: true,
                        layer_scale_init: 1.0,
                        layer_norm_eps: 1e-6,
                        activation: Activation::Gelu,
                        pos_interpolation: PosInterpolation::Bicubic,
                    },
                },
                adapter: AdapterConfig { bottleneck: 8 },
                am_flow: AmFlowConfig::Aligned(AligningEncoderConfig {
                    dim: 24,
                    ..AligningEncoderConfig::default()
                }),
                tpm: TpmConfig::new(TpmKind::Transformer),
            },
            Preset::SyntheticSmall => {
                let mut c = Preset::Tiny.config();
                c.num_classes = 11;
                c.num_frames = 8;
                c.image_size = [56, 56];
                c.backbone.arch.hidden_size = 64;
                c.backbone.arch.num_layers = 4;
                c.backbone.arch.mlp_dim = 256;
                c.backbone.arch.patch_size = 8;
                c.backbone.arch.native_image_size = 56;
                c.adapter.bottleneck = 16;
                c.am_flow = AmFlowConfig::Vanilla {};
                c.backbone.weights = BackboneWeights::Embedded {
                    name: EmbeddedBackbone::SyntheticVitS8,
                };
                c
            }
            Preset::Dinov2S14Am12Transformer => dinov2(384, 12, 6, 0, "facebook/dinov2-small"),
            Preset::Dinov2B14Am12Transformer => dinov2(768, 12, 12, 0, "facebook/dinov2-base"),
            Preset::Dinov2L14Am24Transformer => dinov2(1024, 24, 16, 0, "facebook/dinov2-large"),
            Preset::Dinov2S14RegAm12Transformer => {
                dinov2(384, 12, 6, 4, "facebook/dinov2-with-registers-small")
            }
            Preset::Dinov2B14Am2VanillaTcn => {
                let mut c = dinov2(768, 12, 12, 0, "facebook/dinov2-base");
                c.num_classes = 31;
                c.temporal_blocks = TemporalBlocks::List(vec![1, 12]);
                c.am_flow = AmFlowConfig::Vanilla {};
                c.tpm = TpmConfig::new(TpmKind::Tcn);
                c
            }
            Preset::ClipB16Am12Tcn => {
                let mut c = clip(16, "openai/clip-vit-base-patch16");
                c.num_classes = 174;
                c.tpm = TpmConfig::new(TpmKind::Tcn);
                c
            }
            Preset::ClipB32Am12Transformer => clip(32, "openai/clip-vit-base-patch32"),
        }
    }
}

/// Kinetics-400, 8 x 224², AM flow aligned on every block, transformer TPMs, around `arch`
/// with the weights of Hub repository `repo` (whose `config.json` must agree with `arch`).
fn video_preset(arch: VitConfig, bottleneck: usize, repo: &str) -> ModelConfig {
    ModelConfig {
        num_classes: 400,
        num_frames: 8,
        image_size: [224, 224],
        seed: 0,
        temporal_blocks: TemporalBlocks::All,
        backbone: BackboneConfig {
            weights: BackboneWeights::Hub(HubWeights::new(repo)),
            arch,
            trainable: false,
            precision: BackbonePrecision::F32,
        },
        adapter: AdapterConfig { bottleneck },
        am_flow: AmFlowConfig::Aligned(AligningEncoderConfig::default()),
        tpm: TpmConfig::new(TpmKind::Transformer),
    }
}

fn dinov2(width: usize, depth: usize, heads: usize, registers: usize, repo: &str) -> ModelConfig {
    let arch = VitConfig {
        family: BackboneFamily::Dinov2,
        hidden_size: width,
        num_layers: depth,
        num_heads: heads,
        mlp_dim: 4 * width,
        patch_size: 14,
        native_image_size: 518,
        num_registers: registers,
        layer_scale: true,
        layer_scale_init: 1.0,
        layer_norm_eps: 1e-6,
        activation: Activation::Gelu,
        pos_interpolation: if registers > 0 {
            PosInterpolation::BicubicAntialias
        } else {
            PosInterpolation::Bicubic
        },
    };
    video_preset(arch, width / 4, repo)
}

fn clip(patch: usize, repo: &str) -> ModelConfig {
    let arch = VitConfig {
        family: BackboneFamily::Clip,
        hidden_size: 768,
        num_layers: 12,
        num_heads: 12,
        mlp_dim: 3072,
        patch_size: patch,
        native_image_size: 224,
        num_registers: 0,
        layer_scale: false,
        layer_scale_init: 1.0,
        layer_norm_eps: 1e-5,
        activation: Activation::QuickGelu,
        pos_interpolation: PosInterpolation::Bicubic,
    };
    video_preset(arch, 192, repo)
}
