mod backbone_parity;
mod config;
mod model_parity;
mod util;
