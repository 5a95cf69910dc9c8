//! Parity of the frozen backbone with Hugging Face `transformers` (fixtures made by
//! `tests/fixtures/make_hf_fixtures.py`, versions in `tests/fixtures/versions.txt`): last hidden
//! state, pooled output and every block's attention logits, at the native resolution and at
//! another one (position-embedding interpolation), for DINOv2, DINOv2 with registers and CLIP.

use amflow::backbone::{AttentionMaps, BackboneFamily, Vit, VitConfig};
use amflow::{AmflowError, HostTensor, TensorFile};

use super::util::{assert_close, device, fixture, get, read};

/// Max abs error allowed for hidden states, pooled outputs and attention logits (values up to
/// ~7). Measured (flex backend vs. these fixtures, and vs. the previous ones made by the same
/// versions on another CPU): at most 4.4e-6 (dinov2_reg_tiny native, block 1 logits);
/// last_hidden_state 3.3e-6, pooler_output 1.6e-6. That is f32 noise of two blocks (~9 ulps at
/// 4-8): the same torch and transformers on two CPUs disagree by up to 2.4e-6 on these outputs.
/// The margin is only ~2.3x because the spec caps parity at 1e-5.
const TOL: f32 = 1e-5;
/// Max abs error allowed for attention probabilities (in [0, 1]). Measured: 2.7e-7; ~19x margin.
const TOL_PROBS: f32 = 5e-6;

