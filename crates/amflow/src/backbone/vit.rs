//! The frozen image Vision Transformer (Dosovitskiy et al. 2021) in the two layouts amflow
//! loads: DINOv2 (Oquab et al. 2023; Darcet et al. 2024 for registers) and the CLIP vision
//! tower (Radford et al. 2021), following `transformers`' `Dinov2Model`,
//! `Dinov2WithRegistersModel` and `CLIPVisionModel` (model spec, sections 1, 6 and 7).
//!
//! Token order: class token, registers (no position embedding), patches in row-major order.
//! Weight names are the `transformers` ones, so a `model.safetensors` from the Hugging Face
//! hub loads as it is.

use std::cell::RefCell;
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;

use super::attention::AttentionMaps;
use super::block::VitBlock;
use super::config::{BackboneFamily, PosInterpolation, VitConfig};
use super::pos_interp::resize_grid;
use crate::error::{AmflowError, Result};
use crate::host_tensor::{HostTensor, TensorFile};
use crate::init::Init;
use crate::nn::{FileSource, LayerNorm, LoadReport, RandomSource, TensorSource, VarBuilder};
use crate::tensor_reader::TensorReader;

/// The frozen image ViT.
///
/// # Shapes
/// - pixels `[frames, 3, height, width]`, normalised
/// - tokens `[frames, 1 + registers + patches, width]`
#[derive(Module, Debug)]
pub struct Vit {
    /// Patch projection `[width, 3 * p * p]` (a stride-`p` convolution, flattened).
    pub patch_weight: Param<Tensor<2>>,
    /// Patch projection bias (DINOv2; CLIP has none).
    pub patch_bias: Option<Param<Tensor<1>>>,
    /// Class token `[width]`.
    pub cls_token: Param<Tensor<1>>,
    /// Register tokens `[registers, width]`.
    pub registers: Option<Param<Tensor<2>>>,
    /// CLIP's `pre_layrnorm`.
    pub pre_norm: Option<LayerNorm>,
    /// The blocks.
    pub blocks: Vec<VitBlock>,
    /// `LN_final`: DINOv2's `layernorm`, CLIP's `post_layernorm`.
    pub final_norm: LayerNorm,
    /// The architecture.
    #[module(skip)]
    pub config: VitConfig,
    /// Native position embedding `[1 + grid * grid, width]` (class first), kept on the host:
    /// it is resized on the host for other input sizes.
    #[module(skip)]
    pub pos_embed: HostTensor,
    /// The position embedding resized for one input size, on the device
    /// ([`Vit::with_input_size`]): `embed` at that size uploads nothing.
    #[module(skip)]
    pub pos_cache: Option<PositionCache>,
}

/// A position embedding resized for one input size and kept on the device.
#[derive(Debug, Clone)]
pub struct PositionCache {
    /// Input height and width in pixels.
    pub size: (usize, usize),
    /// `[1 + patches, width]`, class first.
    pub table: Tensor<2>,
}

/// Names of the tensors outside the blocks, per family.
struct VitKeys {
    blocks: &'static str,
    final_norm: &'static str,
}

impl VitKeys {
    fn of(family: BackboneFamily) -> Self {
        match family {
            BackboneFamily::Dinov2 => Self {
                blocks: "encoder.layer",
                final_norm: "layernorm",
            },
            BackboneFamily::Clip => Self {
                blocks: "encoder.layers",
                final_norm: "post_layernorm",
            },
        }
    }
}

