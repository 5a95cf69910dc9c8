//! Model configuration: TOML round trip, presets, `temporal_blocks` syntax, validation.

use amflow::config::TemporalBlocks;
use amflow::{AmflowError, ModelConfig, Preset};

#[test]
fn every_preset_is_valid_and_round_trips_through_toml() {
    for preset in Preset::ALL {
        let config = preset.config();
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", preset.name()));
        let text = config.to_toml();
        let back = ModelConfig::from_toml_str(&text, None).unwrap();
        assert_eq!(back, config, "{}", preset.name());
        assert_eq!(Preset::from_name(preset.name()), Some(preset));
    }
}

#[test]
fn temporal_blocks_syntax() {
    let p = |s: &str| s.parse::<TemporalBlocks>().unwrap();
    assert_eq!(p("AM/2(1,12)"), TemporalBlocks::List(vec![1, 12]));
    assert_eq!(p("AM/3"), TemporalBlocks::List(vec![1, 2, 3]));
    assert_eq!(p("all"), TemporalBlocks::All);
    assert_eq!(p("none"), TemporalBlocks::List(vec![]));
    assert_eq!(p("12, 1"), TemporalBlocks::List(vec![1, 12]));
    assert!("AM/3(1,12)".parse::<TemporalBlocks>().is_err());
    assert!("AM/x".parse::<TemporalBlocks>().is_err());
    assert_eq!(
        p("AM/2(1,12)")
            .resolve(12)
            .unwrap()
            .iter()
            .filter(|&&b| b)
            .count(),
        2
    );
    assert!(p("AM/12").resolve(2).is_err());
    assert_eq!(p("AM/2(1,12)").to_string(), "AM/2(1,12)");
}

#[test]
fn temporal_blocks_accept_a_list_in_toml() {
    let mut text = Preset::Tiny.config().to_toml();
    text = text.replace("temporal_blocks = \"all\"", "temporal_blocks = [2]");
    let c = ModelConfig::from_toml_str(&text, None).unwrap();
    assert_eq!(c.temporal_blocks, TemporalBlocks::List(vec![2]));
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let text = Preset::Tiny
        .config()
        .to_toml()
        .replace("num_frames = 4", "num_frames = 4\nnum_frame = 3");
    let err = ModelConfig::from_toml_str(&text, None).unwrap_err();
    assert!(matches!(err, AmflowError::ConfigParse { .. }));
    assert!(err.to_string().contains("num_frame"), "{err}");
}

#[test]
fn inconsistent_sizes_are_rejected() {
    let mut c = Preset::Tiny.config();
    c.adapter.bottleneck = 6; // not divisible by the 4 transformer heads
    assert!(c.validate().is_err());
    let mut c = Preset::Tiny.config();
    c.am_flow.align_dim = 20; // not divisible by 12 heads
    assert!(c.validate().is_err());
    let mut c = Preset::Tiny.config();
    c.temporal_blocks = TemporalBlocks::List(vec![3]);
    assert!(c.validate().is_err());
}

#[test]
#[ignore = "prints the tiny preset's TOML"]
fn print_tiny() {
    println!("{}", Preset::Tiny.config().to_toml());
}
