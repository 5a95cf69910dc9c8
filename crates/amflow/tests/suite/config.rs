//! Model configuration: TOML round trip, presets, `temporal_blocks` syntax, validation.

use amflow::config::TemporalBlocks;
use amflow::flow::{AligningEncoderConfig, AmFlowConfig, AmFlowMode};
use amflow::tpm::{TcnConfig, TpmConfig};
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
    c.am_flow = AmFlowConfig::Aligned(AligningEncoderConfig {
        dim: 20, // not divisible by 12 heads
        ..AligningEncoderConfig::default()
    });
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

/// The tiny preset's TOML with its `[am_flow]` and `[tpm]` tables replaced.
fn tiny_with(am_flow: &str, tpm: &str) -> Result<ModelConfig, AmflowError> {
    let text = Preset::Tiny.config().to_toml();
    let head = &text[..text.find("[am_flow]").expect("an [am_flow] table")];
    ModelConfig::from_toml_str(&format!("{head}[am_flow]\n{am_flow}\n[tpm]\n{tpm}\n"), None)
}

#[test]
fn the_variant_decides_which_keys_exist() {
    // Each mode and kind with its own keys parses to that variant.
    let c = tiny_with(
        "mode = \"aligned\"\ndim = 36\nheads = 6",
        "kind = \"tcn\"\nkernel = 5",
    )
    .unwrap();
    assert_eq!(
        c.am_flow,
        AmFlowConfig::Aligned(AligningEncoderConfig {
            dim: 36,
            heads: 6,
            ..AligningEncoderConfig::default()
        })
    );
    assert_eq!(
        c.tpm,
        TpmConfig::Tcn(TcnConfig {
            layers: 2,
            kernel: 5
        })
    );
    let c = tiny_with("mode = \"vanilla\"", "kind = \"lstm\"").unwrap();
    assert_eq!(
        (c.am_flow.mode(), c.tpm),
        (AmFlowMode::Vanilla, TpmConfig::Lstm {})
    );

    // A key of another variant is an error naming it.
    for (am_flow, tpm, key) in [
        ("mode = \"vanilla\"\ndim = 24", "kind = \"lstm\"", "dim"),
        ("mode = \"off\"\nheads = 12", "kind = \"lstm\"", "heads"),
        (
            "mode = \"vanilla\"",
            "kind = \"transformer\"\nkernel = 3",
            "kernel",
        ),
        (
            "mode = \"vanilla\"",
            "kind = \"lstm\"\nlayers = 2",
            "layers",
        ),
        ("mode = \"vanilla\"", "kind = \"tcn\"\nheads = 2", "heads"),
    ] {
        let err = tiny_with(am_flow, tpm).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{key}`")),
            "{am_flow} / {tpm}: {err}"
        );
    }
    assert!(tiny_with("mode = \"sideways\"", "kind = \"lstm\"").is_err());
}

#[test]
fn switching_mode_keeps_aligned_settings_only_when_staying_aligned() {
    let aligned = Preset::Tiny.config().am_flow;
    assert_eq!(aligned.with_mode(AmFlowMode::Aligned), aligned);
    assert_eq!(
        aligned.with_mode(AmFlowMode::Vanilla),
        AmFlowConfig::Vanilla {}
    );
    assert_eq!(
        AmFlowConfig::Off {}.with_mode(AmFlowMode::Aligned),
        AmFlowConfig::Aligned(AligningEncoderConfig::default())
    );
    assert_eq!(aligned.channels(4), 24);
    assert_eq!(AmFlowConfig::Vanilla {}.channels(4), 4);
    assert_eq!(AmFlowConfig::Off {}.channels(4), 0);
}

/// Fuzz crash (model_config): `temporal_blocks = "AM/1844674730470955161"` collected
/// `1..=n` into a list before any backbone could reject `n` (an allocation of 10^19 block
/// numbers; 46 crash files, all this one cause, some in `Display` of a 60M-entry list).
#[test]
fn temporal_blocks_am_n_is_bounded_before_it_is_listed() {
    use amflow::config::MAX_TEMPORAL_BLOCKS;
    for s in ["AM/1844674730470955161", "AM/92233720368", "AM/4097"] {
        let e = s.parse::<TemporalBlocks>().unwrap_err();
        assert!(e.to_string().contains("at most"), "{s}: {e}");
    }
    let all = format!("AM/{MAX_TEMPORAL_BLOCKS}")
        .parse::<TemporalBlocks>()
        .unwrap();
    assert_eq!(
        all,
        TemporalBlocks::List((1..=MAX_TEMPORAL_BLOCKS).collect())
    );
    let mut text = Preset::Tiny.config().to_toml();
    text = text.replace(
        "temporal_blocks = \"all\"",
        "temporal_blocks = \"AM/6666666665\"",
    );
    assert!(text.contains("AM/6666666665"));
    assert!(ModelConfig::from_toml_str(&text, None).is_err());
}