fn config(model: &str) -> VitConfig {
    let text = std::fs::read_to_string(fixture(&format!("hf/{model}/config.json"))).unwrap();
    VitConfig::from_hf_config(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn load(model: &str) -> Vit {
    let cfg = config(model);
    let (vit, report) = Vit::load_hf(
        &fixture(&format!("hf/{model}/model.safetensors")),
        &cfg,
        &device(),
    )
    .unwrap();
    assert!(report.applied > 10, "{report}");
    vit
}

fn check(model: &str, res: &str) {
    let vit = load(model);
    let io = read(&format!("hf/{model}/io.safetensors"));
    let pixels = get(&io, &format!("pixels.{res}"))
        .to_tensor::<4>(&device())
        .unwrap();
    let (hidden, logits) = vit.forward_plain(pixels).unwrap();
    let normed = vit.final_norm.forward(hidden.clone());
    let last = match vit.config.family {
        // Dinov2Model's last_hidden_state is after `layernorm`; CLIP's is before `post_layernorm`.
        BackboneFamily::Dinov2 => normed.clone(),
        BackboneFamily::Clip => hidden,
    };
    assert_close(
        &format!("{model} {res} last_hidden_state"),
        &HostTensor::from_tensor(&last),
        get(&io, &format!("last_hidden_state.{res}")),
        TOL,
    );
    // Pooled output: LN_final(x)[class token] for both families.
    let [b, _, d] = normed.dims();
    let cls = normed.slice([0..b, 0..1, 0..d]).reshape([b, d]);
    assert_close(
        &format!("{model} {res} pooler_output"),
        &HostTensor::from_tensor(&cls),
        get(&io, &format!("pooler_output.{res}")),
        TOL,
    );
    for (i, l) in logits.iter().enumerate() {
        assert_close(
            &format!("{model} {res} attention logits of block {i}"),
            &HostTensor::from_tensor(l),
            get(&io, &format!("attn_logits.{res}.{i}")),
            TOL,
        );
    }
}

#[test]
fn dinov2_native_resolution() {
    check("dinov2_tiny", "native");
}

#[test]
fn dinov2_interpolated_resolution() {
    check("dinov2_tiny", "other");
}

#[test]
fn dinov2_registers_native_resolution() {
    check("dinov2_reg_tiny", "native");
}

#[test]
fn dinov2_registers_interpolated_resolution_antialiased() {
    check("dinov2_reg_tiny", "other");
}

#[test]
fn clip_native_resolution() {
    check("clip_vision_tiny", "native");
}

#[test]
fn clip_interpolated_resolution() {
    check("clip_vision_tiny", "other");
}

#[test]
fn attention_probabilities_match_too() {
    let vit = load("dinov2_tiny");
    let io = read("hf/dinov2_tiny/io.safetensors");
    let pixels = get(&io, "pixels.other").to_tensor::<4>(&device()).unwrap();
    let x = vit.embed(pixels).unwrap();
    let a = vit.blocks[0].pre_attention(x);
    // The probabilities alone (no logits in memory on the CPU backend) and with the logits.
    for maps in [AttentionMaps::Probabilities, AttentionMaps::Logits] {
        let att = vit.blocks[0].attention(a.clone(), maps);
        assert_close(
            &format!("probs ({maps:?})"),
            &HostTensor::from_tensor(&att.probs.expect("asked for")),
            get(&io, "attn_probs.other.0"),
            TOL_PROBS,
        );
    }
    // The column sums alone (an untracked pass: no map in memory) against those of the
    // probabilities above.
    let sums = vit.blocks[0].attention(a.clone(), AttentionMaps::ColumnSums);
    let probs = vit.blocks[0].attention(a.clone(), AttentionMaps::Probabilities);
    assert!(sums.probs.is_none() && sums.logits.is_none());
    assert_close(
        "column sums without maps",
        &HostTensor::from_tensor(&sums.column_sums.expect("asked for")),
        &HostTensor::from_tensor(&probs.column_sums.expect("asked for")),
        1e-6,
    );
    assert_close(
        "output without maps in memory",
        &HostTensor::from_tensor(&sums.output),
        &HostTensor::from_tensor(&probs.output),
        1e-6,
    );
    let none = vit.blocks[0].attention(a.clone(), AttentionMaps::None);
    assert!(none.probs.is_none() && none.logits.is_none());
    let with_maps = vit.blocks[0].attention(a, AttentionMaps::Logits);
    assert_close(
        "output without maps",
        &HostTensor::from_tensor(&none.output),
        &HostTensor::from_tensor(&with_maps.output),
        1e-6,
    );
    let att = with_maps;
    assert_close(
        "probs",
        &HostTensor::from_tensor(&att.probs.expect("asked for")),
        get(&io, "attn_probs.other.0"),
        TOL_PROBS,
    );
}

#[test]
fn clip_hub_layout_with_vision_model_prefix_loads() {
    // Hub files of CLIPVisionModel / CLIPModel prefix the tower with `vision_model.` and may
    // carry the text tower: those tensors are reported as ignored, not applied.
    let mut file = read("hf/clip_vision_tiny/model.safetensors");
    file.tensors = file
        .tensors
        .into_iter()
        .map(|(k, v)| (format!("vision_model.{k}"), v))
        .collect();
    file.tensors.insert(
        "text_model.embeddings.token_embedding.weight".into(),
        HostTensor::new(vec![2, 2], vec![0.0; 4]).unwrap(),
    );
    let (_, report) = Vit::from_hf_file(file, &config("clip_vision_tiny"), &device()).unwrap();
    assert_eq!(
        report.ignored,
        vec!["text_model.embeddings.token_embedding.weight"]
    );
}

#[test]
fn missing_tensor_is_named() {
    let mut file = read("hf/dinov2_tiny/model.safetensors");
    file.tensors.remove("encoder.layer.1.mlp.fc2.bias");
    let err = Vit::from_hf_file(file, &config("dinov2_tiny"), &device()).unwrap_err();
    match err {
        AmflowError::MissingTensor { name, .. } => assert_eq!(name, "encoder.layer.1.mlp.fc2.bias"),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn misshaped_tensor_is_named() {
    let mut file: TensorFile = read("hf/dinov2_tiny/model.safetensors");
    file.tensors.insert(
        "encoder.layer.0.norm2.weight".into(),
        HostTensor::new(vec![31], vec![1.0; 31]).unwrap(),
    );
    let err = Vit::from_hf_file(file, &config("dinov2_tiny"), &device()).unwrap_err();
    assert!(
        matches!(&err, AmflowError::ShapeMismatch { name, expected, found }
            if name == "encoder.layer.0.norm2.weight" && expected == &vec![32] && found == &vec![31]),
        "{err}"
    );
}

#[test]
fn unexpected_tensor_is_named() {
    let mut file = read("hf/dinov2_tiny/model.safetensors");
    file.tensors.insert(
        "encoder.layer.2.norm1.weight".into(),
        HostTensor::new(vec![32], vec![1.0; 32]).unwrap(),
    );
    let err = Vit::from_hf_file(file, &config("dinov2_tiny"), &device()).unwrap_err();
    assert!(
        matches!(&err, AmflowError::UnexpectedTensor { name, .. } if name == "encoder.layer.2.norm1.weight"),
        "{err}"
    );
}

#[test]
fn wrong_family_fails_with_the_first_missing_tensor() {
    let mut cfg = config("dinov2_tiny");
    cfg.family = BackboneFamily::Clip;
    let file = read("hf/dinov2_tiny/model.safetensors");
    let err = Vit::from_hf_file(file, &cfg, &device()).unwrap_err();
    assert!(matches!(err, AmflowError::MissingTensor { .. }), "{err}");
}
