//! The AM Flow model (paper, Figure 2; model spec, sections 1–5).
//!
//! Frames of `B` clips of `T` frames run through the frozen ViT as one batch of `B*T` images.
//! In every block, two scaled parallel adapters add `s1 * Up1(E1)` and `s2 * Up2(E2)` to the
//! residual stream, with `E1 = ReLU(Down1([LN1(x) ; F]))` (AM flow `F` concatenated in temporal
//! blocks) and `E2 = ReLU(Down2(LN2(x')))`. Temporal blocks run a temporal processing unit and
//! a "squeeze and linear" head on `E1` and on `E2`; one more head classifies the last frame's
//! class token after `LN_final`. The logits are the plain mean of all heads' logits, in the
//! order: per temporal block, attention head then MLP head; then the final-frame head.

use std::cell::RefCell;

use burn::module::Param;
use burn::prelude::*;

use crate::adapter::ScaledParallelAdapter;
use crate::backbone::{AttentionMaps, Vit};
use crate::config::{BackboneWeights, ModelConfig};
use crate::error::{AmflowError, Result};
use crate::flow::{
    aligned_am_flow, aligned_am_flow_of_column_sums, vanilla_am_flow, AligningEncoder, AmFlowMode,
};
use crate::init::Init;
use crate::nn::{Linear, LoadReport, RandomSource, TensorSource, VarBuilder};
use crate::split_pass::{SplitParts, SplitPass};
use crate::tpm::TemporalHead;

/// The trainable additions of one block.
#[derive(Module, Debug)]
pub struct BlockAdditions {
    /// Adapter across the attention (receives AM flow in temporal blocks).
    pub attn_adapter: ScaledParallelAdapter,
    /// Adapter across the MLP.
    pub mlp_adapter: ScaledParallelAdapter,
    /// Aligning encoder (temporal blocks with aligned AM flow).
    pub aligning_encoder: Option<AligningEncoder>,
    /// Temporal unit and head on `E1` (temporal blocks).
    pub attn_temporal: Option<TemporalHead>,
    /// Temporal unit and head on `E2` (temporal blocks).
    pub mlp_temporal: Option<TemporalHead>,
}

/// Everything that trains. Its parameter paths are the checkpoint's tensor names
/// (`docs/checkpoint-format.md`).
#[derive(Module, Debug)]
pub struct Additions {
    /// Per backbone block.
    pub blocks: Vec<BlockAdditions>,
    /// `Linear_C` on the last frame's `LN_final(x)[class token]`.
    pub final_head: Linear,
    /// With a trainable backbone only: the trainable correction of its position embedding
    /// `[1 + g*g, D]` (class first, zeros at first), added to the host-side native one.
    pub pos_embed_delta: Option<Param<Tensor<2>>>,
}

