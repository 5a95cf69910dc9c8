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
    pub fn from_hf_config(json: &serde_json::Value) -> Result<Self> {
        let model_type = json
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| AmflowError::Config("config.json has no model_type".into()))?;
        let get = |v: &serde_json::Value, k: &str| -> Result<f64> {
            v.get(k)
                .and_then(|x| x.as_f64())
                .ok_or_else(|| AmflowError::Config(format!("config.json lacks `{k}`")))
        };
        match model_type {
            "dinov2" | "dinov2_with_registers" => {
                let hidden = get(json, "hidden_size")? as usize;
                let act = json
                    .get("hidden_act")
                    .and_then(|v| v.as_str())
                    .unwrap_or("gelu");
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
                let registers = model_type == "dinov2_with_registers";
                Ok(Self {
                    family: BackboneFamily::Dinov2,
                    hidden_size: hidden,
                    num_layers: get(json, "num_hidden_layers")? as usize,
                    num_heads: get(json, "num_attention_heads")? as usize,
                    mlp_dim: (hidden as f64 * get(json, "mlp_ratio").unwrap_or(4.0)) as usize,
                    patch_size: get(json, "patch_size")? as usize,
                    native_image_size: get(json, "image_size")? as usize,
                    num_registers: if registers {
                        get(json, "num_register_tokens")? as usize
                    } else {
                        0
                    },
                    layer_scale: true,
                    layer_scale_init: get(json, "layerscale_value").unwrap_or(1.0),
                    layer_norm_eps: get(json, "layer_norm_eps").unwrap_or(1e-6),
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
                let act = json
                    .get("hidden_act")
                    .and_then(|v| v.as_str())
                    .unwrap_or("quick_gelu");
                let activation = match act {
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
                    hidden_size: get(json, "hidden_size")? as usize,
                    num_layers: get(json, "num_hidden_layers")? as usize,
                    num_heads: get(json, "num_attention_heads")? as usize,
                    mlp_dim: get(json, "intermediate_size")? as usize,
                    patch_size: get(json, "patch_size")? as usize,
                    native_image_size: get(json, "image_size")? as usize,
                    num_registers: 0,
                    layer_scale: false,
                    layer_scale_init: 1.0,
                    layer_norm_eps: get(json, "layer_norm_eps").unwrap_or(1e-5),
                    activation,
                    pos_interpolation: PosInterpolation::Bicubic,
                })
            }
            other => Err(AmflowError::Config(format!(
                "config.json model_type `{other}` is not a supported backbone"
            ))),
        }
    }
}
