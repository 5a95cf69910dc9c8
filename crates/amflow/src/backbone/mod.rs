//! The frozen image backbone: a pre-norm ViT in the DINOv2 or CLIP layout.

mod attention;
mod block;
mod config;
mod export;
pub mod hub;
mod pos_interp;
mod precision;
mod vit;

pub use amflow_kernels::ops::weight_matmul;
pub use attention::{
    attention_keys_qkvo, AttentionKeys, AttentionMaps, AttentionOutput, SelfAttention,
};
pub use block::{Mlp, VitBlock};
pub use config::{BackboneFamily, PosInterpolation, VitConfig};
pub use export::{HF_CONFIG_FILE, HF_WEIGHTS_FILE};
pub use pos_interp::resize_grid;
pub use precision::BackbonePrecision;
pub use vit::{PositionCache, Vit};
