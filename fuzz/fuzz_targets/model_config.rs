//! Model config TOML (`ModelConfig::from_toml_str`: parse + validate) and the
//! `temporal_blocks` strings ("AM/12", "AM/2(1,12)", "1,12").
#![no_main]

use amflow::config::TemporalBlocks;
use amflow::ModelConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(blocks) = text.parse::<TemporalBlocks>() {
        // What `Display` writes (a config's TOML) parses back to the same blocks.
        let back: TemporalBlocks = blocks.to_string().parse().expect("displayed blocks parse");
        assert_eq!(back, blocks);
    }
    let Ok(config) = ModelConfig::from_toml_str(text, None) else {
        return;
    };
    // A checkpoint stores `to_toml()`; a valid config must read back from it.
    let back = ModelConfig::from_toml_str(&config.to_toml(), None)
        .expect("a validated config reads back from its TOML");
    assert_eq!(back.temporal_blocks, config.temporal_blocks);
    assert_eq!(back.image_size, config.image_size);
});
