//! Writing a [`Vit`] back out in the `transformers` DINOv2 layout: the tensors of
//! `Dinov2Model` / `Dinov2WithRegistersModel` (`model.safetensors`) and their `config.json`,
//! so that a model trained here (the image pretraining of `amflow-train`) loads with
//! [`Vit::load_hf`] and with `transformers` itself.
//!
//! Names and shapes are exactly the ones [`Vit::new`] reads (reference: `transformers`'
//! `modeling_dinov2.py` and `configuration_dinov2.py`). The CLIP layout is not written.

use std::path::Path;

use burn::module::Param;
use burn::prelude::*;

use super::block::VitBlock;
use super::config::{BackboneFamily, PosInterpolation, VitConfig};
use super::vit::Vit;
use crate::error::{AmflowError, Result};
use crate::host_tensor::{HostTensor, TensorFile};
use crate::nn::{Activation, LayerNorm, Linear};

/// The weight file name of a `transformers` model directory.
pub const HF_WEIGHTS_FILE: &str = "model.safetensors";
/// The config file name of a `transformers` model directory.
pub const HF_CONFIG_FILE: &str = "config.json";

fn clip_unsupported() -> AmflowError {
    AmflowError::Config("exporting the CLIP layout is not supported (DINOv2 only)".into())
}

/// Collects named tensors.
struct Writer {
    file: TensorFile,
}

impl Writer {
    fn put(&mut self, name: String, shape: Vec<usize>, data: Vec<f32>) -> Result<()> {
        let t = HostTensor::new(shape, data)?;
        if self.file.tensors.insert(name.clone(), t).is_some() {
            return Err(AmflowError::Input(format!(
                "tensor `{name}` written twice during export"
            )));
        }
        Ok(())
    }

    fn param<const D: usize>(&mut self, name: String, p: &Param<Tensor<D>>) -> Result<()> {
        let t = HostTensor::from_tensor(&p.val());
        self.put(name, t.shape, t.data)
    }

    fn linear(&mut self, prefix: &str, l: &Linear) -> Result<()> {
        self.param(format!("{prefix}.weight"), &l.weight)?;
        if let Some(b) = &l.bias {
            self.param(format!("{prefix}.bias"), b)?;
        }
        Ok(())
    }

    fn layer_norm(&mut self, prefix: &str, n: &LayerNorm) -> Result<()> {
        self.param(format!("{prefix}.weight"), &n.weight)?;
        self.param(format!("{prefix}.bias"), &n.bias)
    }

    fn block(&mut self, prefix: &str, b: &VitBlock) -> Result<()> {
        self.layer_norm(&format!("{prefix}.norm1"), &b.norm1)?;
        let att = &b.attention;
        self.linear(&format!("{prefix}.attention.attention.query"), &att.q)?;
        self.linear(&format!("{prefix}.attention.attention.key"), &att.k)?;
        self.linear(&format!("{prefix}.attention.attention.value"), &att.v)?;
        self.linear(&format!("{prefix}.attention.output.dense"), &att.o)?;
        if let Some(g) = &b.layer_scale1 {
            self.param(format!("{prefix}.layer_scale1.lambda1"), g)?;
        }
        self.layer_norm(&format!("{prefix}.norm2"), &b.norm2)?;
        self.linear(&format!("{prefix}.mlp.fc1"), &b.mlp.fc1)?;
        self.linear(&format!("{prefix}.mlp.fc2"), &b.mlp.fc2)?;
        if let Some(g) = &b.layer_scale2 {
            self.param(format!("{prefix}.layer_scale2.lambda1"), g)?;
        }
        Ok(())
    }
}

