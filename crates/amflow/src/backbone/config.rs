//! Configuration of the frozen image ViT: its family (which fixes the weight layout and the
//! numerical conventions of section 7 of the model spec) and its sizes.

use serde::{Deserialize, Serialize};

use crate::error::{AmflowError, Result};
use crate::nn::Activation;

/// The pretrained model family; fixes the weight names and the conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneFamily {
    /// DINOv2 (`transformers` `Dinov2Model` / `Dinov2WithRegistersModel` layout): LayerScale,
    /// exact GELU, final `layernorm`.
    Dinov2,
    /// CLIP vision tower (`transformers` `CLIPVisionModel` layout): quick GELU, class embedding
    /// without patch bias, `pre_layrnorm`, final `post_layernorm`.
    Clip,
}

/// How the position embedding is resized to another patch grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PosInterpolation {
    /// PyTorch `interpolate(mode="bicubic", align_corners=False)` (plain DINOv2, CLIP).
    Bicubic,
    /// The same with `antialias=True` (DINOv2 with registers).
    BicubicAntialias,
    /// Inputs at another size than the native one are an error (CLIP without
    /// `interpolate_pos_encoding`).
    Forbid,
}

/// The frozen image ViT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    /// Weight layout and conventions.
    pub family: BackboneFamily,
    /// Token width `D`.
    pub hidden_size: usize,
    /// Number of blocks.
    pub num_layers: usize,
    /// Attention heads `h`.
    pub num_heads: usize,
    /// Hidden width of the block MLP.
    pub mlp_dim: usize,
    /// Patch size `p`.
    pub patch_size: usize,
    /// Side of the square image the position embedding was trained for.
    pub native_image_size: usize,
    /// Register tokens (DINOv2 with registers); they get no position embedding.
    #[serde(default)]
    pub num_registers: usize,
    /// Whether blocks have LayerScale (DINOv2). Its initial value for random weights is
    /// `layer_scale_init`.
    #[serde(default)]
    pub layer_scale: bool,
    /// Initial LayerScale value for random weights.
    #[serde(default = "default_layer_scale_init")]
    pub layer_scale_init: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// MLP activation.
    pub activation: Activation,
    /// Position-embedding resizing rule.
    pub pos_interpolation: PosInterpolation,
}

fn default_layer_scale_init() -> f64 {
    1.0
}

