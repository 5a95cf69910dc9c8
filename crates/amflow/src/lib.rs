//! # amflow
//!
//! AM Flow (Agrawal et al., "AM Flow: Adapters for Temporal Processing in Action Recognition")
//! on [burn](https://burn.dev): a frozen, pretrained image ViT (DINOv2 or CLIP) with scaled
//! parallel adapters in every block, attention-map flow computed from consecutive frames'
//! attention, temporal processing units on the adapters' bottleneck embeddings, and the mean
//! of all heads' logits. Only the additions train.
//!
//! The precise contract is `docs/model-spec.md` of the project; each module names the section
//! or equation it implements.

pub mod backbone;
pub mod error;
pub mod fs_util;
pub mod host_tensor;
pub mod init;
pub mod nn;

pub use error::{AmflowError, Result};
pub use host_tensor::{HostTensor, TensorFile};
