mod backbone_parity;
mod config;
mod equations;
mod model_parity;
mod util;