impl Vit {
    /// Builds the ViT from `vb` (weight names of `config.family`). The result is frozen:
    /// no parameter requires a gradient.
    pub fn new(vb: &VarBuilder<'_>, config: &VitConfig) -> Result<Self> {
        config.validate()?;
        let w = config.hidden_size;
        let p = config.patch_size;
        let g = config.native_grid();
        let keys = VitKeys::of(config.family);
        let emb = vb.pp("embeddings");
        let std = Init::TruncNormal(0.02);
        let patch_init = Init::torch_default(3 * p * p);
        let (patch_weight, patch_bias, cls, pos, pre_norm) = match config.family {
            BackboneFamily::Dinov2 => {
                let proj = emb.pp("patch_embeddings").pp("projection");
                let weight = proj.host("weight", &[w, 3, p, p], patch_init)?;
                let bias = proj.param::<1>("bias", [w], patch_init)?;
                let cls = emb.host("cls_token", &[1, 1, w], std)?;
                let pos = emb.host("position_embeddings", &[1, 1 + g * g, w], std)?;
                (weight, Some(bias), cls, pos, None)
            }
            BackboneFamily::Clip => {
                let weight = emb
                    .pp("patch_embedding")
                    .host("weight", &[w, 3, p, p], patch_init)?;
                let cls = emb.host("class_embedding", &[w], std)?;
                let pos = emb
                    .pp("position_embedding")
                    .host("weight", &[1 + g * g, w], std)?;
                let pre = LayerNorm::new(&vb.pp("pre_layrnorm"), w, config.layer_norm_eps)?;
                (weight, None, cls, pos, Some(pre))
            }
        };
        let device = vb.device();
        let registers = if config.num_registers > 0 {
            let r = emb.host("register_tokens", &[1, config.num_registers, w], std)?;
            Some(Param::from_tensor(
                HostTensor::new(vec![config.num_registers, w], r.data)?.to_tensor::<2>(device)?,
            ))
        } else {
            None
        };
        let blocks = (0..config.num_layers)
            .map(|i| VitBlock::new(&vb.pp(keys.blocks).pp(i), config))
            .collect::<Result<Vec<_>>>()?;
        let vit = Self {
            patch_weight: Param::from_tensor(
                HostTensor::new(vec![w, 3 * p * p], patch_weight.data)?.to_tensor::<2>(device)?,
            ),
            patch_bias,
            cls_token: Param::from_tensor(
                HostTensor::new(vec![w], cls.data)?.to_tensor::<1>(device)?,
            ),
            registers,
            pre_norm,
            blocks,
            final_norm: LayerNorm::new(&vb.pp(keys.final_norm), w, config.layer_norm_eps)?,
            config: config.clone(),
            pos_embed: HostTensor::new(vec![1 + g * g, w], pos.data)?,
            pos_cache: None,
        };
        Ok(vit.no_grad())
    }

    /// A ViT with deterministic random weights (tests, from-scratch baselines).
    pub fn random(config: &VitConfig, seed: u64, device: &Device) -> Result<Self> {
        let source: RefCell<RandomSource> = RefCell::new(RandomSource::new(seed));
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        Self::new(&vb, config)
    }

    /// Loads a `transformers` safetensors file (`model.safetensors` of `Dinov2Model`,
    /// `Dinov2WithRegistersModel`, `Dinov2ForImageClassification`, `CLIPVisionModel` or
    /// `CLIPModel`). Tensors of other components (a classifier, CLIP's text tower) and known
    /// unused ones (`mask_token`, `position_ids`) are listed in the report; any other unused,
    /// missing or mis-shaped tensor is an error naming it.
    pub fn load_hf(path: &Path, config: &VitConfig, device: &Device) -> Result<(Self, LoadReport)> {
        Self::from_source(
            FileSource::reader(TensorReader::open(path)?),
            config,
            device,
        )
    }

    /// [`Vit::load_hf`] on an already parsed file.
    pub fn from_hf_file(
        file: TensorFile,
        config: &VitConfig,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        Self::from_source(FileSource::new(file), config, device)
    }

    fn from_source(
        source: FileSource,
        config: &VitConfig,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let prefix = hf_prefix(&source.names(), config.family);
        let source = RefCell::new(source);
        let vit = {
            let root = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
            let vb = match &prefix {
                Some(p) => root.pp(p),
                None => root,
            };
            Self::new(&vb, config)?
        };
        let pre = prefix.map(|p| format!("{p}.")).unwrap_or_default();
        let report = source.into_inner().finish(|name| {
            let Some(local) = name.strip_prefix(pre.as_str()) else {
                return true; // another component of the checkpoint
            };
            matches!(local, "embeddings.mask_token" | "embeddings.position_ids")
        })?;
        Ok((vit, report))
    }

    /// The number of frozen parameters (scalars), position embedding included.
    pub fn num_params_total(&self) -> usize {
        self.num_params() + self.pos_embed.data.len()
    }

    /// The position embedding for an input of `height x width` pixels, `[1 + patches, width]`,
    /// resized as `transformers` does (spec, section 7).
    pub fn position_embedding(&self, height: usize, width: usize) -> Result<HostTensor> {
        let c = &self.config;
        let (gh, gw) = (height / c.patch_size, width / c.patch_size);
        let g = c.native_grid();
        if gh * gw == g * g && height == width {
            return Ok(self.pos_embed.clone());
        }
        let antialias = match c.pos_interpolation {
            PosInterpolation::Bicubic => false,
            PosInterpolation::BicubicAntialias => true,
            PosInterpolation::Forbid => {
                return Err(AmflowError::Input(format!(
                    "input {height}x{width} differs from the native {n}x{n} and position \
                     interpolation is off for this backbone",
                    n = c.native_image_size
                )))
            }
        };
        let d = c.hidden_size;
        let patches = resize_grid(&self.pos_embed.data[d..], (g, g), (gh, gw), d, antialias);
        let mut data = self.pos_embed.data[..d].to_vec();
        data.extend(patches);
        HostTensor::new(vec![1 + gh * gw, d], data)
    }