impl Vit {
    /// The weights as a `transformers` DINOv2 state dict (no prefix, as `Dinov2Model` saves
    /// them): `embeddings.cls_token` `[1, 1, D]`, `embeddings.position_embeddings`
    /// `[1, 1 + g*g, D]`, `embeddings.patch_embeddings.projection.{weight [D, 3, p, p], bias}`,
    /// `embeddings.register_tokens` `[1, R, D]` (with registers), `encoder.layer.{i}.*` and
    /// `layernorm.*`. The metadata holds `format = pt`.
    ///
    /// # Errors
    /// [`AmflowError::Config`] for the CLIP family, which is not exported.
    pub fn to_hf_tensors(&self) -> Result<TensorFile> {
        let c = &self.config;
        if c.family != BackboneFamily::Dinov2 {
            return Err(clip_unsupported());
        }
        let (d, p, g) = (c.hidden_size, c.patch_size, c.native_grid());
        let mut w = Writer {
            file: TensorFile::default(),
        };
        let cls = HostTensor::from_tensor(&self.cls_token.val());
        w.put("embeddings.cls_token".into(), vec![1, 1, d], cls.data)?;
        w.put(
            "embeddings.position_embeddings".into(),
            vec![1, 1 + g * g, d],
            self.pos_embed.data.clone(),
        )?;
        let patch = HostTensor::from_tensor(&self.patch_weight.val());
        w.put(
            "embeddings.patch_embeddings.projection.weight".into(),
            vec![d, 3, p, p],
            patch.data,
        )?;
        if let Some(b) = &self.patch_bias {
            w.param("embeddings.patch_embeddings.projection.bias".into(), b)?;
        }
        if let Some(r) = &self.registers {
            let r = HostTensor::from_tensor(&r.val());
            let n = r.shape[0];
            w.put("embeddings.register_tokens".into(), vec![1, n, d], r.data)?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            w.block(&format!("encoder.layer.{i}"), block)?;
        }
        w.layer_norm("layernorm", &self.final_norm)?;
        w.file.metadata.insert("format".into(), "pt".into());
        Ok(w.file)
    }

    /// Writes `dir/model.safetensors` ([`Vit::to_hf_tensors`]) and `dir/config.json`
    /// ([`VitConfig::to_hf_config_json`]), each atomically; creates `dir` if needed.
    ///
    /// # Errors
    /// The export errors, or an I/O error naming the file.
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        let json = self.config.to_hf_config_json()?;
        let file = self.to_hf_tensors()?;
        std::fs::create_dir_all(dir).map_err(|e| AmflowError::io(dir, e))?;
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| AmflowError::Config(format!("config.json: {e}")))?;
        crate::fs_util::write_atomic(&dir.join(HF_CONFIG_FILE), format!("{text}\n").as_bytes())?;
        file.write_atomic(&dir.join(HF_WEIGHTS_FILE))
    }
}

impl VitConfig {
    /// A `transformers` `config.json` for this architecture (`model_type` `dinov2`, or
    /// `dinov2_with_registers` with registers) that [`VitConfig::from_hf_config`] reads back
    /// to this very config.
    ///
    /// # Errors
    /// [`AmflowError::Config`] when `transformers`' DINOv2 cannot express the config: the CLIP
    /// family, no LayerScale, another activation than exact GELU, a position interpolation
    /// other than the family's (bicubic; antialiased with registers), or an MLP width that the
    /// ratio `mlp_dim / hidden_size` does not reproduce.
    pub fn to_hf_config_json(&self) -> Result<serde_json::Value> {
        if self.family != BackboneFamily::Dinov2 {
            return Err(clip_unsupported());
        }
        self.validate()?;
        let bad = |m: String| Err(AmflowError::Config(format!("DINOv2 config.json: {m}")));
        if !self.layer_scale {
            return bad("transformers' DINOv2 always has LayerScale".into());
        }
        if self.activation != Activation::Gelu {
            return bad(format!(
                "activation {:?} is not expressible (only exact GELU)",
                self.activation
            ));
        }
        let registers = self.num_registers > 0;
        let interp = if registers {
            PosInterpolation::BicubicAntialias
        } else {
            PosInterpolation::Bicubic
        };
        if self.pos_interpolation != interp {
            return bad(format!(
                "position interpolation {:?} differs from the layout's {interp:?}",
                self.pos_interpolation
            ));
        }
        let mut json = serde_json::json!({
            "architectures": [if registers { "Dinov2WithRegistersModel" } else { "Dinov2Model" }],
            "model_type": if registers { "dinov2_with_registers" } else { "dinov2" },
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "mlp_ratio": self.mlp_dim as f64 / self.hidden_size as f64,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "drop_path_rate": 0.0,
            "initializer_range": 0.02,
            "layer_norm_eps": self.layer_norm_eps,
            "image_size": self.native_image_size,
            "patch_size": self.patch_size,
            "num_channels": 3,
            "qkv_bias": true,
            "layerscale_value": self.layer_scale_init,
            "use_swiglu_ffn": false,
            "dtype": "float32",
        });
        if registers {
            json["num_register_tokens"] = self.num_registers.into();
        }
        let back = Self::from_hf_config(&json)?;
        if back != *self {
            return bad(format!(
                "it would read back as {back:?}, not {self:?} (is mlp_dim / hidden_size exact?)"
            ));
        }
        Ok(json)
    }
}
