//! The architecture summary of `amflow info`: parameter counts split as in the paper's tables
//! (backbone / adapters + linear / aligning encoders / TPMs) and the compute per clip.
//!
//! Counts are derived from the configuration alone (no weights are loaded), and a test checks
//! them against the built model. Compute is counted in multiply-accumulates (MACs) of the
//! matrix products and convolutions, which is what fvcore and the video literature report as
//! "FLOPs"; `flops` is `2 * MACs`. Normalisations, softmax and element-wise operations are not
//! counted.

use crate::config::ModelConfig;
use crate::error::Result;
use crate::tpm::TpmConfig;

/// Parameter counts, as split in the paper's Tables 1–2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamCounts {
    /// The frozen backbone (position embedding included).
    pub backbone: usize,
    /// Adapters (`Down`, `Up`, `s`) and all linear classification heads.
    pub adapters_and_linear: usize,
    /// Aligning encoders.
    pub aligning_encoders: usize,
    /// Temporal processing modules.
    pub tpms: usize,
    /// Whether the backbone trains too (`backbone.trainable`; its position embedding trains
    /// through a correction of the same size).
    pub backbone_trains: bool,
}

impl ParamCounts {
    /// Everything that trains.
    pub fn trainable(&self) -> usize {
        let backbone = if self.backbone_trains {
            self.backbone
        } else {
            0
        };
        backbone + self.adapters_and_linear + self.aligning_encoders + self.tpms
    }
}

/// Compute per clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compute {
    /// MACs of the frozen backbone.
    pub backbone_macs: u64,
    /// MACs of the additions (adapters, aligning encoders, TPMs, heads).
    pub additions_macs: u64,
}

impl Compute {
    /// All MACs.
    pub fn macs(&self) -> u64 {
        self.backbone_macs + self.additions_macs
    }

    /// `2 * MACs`.
    pub fn flops(&self) -> u64 {
        2 * self.macs()
    }
}

fn linear(i: usize, o: usize) -> usize {
    i * o + o
}

fn layer_norm(d: usize) -> usize {
    2 * d
}

/// Parameter counts of the model `config` builds.
pub fn param_counts(config: &ModelConfig) -> Result<ParamCounts> {
    config.validate_complete()?;
    let a = &config.backbone.arch;
    let (d, p, g) = (a.hidden_size, a.patch_size, a.native_grid());
    // patch projection, class token, position embedding, registers, LN_final
    let mut backbone = d * 3 * p * p + d + d * (1 + g * g) + a.num_registers * d + layer_norm(d);
    backbone += match a.family {
        crate::backbone::BackboneFamily::Dinov2 => d, // patch bias
        crate::backbone::BackboneFamily::Clip => layer_norm(d), // pre_layrnorm
    };
    let block = 2 * layer_norm(d)
        + 4 * linear(d, d)
        + linear(d, a.mlp_dim)
        + linear(a.mlp_dim, d)
        + if a.layer_scale { 2 * d } else { 0 };
    backbone += a.num_layers * block;

    let r = config.adapter.bottleneck;
    let c = config.num_classes;
    let mask = config.temporal_mask()?;
    let af = &config.am_flow;
    let f = af.channels(a.num_heads);
    let n = config.tokens_per_frame();
    let mut counts = ParamCounts {
        backbone,
        adapters_and_linear: linear(d, c),
        backbone_trains: config.backbone.trainable,
        ..Default::default()
    };
    let adapter = |d_in: usize| linear(d_in, r) + linear(r, d) + 1;
    let tpm = match &config.tpm {
        TpmConfig::Transformer(t) => {
            config.num_frames * r
                + t.layers
                    * (2 * layer_norm(r)
                        + 4 * linear(r, r)
                        + linear(r, r * t.mlp_ratio)
                        + linear(r * t.mlp_ratio, r))
        }
        TpmConfig::Tcn(t) => t.layers * (r * r * t.kernel + r),
        TpmConfig::Lstm {} => 2 * (4 * r * r) + 2 * (4 * r),
    };
    for &temporal in &mask {
        counts.adapters_and_linear += adapter(if temporal { d + f } else { d }) + adapter(d);
        if temporal {
            counts.adapters_and_linear += 2 * linear(r, c);
            counts.tpms += 2 * tpm;
            if let Some(al) = af.aligning_encoder() {
                let w = al.dim;
                let m = w * al.mlp_ratio;
                counts.aligning_encoders += linear(a.num_heads, w)
                    + n * w
                    + al.layers
                        * (2 * layer_norm(w) + 4 * linear(w, w) + linear(w, m) + linear(m, w));
            }
        }
    }
    Ok(counts)
}