    /// The ViT with its position embedding for `height x width` inputs resized once and kept on
    /// `device`, so that no forward at that size resizes or uploads it again.
    ///
    /// # Errors
    /// As [`Vit::position_embedding`].
    pub fn with_input_size(mut self, height: usize, width: usize, device: &Device) -> Result<Self> {
        let table = self
            .position_embedding(height, width)?
            .to_tensor::<2>(device)?;
        self.pos_cache = Some(PositionCache {
            size: (height, width),
            table,
        });
        Ok(self)
    }

    /// The position embedding for `height x width` inputs on `device`: the cached one when it
    /// was made for that size (moved between devices, never through the host, when a replica
    /// runs elsewhere), else resized and uploaded now.
    fn position_table(&self, height: usize, width: usize, device: &Device) -> Result<Tensor<2>> {
        match &self.pos_cache {
            Some(c) if c.size == (height, width) => {
                let table = c.table.clone();
                Ok(if &table.device() == device {
                    table
                } else {
                    table.to_device(device)
                })
            }
            _ => self
                .position_embedding(height, width)?
                .to_tensor::<2>(device),
        }
    }

    /// Rows for every token from rows for the class token and the patches (`[1 + patches, D]`,
    /// class first): zero rows are inserted for the register tokens, as the position
    /// embedding skips them.
    pub fn pad_token_rows(&self, rows: Tensor<2>) -> Tensor<2> {
        let regs = self.config.num_registers;
        if regs == 0 {
            return rows;
        }
        let [n, d] = rows.dims();
        let zeros = Tensor::<2>::zeros([regs, d], &rows.device());
        Tensor::cat(
            vec![
                rows.clone().slice([0..1, 0..d]),
                zeros,
                rows.slice([1..n, 0..d]),
            ],
            0,
        )
    }

    /// Embeds frames: patches, class token, position embedding, registers, then CLIP's
    /// `pre_layrnorm`.
    pub fn embed(&self, pixels: Tensor<4>) -> Result<Tensor<3>> {
        let [f, ch, h, w] = pixels.dims();
        let c = &self.config;
        let p = c.patch_size;
        if ch != 3 {
            return Err(AmflowError::Input(format!(
                "expected 3 colour channels, got {ch}"
            )));
        }
        let (gh, gw) = (h / p, w / p);
        if gh == 0 || gw == 0 {
            return Err(AmflowError::Input(format!(
                "frame {h}x{w} is smaller than one {p}x{p} patch"
            )));
        }
        let pixels = if gh * p != h || gw * p != w {
            pixels.slice([0..f, 0..3, 0..gh * p, 0..gw * p])
        } else {
            pixels
        };
        let d = c.hidden_size;
        let patches: Tensor<2> = pixels
            .reshape([f, 3, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([f * gh * gw, 3 * p * p]);
        let mut tokens = amflow_kernels::ops::weight_matmul(patches, self.patch_weight.val());
        if let Some(b) = &self.patch_bias {
            tokens = tokens + b.val().unsqueeze::<2>();
        }
        let tokens: Tensor<3> = tokens.reshape([f, gh * gw, d]);
        let device = tokens.device();
        let cls = self.cls_token.val().reshape([1, 1, d]).expand([f, 1, d]);
        let pos = self.position_table(h, w, &device)?;
        let mut x = Tensor::cat(vec![cls, tokens], 1) + pos.unsqueeze::<3>();
        if let Some(r) = &self.registers {
            let n_reg = c.num_registers;
            let regs = r.val().reshape([1, n_reg, d]).expand([f, n_reg, d]);
            let n = 1 + gh * gw;
            x = Tensor::cat(
                vec![
                    x.clone().slice([0..f, 0..1, 0..d]),
                    regs,
                    x.slice([0..f, 1..n, 0..d]),
                ],
                1,
            );
        }
        if let Some(norm) = &self.pre_norm {
            x = norm.forward(x);
        }
        Ok(x)
    }

    /// The plain image model: returns the last block's output (before `LN_final`) and every
    /// block's attention logits. This is the reference path that the parity tests compare
    /// with `transformers`.
    pub fn forward_plain(&self, pixels: Tensor<4>) -> Result<(Tensor<3>, Vec<Tensor<4>>)> {
        let mut x = self.embed(pixels)?;
        let mut logits = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, l) = block.forward(x, AttentionMaps::Logits);
            x = y;
            logits.push(l.expect("asked for the logits"));
        }
        Ok((x, logits))
    }
}

/// The key prefix of the backbone in a `transformers` file, if any.
fn hf_prefix(names: &[&str], family: BackboneFamily) -> Option<String> {
    let candidates: &[&str] = match family {
        BackboneFamily::Dinov2 => &["dinov2", "model"],
        BackboneFamily::Clip => &["vision_model"],
    };
    for c in candidates {
        let probe = format!("{c}.embeddings.");
        if names.iter().any(|k| k.starts_with(&probe)) {
            return Some((*c).to_string());
        }
    }
    None
}
