//! `info`: the parameter counts derived from a config agree with the built model, and the
//! compute count follows the documented formula.

use amflow::checkpoint::named_tensors;
use amflow::info::{compute_per_clip, param_counts, summary};
use amflow::tpm::TpmConfig;
use amflow::{AmFlowModel, Preset};
use burn::module::Module;

use super::util::device;

#[test]
fn parameter_counts_match_the_built_model() {
    for (mode, tpm, blocks) in [
        ("aligned", "transformer", "all"),
        ("vanilla", "tcn", "all"),
        ("vanilla", "lstm", "AM/1(2)"),
        ("off", "transformer", "none"),
    ] {
        let mut config = Preset::Tiny.config();
        config.am_flow = config
            .am_flow
            .with_mode(serde_json::from_value(serde_json::json!(mode)).unwrap());
        config.tpm = TpmConfig::new(serde_json::from_value(serde_json::json!(tpm)).unwrap());
        config.temporal_blocks = blocks.parse().unwrap();
        let (model, _) = AmFlowModel::new(&config, &device()).unwrap();
        let counts = param_counts(&config).unwrap();
        assert_eq!(
            counts.backbone,
            model.backbone.num_params_total(),
            "{mode}/{tpm}/{blocks}"
        );
        assert_eq!(
            counts.trainable(),
            model.additions.num_params(),
            "{mode}/{tpm}/{blocks}"
        );
        let by_name = |f: &dyn Fn(&str) -> bool| -> usize {
            named_tensors(&model.additions)
                .iter()
                .filter(|(n, _)| f(n))
                .map(|(_, t)| t.data.len())
                .sum()
        };
        assert_eq!(
            counts.aligning_encoders,
            by_name(&|n| n.contains("aligning_encoder"))
        );
        assert_eq!(counts.tpms, by_name(&|n| n.contains(".tpm.")));
    }
    // A trainable backbone counts as trainable, its position embedding through the correction.
    let mut config = Preset::Tiny.config();
    config.backbone.trainable = true;
    let (model, _) = AmFlowModel::new(&config, &device()).unwrap();
    let counts = param_counts(&config).unwrap();
    assert_eq!(
        counts.trainable(),
        model.additions.num_params() + model.backbone.num_params()
    );
}

#[test]
fn vit_b_backbone_counts_match_the_known_sizes() {
    // DINOv2 ViT-B/14 has 86.58 M parameters (transformers, mask token excluded), CLIP ViT-B/16's
    // vision tower 85.80 M (without the projection); both checked with `transformers` 5.24.
    let c = param_counts(&Preset::Dinov2B14Am12Transformer.config()).unwrap();
    assert_eq!(c.backbone, 86_579_712);
    let c = param_counts(&Preset::ClipB16Am12Tcn.config()).unwrap();
    assert_eq!(c.backbone, 85_799_424);
}

#[test]
fn compute_of_the_backbone_follows_the_vit_formula() {
    let config = Preset::ClipB16Am12Tcn.config();
    let compute = compute_per_clip(&config).unwrap();
    // ViT-B/16 at 224: 197 tokens; 17.56 GMACs per frame (fvcore reports 17.6 G "FLOPs").
    let per_frame = compute.backbone_macs / 8;
    assert_eq!(
        per_frame,
        196 * 768 * 768 + 12 * (4 * 197 * 768 * 768 + 2 * 197 * 197 * 768 + 2 * 197 * 768 * 3072)
    );
    assert!((per_frame as f64 / 1e9 - 17.56).abs() < 0.05);
    assert!(summary(&config).unwrap().contains("GMACs"));
}