/// MACs per clip of `config.num_frames` frames at `config.image_size`.
pub fn compute_per_clip(config: &ModelConfig) -> Result<Compute> {
    config.validate_complete()?;
    let a = &config.backbone.arch;
    let (d, p, h) = (
        a.hidden_size as u64,
        a.patch_size as u64,
        a.num_heads as u64,
    );
    let t = config.num_frames as u64;
    let n = config.tokens_per_frame() as u64;
    let patches =
        (config.image_size[0] / a.patch_size * (config.image_size[1] / a.patch_size)) as u64;
    let mlp = a.mlp_dim as u64;
    let per_frame_block = 4 * n * d * d + 2 * n * n * d + 2 * n * d * mlp;
    let backbone = t * (patches * 3 * p * p * d + a.num_layers as u64 * per_frame_block);

    let r = config.adapter.bottleneck as u64;
    let c = config.num_classes as u64;
    let af = &config.am_flow;
    let f = af.channels(a.num_heads) as u64;
    let mut additions = d * c; // final head (one frame)
    let tpm_per_token = match &config.tpm {
        TpmConfig::Transformer(tc) => {
            let ratio = tc.mlp_ratio as u64;
            tc.layers as u64 * (4 * t * r * r + 2 * t * t * r + 2 * t * r * r * ratio)
        }
        TpmConfig::Tcn(tc) => tc.layers as u64 * t * r * r * tc.kernel as u64,
        TpmConfig::Lstm {} => t * 8 * r * r,
    };
    for temporal in config.temporal_mask()? {
        let d_in = if temporal { d + f } else { d };
        additions += t * n * (d_in * r + r * d + d * r + r * d);
        if temporal {
            additions += 2 * (n * tpm_per_token + r * c);
            if let Some(al) = af.aligning_encoder().filter(|_| t > 1) {
                let w = al.dim as u64;
                let dh = w / al.heads as u64;
                let layer =
                    4 * n * w * w + 2 * n * w * dh + n * w + 2 * n * w * w * al.mlp_ratio as u64;
                additions += t * (n * h * w + al.layers as u64 * layer);
            }
        }
    }
    Ok(Compute {
        backbone_macs: backbone,
        additions_macs: additions,
    })
}

/// A human-readable summary of the model `config` builds.
pub fn summary(config: &ModelConfig) -> Result<String> {
    use std::fmt::Write;
    let counts = param_counts(config)?;
    let compute = compute_per_clip(config)?;
    let a = &config.backbone.arch;
    let m = |v: usize| v as f64 / 1e6;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backbone        {:?} ViT, width {}, {} blocks, {} heads, patch {}, {} registers ({})",
        a.family,
        a.hidden_size,
        a.num_layers,
        a.num_heads,
        a.patch_size,
        a.num_registers,
        if config.backbone.trainable {
            "trained"
        } else {
            "frozen"
        }
    );
    let _ = writeln!(
        s,
        "input           {} frames x {}x{} px, {} tokens per frame",
        config.num_frames,
        config.image_size[0],
        config.image_size[1],
        config.tokens_per_frame()
    );
    let _ = writeln!(
        s,
        "temporal blocks {}  AM flow {:?}  TPM {:?}  bottleneck {}  classes {}",
        config.temporal_blocks,
        config.am_flow.mode(),
        config.tpm.kind(),
        config.adapter.bottleneck,
        config.num_classes
    );
    let _ = writeln!(s, "parameters (M)  backbone {:.2} | adapters+linear {:.2} | aligning encoders {:.2} | TPMs {:.2} | trainable {:.2}",
        m(counts.backbone), m(counts.adapters_and_linear), m(counts.aligning_encoders), m(counts.tpms), m(counts.trainable()));
    let _ = writeln!(
        s,
        "compute / clip  {:.2} GMACs ('GFLOPs' as fvcore counts; backbone {:.2}, additions {:.2}) = {:.2} GFLOP",
        compute.macs() as f64 / 1e9,
        compute.backbone_macs as f64 / 1e9,
        compute.additions_macs as f64 / 1e9,
        compute.flops() as f64 / 1e9
    );
    Ok(s)
}
