//! # amflow
//!
//! AM Flow (Agrawal et al., "AM Flow: Adapters for Temporal Processing in Action Recognition")
//! on [burn](https://burn.dev): a frozen, pretrained image ViT (DINOv2 or CLIP) with scaled
//! parallel adapters in every block, attention-map flow computed from consecutive frames'
//! attention, temporal processing units on the adapters' bottleneck embeddings, and the mean
//! of all heads' logits. Only the additions train.
//!
//! The precise contract is the project's model spec; each module names the section or equation
//! it implements.
//!
//! ```no_run
//! use amflow::{AmFlowModel, Preset};
//! use burn::prelude::*;
//!
//! let device = Device::flex();
//! let config = Preset::Tiny.config();
//! let (model, _) = AmFlowModel::new(&config, &device).unwrap();
//! let clip = Tensor::<5>::zeros([1, 4, 3, 16, 16], &device);
//! let logits = model.forward(clip).unwrap(); // [1, 5]
//! ```

pub mod adapter;
pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod flow;
pub mod fs_util;
pub mod host_tensor;
pub mod info;
pub mod init;
pub mod model;
pub mod nn;
pub mod pixels;
pub mod split_pass;
pub mod tensor_reader;
pub mod tpm;

pub use config::{ModelConfig, Preset};
pub use error::{AmflowError, Result};
pub use host_tensor::{device_reads, read_values, HostTensor, TensorFile};
pub use model::{AmFlowModel, ModelOutput};
pub use pixels::normalized_pixels;