impl Additions {
    /// Builds the additions for `config` under `vb` (names as in the checkpoint format).
    pub fn new(vb: &VarBuilder<'_>, config: &ModelConfig) -> Result<Self> {
        config.validate_complete()?;
        let arch = &config.backbone.arch;
        let d = arch.hidden_size;
        let r = config.adapter.bottleneck;
        let c = config.num_classes;
        let mask = config.temporal_mask()?;
        let flow_channels = config.am_flow.channels(arch.num_heads);
        let blocks = mask
            .iter()
            .enumerate()
            .map(|(i, &temporal)| {
                let vb = vb.pp("blocks").pp(i);
                let attn_in = if temporal { d + flow_channels } else { d };
                let temporal_head = |name: &str| -> Result<Option<TemporalHead>> {
                    if temporal {
                        Ok(Some(TemporalHead::new(
                            &vb.pp(name),
                            &config.tpm,
                            r,
                            config.num_frames,
                            c,
                        )?))
                    } else {
                        Ok(None)
                    }
                };
                Ok(BlockAdditions {
                    attn_adapter: ScaledParallelAdapter::new(
                        &vb.pp("attn_adapter"),
                        attn_in,
                        r,
                        d,
                    )?,
                    mlp_adapter: ScaledParallelAdapter::new(&vb.pp("mlp_adapter"), d, r, d)?,
                    aligning_encoder: match config.am_flow.aligning_encoder() {
                        Some(a) if temporal => Some(AligningEncoder::new(
                            &vb.pp("aligning_encoder"),
                            a,
                            arch.num_heads,
                            config.tokens_per_frame(),
                        )?),
                        _ => None,
                    },
                    attn_temporal: temporal_head("attn_temporal")?,
                    mlp_temporal: temporal_head("mlp_temporal")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pos_embed_delta = if config.backbone.trainable {
            let g = arch.native_grid();
            Some(vb.param("pos_embed_delta", [1 + g * g, d], Init::Zeros)?)
        } else {
            None
        };
        Ok(Self {
            blocks,
            final_head: Linear::new(&vb.pp("final_head"), d, c, true)?,
            pos_embed_delta,
        })
    }

    /// Deterministic random additions from `config.seed`.
    pub fn random(config: &ModelConfig, device: &Device) -> Result<Self> {
        let source: RefCell<RandomSource> = RefCell::new(RandomSource::new(config.seed));
        let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, device);
        Self::new(&vb, config)
    }
}

/// What one block computed, returned on request.
#[derive(Debug, Clone)]
pub struct BlockIntermediates {
    /// Pre-softmax attention logits `[B, T, h, N, N]`.
    pub attn_logits: Tensor<5>,
    /// AM flow `[B, T, N, f]` (temporal blocks with AM flow on).
    pub am_flow: Option<Tensor<4>>,
    /// Attention adapter bottleneck `E1` `[B, T, N, r]`.
    pub e_attn: Tensor<4>,
    /// MLP adapter bottleneck `E2` `[B, T, N, r]`.
    pub e_mlp: Tensor<4>,
}

/// The model's intermediates.
#[derive(Debug, Clone)]
pub struct Intermediates {
    /// Per block.
    pub blocks: Vec<BlockIntermediates>,
    /// Every head's logits `[B, C]`, in averaging order.
    pub head_logits: Vec<Tensor<2>>,
}

/// The model's output.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Mean of all heads' logits, `[B, C]`.
    pub logits: Tensor<2>,
    /// Intermediates, when asked for.
    pub intermediates: Option<Intermediates>,
}

/// The AM Flow model: frozen backbone plus trainable additions.
///
/// # Shapes
/// - clip `[B, T, 3, H, W]`, normalised pixels, `H x W` = `config.image_size`
/// - logits `[B, C]`
#[derive(Module, Debug)]
pub struct AmFlowModel {
    /// The frozen image ViT.
    pub backbone: Vit,
    /// What trains.
    pub additions: Additions,
    /// The configuration that built the model.
    #[module(skip)]
    pub config: ModelConfig,
    /// Per block, the attention maps its AM flow reads (decided from the config when the
    /// model is built; `forward_detailed` with `collect` asks every block for its logits).
    #[module(skip)]
    pub attention_maps: Vec<AttentionMaps>,
}

/// The attention maps each block of `config` needs: the logits for vanilla AM flow, the
/// probabilities' column sums for aligned AM flow, none for a block without AM flow.
pub fn attention_maps(config: &ModelConfig) -> Result<Vec<AttentionMaps>> {
    let needs = match config.am_flow.mode() {
        AmFlowMode::Vanilla => AttentionMaps::Logits,
        AmFlowMode::Aligned => AttentionMaps::ColumnSums,
        AmFlowMode::Off => AttentionMaps::None,
    };
    Ok(config
        .temporal_mask()?
        .into_iter()
        .map(|temporal| if temporal { needs } else { AttentionMaps::None })
        .collect())
}

impl AmFlowModel {
    /// Builds the model: the backbone from its configured weights, the additions from
    /// `config.seed`. Returns the backbone's load report when weights came from a file.
    ///
    /// Hub weights are pinned: the stored config records the commit they came from.
    pub fn new(config: &ModelConfig, device: &Device) -> Result<(Self, Option<LoadReport>)> {
        let (backbone, report) = load_backbone(config, device)?;
        let additions = Additions::random(config, device)?;
        let config = config.clone().pinned(report.as_ref());
        Ok((Self::from_parts(&config, backbone, additions)?, report))
    }

    /// Assembles a model, checking that the parts fit the config.
    pub fn from_parts(config: &ModelConfig, backbone: Vit, additions: Additions) -> Result<Self> {
        if backbone.config != config.backbone.arch {
            return Err(AmflowError::Config(
                "the backbone's architecture differs from the model config's".into(),
            ));
        }
        if additions.blocks.len() != backbone.blocks.len() {
            return Err(AmflowError::Config(format!(
                "{} adapter blocks for {} backbone blocks",
                additions.blocks.len(),
                backbone.blocks.len()
            )));
        }
        Ok(Self {
            attention_maps: attention_maps(config)?,
            backbone,
            additions,
            config: config.clone(),
        })
    }

    /// The logits for a batch of clips.
    pub fn forward(&self, clip: Tensor<5>) -> Result<Tensor<2>> {
        Ok(self.forward_detailed(clip, false)?.logits)
    }

    /// The logits and, when `collect` is set, the intermediates. On the CPU backend the pass
    /// runs on rayon's pool (`amflow_kernels::on_pool_for`: its parallel kernels then start
    /// without waking the caller).
    pub fn forward_detailed(&self, clip: Tensor<5>, collect: bool) -> Result<ModelOutput> {
        let device = clip.device();
        amflow_kernels::on_pool_for(&device, || {
            self.forward_on_this_thread(clip, collect, &mut None)
        })
    }

    /// The forward pass of a train step whose backward runs the temporal heads side by side
    /// ([`SplitPass`]): on the CPU backend the heads' inputs and every head's logits are cut
    /// out of the backbone's graph, elsewhere it is [`AmFlowModel::forward`] with one plain
    /// backward (a GPU runs a graph's kernels one after another either way).
    pub fn forward_split(&self, clip: Tensor<5>) -> Result<SplitPass> {
        let device = clip.device();
        if !amflow_kernels::is_cpu(&device) {
            return Ok(SplitPass::whole(self.forward(clip)?));
        }
        amflow_kernels::on_pool_for(&device, || {
            let mut parts = Some(SplitParts::default());
            let out = self.forward_on_this_thread(clip, false, &mut parts)?;
            Ok(SplitPass::of_parts(
                out.logits,
                parts.expect("filled by the pass"),
                device.clone(),
            ))
        })
    }

    /// [`AmFlowModel::forward_detailed`] on the calling thread. With `split`, the pass fills in
    /// the pieces of a [`SplitPass`] and its logits are the mean of detached leaves.
    fn forward_on_this_thread(
        &self,
        clip: Tensor<5>,
        collect: bool,
        split: &mut Option<SplitParts>,
    ) -> Result<ModelOutput> {
        let [b, t, ch, h, w] = clip.dims();
        let device = clip.device();
        let [eh, ew] = self.config.image_size;
        if ch != 3 || h != eh || w != ew || b == 0 || t == 0 {
            return Err(AmflowError::Input(format!(
                "expected a clip batch [B, T, 3, {eh}, {ew}] with B, T >= 1, got {:?}",
                clip.dims()
            )));
        }
        let mut x = self.backbone.embed(clip.reshape([b * t, ch, h, w]))?;
        if let Some(delta) = &self.additions.pos_embed_delta {
            x = x + self.backbone.pad_token_rows(delta.val()).unsqueeze::<3>();
        }
        let [_, n, d] = x.dims();
        let mode = self.config.am_flow.mode();
        // The temporal heads in averaging order, with their inputs; they run after the blocks.
        let mut head_inputs: Vec<(&TemporalHead, Tensor<4>)> = Vec::new();
        let mut collected = Vec::new();
        // Set when `x` holds only the last frame's class token of the last block's output (the
        // only row the final head reads), `[b, 1, width]`.
        let mut only_class_token = false;
        let last_block = self.backbone.blocks.len().saturating_sub(1);
        let blocks = self.backbone.blocks.iter().zip(&self.additions.blocks);
        for (i, ((block, add), &maps)) in blocks.zip(&self.attention_maps).enumerate() {
            let temporal = add.attn_temporal.is_some();
            let a = block.pre_attention(x.clone());
            let maps = if collect { AttentionMaps::Logits } else { maps };
            let (att, att_bias) = block.attention_unbiased(a.clone(), maps);
            let (att_output, logits) = (att.output, att.logits);
            let (probs, column_sums) = (att.probs, att.column_sums);
            let flow = match (temporal, mode) {
                (false, _) | (true, AmFlowMode::Off) => None,
                (true, AmFlowMode::Vanilla) => Some(vanilla_am_flow(
                    logits.clone().expect("computed for vanilla AM flow"),
                    b,
                )),
                (true, AmFlowMode::Aligned) => {
                    let encoder = add.aligning_encoder.as_ref().ok_or_else(|| {
                        AmflowError::Config("aligned AM flow without an aligning encoder".into())
                    })?;
                    if encoder.tokens() != n {
                        return Err(AmflowError::Input(format!(
                            "the aligning encoder was built for {} tokens, the clip has {n}",
                            encoder.tokens()
                        )));
                    }
                    Some(match column_sums {
                        Some(m) => aligned_am_flow_of_column_sums(m, b, encoder),
                        None => {
                            let probs = probs.expect("computed for aligned AM flow");
                            aligned_am_flow(probs, b, encoder)
                        }
                    })
                }
            };
            let e1 = match &flow {
                Some(f) => add.attn_adapter.bottleneck_concat(a, f.clone()),
                None => add.attn_adapter.bottleneck(a),
            };
            let [g1, g2] = block.layer_scales();
            let x1 = add
                .attn_adapter
                .residual(x, (att_output, att_bias), g1, e1.clone());
            let bn = block.pre_mlp(x1.clone());
            let e2 = add.mlp_adapter.bottleneck(bn.clone());
            if i == last_block {
                // Nothing reads the last block's other rows: its MLP and `Up2` run on the one row
                // the final head takes (exact; `E2` above still covers every token). Saves
                // 2 x 2 T N D 4D multiply-adds per clip, 4.8 GFLOP at ViT-S/14, T = 8.
                let pick = |y: Tensor<3>| last_frame_class_token(y, b, t);
                let mlp = block.mlp_unscaled(pick(bn));
                x = add
                    .mlp_adapter
                    .residual(pick(x1), mlp, g2, pick(e2.clone()));
                only_class_token = true;
            } else {
                x = add
                    .mlp_adapter
                    .residual(x1, block.mlp_unscaled(bn), g2, e2.clone());
            }
            let r = e1.dims()[2];
            let e1: Tensor<4> = e1.reshape([b, t, n, r]);
            let e2: Tensor<4> = e2.reshape([b, t, n, r]);
            if let (Some(ha), Some(hm)) = (&add.attn_temporal, &add.mlp_temporal) {
                for (head, e) in [(ha, e1.clone()), (hm, e2.clone())] {
                    let e = match split {
                        // The head's own graph starts at a leaf copy of its input.
                        Some(parts) => parts.cut_head_input(e),
                        None => e,
                    };
                    head_inputs.push((head, e));
                }
            }
            if let (true, Some(logits)) = (collect, logits) {
                let hh = logits.dims()[1];
                collected.push(BlockIntermediates {
                    attn_logits: logits.reshape([b, t, hh, n, n]),
                    am_flow: flow.map(|f| {
                        let fc = f.dims()[2];
                        f.reshape([b, t, n, fc])
                    }),
                    e_attn: e1,
                    e_mlp: e2,
                });
            }
        }
        // Nothing in the blocks reads the heads, so they run side by side: their products
        // (2056 x 96 x 96 at ViT-S/14) and small attention loops keep two cores busy only
        // when two heads share them.
        let mut heads =
            amflow_kernels::map_on_pool_for(&device, head_inputs, |(head, e)| head.forward(e))
                .into_iter()
                .collect::<Result<Vec<Tensor<2>>>>()?;
        // Final-frame head: LN_final(x)[class token] of the last frame.
        let cls = if only_class_token {
            x
        } else {
            last_frame_class_token(x, b, t)
        };
        let cls: Tensor<2> = cls.reshape([b, d]);
        heads.push(
            self.additions
                .final_head
                .forward(self.backbone.final_norm.forward(cls)),
        );
        if let Some(parts) = split {
            heads = parts.cut_head_logits(heads);
        }
        let logits = Tensor::stack::<3>(heads.clone(), 0)
            .mean_dim(0)
            .reshape([b, heads[0].dims()[1]]);
        Ok(ModelOutput {
            logits,
            intermediates: collect.then_some(Intermediates {
                blocks: collected,
                head_logits: heads,
            }),
        })
    }
}

/// Row `[class token]` of the last frame of each clip in the block activations `x`
/// (`[b t, tokens, width]`): `[b, 1, width]`.
fn last_frame_class_token(x: Tensor<3>, b: usize, t: usize) -> Tensor<3> {
    let [_, n, d] = x.dims();
    let x: Tensor<4> = x.reshape([b, t, n, d]);
    x.narrow(1, t - 1, 1).narrow(2, 0, 1).reshape([b, 1, d])
}

/// Builds the backbone of `config` from its configured weights: frozen, or requiring
/// gradients when `config.backbone.trainable`.
pub fn load_backbone(config: &ModelConfig, device: &Device) -> Result<(Vit, Option<LoadReport>)> {
    let (vit, report) = match &config.backbone.weights {
        BackboneWeights::Random { seed } => {
            (Vit::random(&config.backbone.arch, *seed, device)?, None)
        }
        BackboneWeights::File { path } => {
            let (vit, report) = Vit::load_hf(path, &config.backbone.arch, device)?;
            (vit, Some(report))
        }
        BackboneWeights::Hub(hub) => {
            let files = crate::backbone::hub::fetch_backbone(hub, &config.backbone.arch)?;
            let (vit, mut report) = Vit::load_hf(&files.weights, &config.backbone.arch, device)?;
            report.hub_commit = Some(files.commit);
            (vit, Some(report))
        }
        BackboneWeights::Embedded { name } => {
            let file = crate::host_tensor::TensorFile::from_bytes(name.safetensors())?;
            let (vit, report) = Vit::from_hf_file(file, &config.backbone.arch, device)?;
            (vit, Some(report))
        }
    };
    let vit = if config.backbone.trainable {
        vit.unfreeze()
    } else {
        let precision = config.backbone.precision;
        if !precision.is_f32() && !device.supports_dtype(burn::tensor::DType::BF16) {
            // (cubecl's WGSL compiler has no bf16: its kernels would fail on the device thread
            // and return garbage, not an error)
            return Err(AmflowError::Config(format!(
                "backbone.precision = \"bf16\" needs a device with bf16 tensors; {device:?} has \
                 none (use \"f32\")"
            )));
        }
        vit.with_precision(precision)
    };
    // The model's input size is fixed: its position embedding is resized once, on the device.
    let [h, w] = config.image_size;
    Ok((vit.with_input_size(h, w, device)?, report))
}
