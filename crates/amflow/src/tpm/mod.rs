//! Temporal processing units (paper, "Temporal processing adapters"; model spec, section 3).
//!
//! A unit runs along the `T` frames independently for each token (batch `B*N`), with width `r`
//! in and out, on the adapter's own bottleneck activation `E`. Its output is squeezed (mean over
//! frames and tokens) and classified by a linear layer: one head per adapter of a temporal block.

mod lstm;
mod tcn;
mod transformer;

pub use lstm::TemporalLstm;
pub use tcn::{TemporalConv, TemporalConvLayer};
pub use transformer::{TemporalTransformer, TemporalTransformerLayer, TPM_LN_EPS};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AmflowError, Result};
use crate::nn::{Linear, VarBuilder};

/// Which temporal processing module the temporal blocks use (the tag of [`TpmConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TpmKind {
    /// Pre-norm transformer encoder over the frames.
    Transformer,
    /// Residual dilated temporal convolutions.
    Tcn,
    /// One LSTM layer.
    Lstm,
}

/// Settings of the temporal processing modules: `kind` decides which other keys exist (TOML
/// `[tpm]`, `kind = "transformer" | "tcn" | "lstm"`; a `kernel` on a transformer is an error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TpmConfig {
    /// Pre-norm transformer encoder over the frames.
    Transformer(TransformerTpmConfig),
    /// Residual dilated temporal convolutions.
    Tcn(TcnConfig),
    /// One LSTM layer with hidden size `r` (no settings).
    Lstm {},
}

/// The transformer TPM's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerTpmConfig {
    /// Encoder layers (spec default 1).
    pub layers: usize,
    /// Attention heads (must divide `r`; spec default 4).
    pub heads: usize,
    /// MLP ratio (spec default 4).
    pub mlp_ratio: usize,
}

impl Default for TransformerTpmConfig {
    fn default() -> Self {
        Self {
            layers: 1,
            heads: 4,
            mlp_ratio: 4,
        }
    }
}

/// The TCN TPM's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcnConfig {
    /// Layers, with dilations 1, 2, 4, ... (spec default 2).
    pub layers: usize,
    /// Kernel size, odd (spec default 3).
    pub kernel: usize,
}

impl Default for TcnConfig {
    fn default() -> Self {
        Self {
            layers: 2,
            kernel: 3,
        }
    }
}

impl TpmConfig {
    /// Defaults of the spec for `kind`.
    pub fn new(kind: TpmKind) -> Self {
        match kind {
            TpmKind::Transformer => Self::Transformer(TransformerTpmConfig::default()),
            TpmKind::Tcn => Self::Tcn(TcnConfig::default()),
            TpmKind::Lstm => Self::Lstm {},
        }
    }

    /// The kind alone.
    pub fn kind(&self) -> TpmKind {
        match self {
            Self::Transformer(_) => TpmKind::Transformer,
            Self::Tcn(_) => TpmKind::Tcn,
            Self::Lstm {} => TpmKind::Lstm,
        }
    }

    /// Checks the settings against the bottleneck width `r`.
    pub fn validate(&self, width: usize) -> Result<()> {
        match self {
            Self::Transformer(t) if t.heads == 0 || !width.is_multiple_of(t.heads) => {
                Err(AmflowError::Config(format!(
                    "transformer TPM heads {} must divide the adapter bottleneck {width}",
                    t.heads
                )))
            }
            Self::Tcn(t) if t.kernel.is_multiple_of(2) => Err(AmflowError::Config(format!(
                "TCN kernel {} must be odd (same padding)",
                t.kernel
            ))),
            _ => Ok(()),
        }
    }
}

/// A temporal processing module.
///
/// # Shapes
/// - input and output `[B*N, T, r]`
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one unit per adapter: boxing buys nothing
pub enum TemporalUnit {
    /// Transformer encoder.
    Transformer(TemporalTransformer),
    /// Temporal convolutions.
    Tcn(TemporalConv),
    /// LSTM.
    Lstm(TemporalLstm),
}

impl TemporalUnit {
    /// Builds the unit of `config`'s kind under `vb` for width `r` and at most `max_frames` frames.
    pub fn new(
        vb: &VarBuilder<'_>,
        config: &TpmConfig,
        width: usize,
        max_frames: usize,
    ) -> Result<Self> {
        config.validate(width)?;
        Ok(match config {
            TpmConfig::Transformer(t) => {
                Self::Transformer(TemporalTransformer::new(vb, t, width, max_frames)?)
            }
            TpmConfig::Tcn(t) => Self::Tcn(TemporalConv::new(vb, t, width)?),
            TpmConfig::Lstm {} => Self::Lstm(TemporalLstm::new(vb, width)?),
        })
    }

    /// Runs the unit along the frame axis.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        match self {
            Self::Transformer(m) => m.forward(x),
            Self::Tcn(m) => Ok(m.forward(x)),
            Self::Lstm(m) => Ok(m.forward(x)),
        }
    }
}

/// A temporal processing unit with its "squeeze and linear" head:
/// `logits = Linear_C(mean_{t,n} TPM(E))`.
///
/// # Shapes
/// - `E` `[B, T, N, r]`
/// - logits `[B, C]`
#[derive(Module, Debug)]
pub struct TemporalHead {
    /// The temporal processing module.
    pub tpm: TemporalUnit,
    /// `Linear_C`.
    pub head: Linear,
}

impl TemporalHead {
    /// Builds the unit and its head under `vb`.
    pub fn new(
        vb: &VarBuilder<'_>,
        config: &TpmConfig,
        width: usize,
        max_frames: usize,
        classes: usize,
    ) -> Result<Self> {
        Ok(Self {
            tpm: TemporalUnit::new(&vb.pp("tpm"), config, width, max_frames)?,
            head: Linear::new(&vb.pp("head"), width, classes, true)?,
        })
    }

    /// Runs the unit on `E` and returns the head's logits.
    pub fn forward(&self, e: Tensor<4>) -> Result<Tensor<2>> {
        let [b, t, n, r] = e.dims();
        let seq: Tensor<3> = e.swap_dims(1, 2).reshape([b * n, t, r]);
        let z = self.tpm.forward(seq)?;
        let pooled: Tensor<2> = z.reshape([b, n * t, r]).mean_dim(1).reshape([b, r]);
        Ok(self.head.forward(pooled))
    }
}
