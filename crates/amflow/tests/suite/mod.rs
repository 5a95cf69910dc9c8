mod backbone_parity;
mod util;
