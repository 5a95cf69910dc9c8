//! A `transformers` `config.json` of a backbone (`VitConfig::from_hf_config`).
#![no_main]

use amflow::backbone::VitConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(config) = VitConfig::from_hf_config(&json) else {
        return;
    };
    if config.validate().is_ok() {
        let _ = (config.head_dim(), config.native_grid());
        // What `export` writes must read back.
        if let Ok(out) = config.to_hf_config_json() {
            VitConfig::from_hf_config(&out).expect("an exported config.json reads back");
        }
    }
});
