mod backbone_parity;
mod checkpoints;
mod config;
mod equations;
mod gradients;
mod info;
mod model_parity;
mod util;