impl VitConfig {
    /// Checks the sizes for consistency.
    pub fn validate(&self) -> Result<()> {
        if self.hidden_size == 0
            || self.num_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_heads)
        {
            return Err(AmflowError::Config(format!(
                "backbone hidden_size {} must be a positive multiple of num_heads {}",
                self.hidden_size, self.num_heads
            )));
        }
        if self.patch_size == 0 || self.native_image_size < self.patch_size {
            return Err(AmflowError::Config(format!(
                "backbone patch_size {} must be in 1..=native_image_size {}",
                self.patch_size, self.native_image_size
            )));
        }
        if self.num_layers == 0 {
            return Err(AmflowError::Config(
                "backbone needs at least one block".into(),
            ));
        }
        Ok(())
    }

    /// Head width `d = D / h`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Side of the native patch grid.
    pub fn native_grid(&self) -> usize {
        self.native_image_size / self.patch_size
    }

    /// Tokens per frame `N` at an input of `height x width`: class + registers + patches.
    pub fn num_tokens(&self, height: usize, width: usize) -> usize {
        1 + self.num_registers + (height / self.patch_size) * (width / self.patch_size)
    }

    /// Reads the architecture from a `transformers` `config.json` (model types `dinov2`,
    /// `dinov2_with_registers`, `clip_vision_model`, or `clip`, whose `vision_config` is used).
    /// A key the file leaves out takes the `transformers` class default
    /// (`Dinov2Config`, `Dinov2WithRegistersConfig`, `CLIPVisionConfig`), as `from_pretrained`
    /// does.
    pub fn from_hf_config(json: &serde_json::Value) -> Result<Self> {
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| AmflowError::Config("config.json has no model_type".into()))?;
        let num = |k: &str, default: f64| -> Result<f64> {
            match json.get(k) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v.as_f64().ok_or_else(|| {
                    AmflowError::Config(format!("config.json `{k}` is not a number: {v}"))
                }),
            }
        };
        let count = |k: &str, default: usize| -> Result<usize> {
            let v = num(k, default as f64)?;
            if v < 0.0 || v.fract() != 0.0 || v > 1e9 {
                return Err(AmflowError::Config(format!(
                    "config.json `{k}` = {v} is not a count"
                )));
            }
            Ok(v as usize)
        };
        let text = |k: &str, default: &'static str| -> String {
            json.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or(default)
                .to_string()
        };
        match model_type {
            "dinov2" | "dinov2_with_registers" => {
                let registers = model_type == "dinov2_with_registers";
                let act = text("hidden_act", "gelu");
                if act != "gelu" {
                    return Err(AmflowError::Config(format!(
                        "DINOv2 hidden_act `{act}` is not supported (only `gelu`)"
                    )));
                }
                if json.get("use_swiglu_ffn").and_then(|v| v.as_bool()) == Some(true) {
                    return Err(AmflowError::Config(
                        "DINOv2 with SwiGLU MLP (ViT-g) is not supported".into(),
                    ));
                }
                if json.get("qkv_bias").and_then(|v| v.as_bool()) == Some(false) {
                    return Err(AmflowError::Config(
                        "DINOv2 without query/key/value biases (`qkv_bias = false`) is not \
                         supported"
                            .into(),
                    ));
                }
                let hidden = count("hidden_size", 768)?;
                Ok(Self {
                    family: BackboneFamily::Dinov2,
                    hidden_size: hidden,
                    num_layers: count("num_hidden_layers", 12)?,
                    num_heads: count("num_attention_heads", 12)?,
                    mlp_dim: (hidden as f64 * num("mlp_ratio", 4.0)?) as usize,
                    patch_size: count("patch_size", if registers { 16 } else { 14 })?,
                    native_image_size: count("image_size", 224)?,
                    num_registers: if registers {
                        count("num_register_tokens", 4)?
                    } else {
                        0
                    },
                    layer_scale: true,
                    layer_scale_init: num("layerscale_value", 1.0)?,
                    layer_norm_eps: num("layer_norm_eps", 1e-6)?,
                    activation: Activation::Gelu,
                    pos_interpolation: if registers {
                        PosInterpolation::BicubicAntialias
                    } else {
                        PosInterpolation::Bicubic
                    },
                })
            }
            "clip" => {
                let vision = json.get("vision_config").ok_or_else(|| {
                    AmflowError::Config("CLIP config.json has no vision_config".into())
                })?;
                let mut v = vision.clone();
                v["model_type"] = "clip_vision_model".into();
                Self::from_hf_config(&v)
            }
            "clip_vision_model" => {
                let activation = match text("hidden_act", "quick_gelu").as_str() {
                    "quick_gelu" => Activation::QuickGelu,
                    "gelu" => Activation::Gelu,
                    other => {
                        return Err(AmflowError::Config(format!(
                            "CLIP hidden_act `{other}` is not supported"
                        )))
                    }
                };
                Ok(Self {
                    family: BackboneFamily::Clip,
                    hidden_size: count("hidden_size", 768)?,
                    num_layers: count("num_hidden_layers", 12)?,
                    num_heads: count("num_attention_heads", 12)?,
                    mlp_dim: count("intermediate_size", 3072)?,
                    patch_size: count("patch_size", 32)?,
                    native_image_size: count("image_size", 224)?,
                    num_registers: 0,
                    layer_scale: false,
                    layer_scale_init: 1.0,
                    layer_norm_eps: num("layer_norm_eps", 1e-5)?,
                    activation,
                    pos_interpolation: PosInterpolation::Bicubic,
                })
            }
            other => Err(AmflowError::Config(format!(
                "config.json model_type `{other}` is not a supported backbone"
            ))),
        }
    }

    /// The first field in which `self` (a config's `backbone.arch`) differs from `hub` (read
    /// from `config.json`), as `(field, this value, config.json's key and value)`. Not
    /// compared: what only seeds random weights (`layer_scale_init`) and the resizing rule
    /// (`pos_interpolation`, a choice of the user's).
    pub fn first_difference(&self, hub: &VitConfig) -> Option<(&'static str, String, String)> {
        macro_rules! cmp {
            ($($field:ident => $key:literal),* $(,)?) => {
                $(
                    if self.$field != hub.$field {
                        return Some((
                            stringify!($field),
                            format!("{:?}", self.$field),
                            format!("{} -> {:?}", $key, hub.$field),
                        ));
                    }
                )*
            };
        }
        cmp!(
            family => "model_type",
            hidden_size => "hidden_size",
            num_layers => "num_hidden_layers",
            num_heads => "num_attention_heads",
            mlp_dim => "mlp_ratio / intermediate_size",
            patch_size => "patch_size",
            native_image_size => "image_size",
            num_registers => "num_register_tokens",
            layer_scale => "model_type",
            layer_norm_eps => "layer_norm_eps",
            activation => "hidden_act",
        );
        None
    }
}
