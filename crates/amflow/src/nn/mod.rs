//! Small layers with PyTorch's parameter layout and names (`weight` is `[out, in]`), so that
//! Hugging Face weights load without transposes and checkpoints read like PyTorch state dicts.

mod activation;
mod layer_norm;
mod linear;
mod path;
mod var_builder;

pub use activation::Activation;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use path::PathStack;
pub use var_builder::{FileSource, LoadReport, RandomSource, TensorSource, VarBuilder};
