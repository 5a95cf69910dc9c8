//! Training config TOML with `--set key=value` overrides (`TrainConfig::from_toml`,
//! `apply_override`). Input: `<toml>\0<override>\0<override>...`.
#![no_main]

use amflow::ModelConfig;
use amflow_train::config::{ModelChoice, TrainConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let toml_text = parts.next().unwrap_or_default();
    let overrides: Vec<String> = parts.map(str::to_string).collect();
    let Ok(config) = TrainConfig::from_toml(toml_text, &overrides) else {
        return;
    };
    if let ModelChoice::Inline(model) = &config.model {
        if model.validate().is_ok() {
            let _ = ModelConfig::from_toml_str(&model.to_toml(), None)
                .expect("a validated model config reads back");
        }
    }
    // A run directory records `to_toml()` (it must not panic) and resumes from it.
    let back = config.to_toml();
    TrainConfig::from_toml(&back, &[]).expect("a parsed training config reads back");
});
