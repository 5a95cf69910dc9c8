//! Checkpoints: save then load gives identical logits for every TPM kind and AM flow mode; the
//! tensor names are the documented ones; a mismatched checkpoint fails naming the tensor.

use std::collections::BTreeMap;

use amflow::checkpoint::{self, named_tensors};
use amflow::tpm::TpmConfig;
use amflow::{AmFlowModel, AmflowError, HostTensor, Preset, TensorFile};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::util::device;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("amflow-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn trained_tiny(mode: &str, tpm: &str) -> AmFlowModel {
    let mut config = Preset::Tiny.config();
    config.am_flow = config
        .am_flow
        .with_mode(serde_json::from_value(serde_json::json!(mode)).unwrap());
    config.tpm = TpmConfig::new(serde_json::from_value(serde_json::json!(tpm)).unwrap());
    config.seed = 42;
    let (mut model, _) = AmFlowModel::new(&config, &device()).unwrap();
    // Make Up non-zero so that a mix-up of tensors would change the logits.
    let mut tensors = named_tensors(&model.additions);
    for (name, t) in tensors.iter_mut() {
        if name.contains(".up.") {
            for (i, v) in t.data.iter_mut().enumerate() {
                *v = ((i % 7) as f32 - 3.0) * 0.05;
            }
        }
    }
    model.additions = checkpoint::additions_from_file(
        TensorFile {
            tensors,
            metadata: BTreeMap::new(),
        },
        &model.config,
        &device(),
    )
    .unwrap();
    model
}

#[test]
fn round_trip_gives_identical_logits() {
    for (mode, tpm) in [
        ("aligned", "transformer"),
        ("vanilla", "tcn"),
        ("vanilla", "lstm"),
        ("off", "transformer"),
    ] {
        let model = trained_tiny(mode, tpm);
        let path = tmp(&format!("{mode}-{tpm}.safetensors"));
        let extra = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
        checkpoint::save(&model, &path, &extra).unwrap();
        let loaded = checkpoint::load(&path, &device()).unwrap();
        assert_eq!(loaded.metadata.get("epoch").map(String::as_str), Some("3"));
        assert_eq!(loaded.model.config, model.config);
        let clip =
            Tensor::<5>::random([2, 4, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device());
        let a = HostTensor::from_tensor(&model.forward(clip.clone()).unwrap());
        let b = HostTensor::from_tensor(&loaded.model.forward(clip).unwrap());
        assert_eq!(a, b, "{mode}/{tpm}");
    }
}

#[test]
fn tensor_names_are_the_documented_ones() {
    let model = trained_tiny("aligned", "transformer");
    let names: Vec<String> = named_tensors(&model.additions).into_keys().collect();
    for expected in [
        "blocks.0.attn_adapter.down.weight",
        "blocks.0.attn_adapter.down.bias",
        "blocks.0.attn_adapter.up.weight",
        "blocks.0.attn_adapter.scale",
        "blocks.0.mlp_adapter.down.weight",
        "blocks.1.aligning_encoder.proj.weight",
        "blocks.1.aligning_encoder.pos_embed",
        "blocks.1.aligning_encoder.layers.0.attn.q.weight",
        "blocks.1.aligning_encoder.layers.0.norm1.weight",
        "blocks.1.aligning_encoder.layers.0.mlp.fc1.weight",
        "blocks.1.attn_temporal.tpm.pos_embed",
        "blocks.1.attn_temporal.tpm.layers.0.attn.o.bias",
        "blocks.1.attn_temporal.head.weight",
        "blocks.1.mlp_temporal.head.bias",
        "final_head.weight",
        "final_head.bias",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing `{expected}` in {names:?}"
        );
    }
    // Linear weights are stored [out, in] (PyTorch layout).
    let t = named_tensors(&model.additions);
    assert_eq!(
        t["blocks.0.attn_adapter.down.weight"].shape,
        vec![8, 32 + 24]
    );
    assert_eq!(t["blocks.0.attn_adapter.scale"].shape, vec![1]);
    let lstm = trained_tiny("vanilla", "lstm");
    let t = named_tensors(&lstm.additions);
    assert_eq!(t["blocks.0.attn_temporal.tpm.weight_ih"].shape, vec![32, 8]);
    assert!(t.contains_key("blocks.0.attn_temporal.tpm.bias_hh"));
    let tcn = trained_tiny("vanilla", "tcn");
    assert_eq!(
        named_tensors(&tcn.additions)["blocks.1.mlp_temporal.tpm.layers.1.weight"].shape,
        vec![8, 8, 3]
    );
}

fn load_err(tag: &str, edit: impl FnOnce(&mut TensorFile)) -> AmflowError {
    let model = trained_tiny("aligned", "transformer");
    let path = tmp(&format!("edited-{tag}.safetensors"));
    checkpoint::save(&model, &path, &BTreeMap::new()).unwrap();
    let mut file = TensorFile::read(&path).unwrap();
    edit(&mut file);
    file.write_atomic(&path).unwrap();
    checkpoint::load(&path, &device()).unwrap_err()
}

#[test]
fn missing_tensor_is_named() {
    let err = load_err("1", |f| {
        f.tensors.remove("blocks.1.mlp_temporal.head.weight");
    });
    assert!(
        matches!(&err, AmflowError::MissingTensor { name, .. } if name == "blocks.1.mlp_temporal.head.weight"),
        "{err}"
    );
}

#[test]
fn unexpected_tensor_is_named() {
    let err = load_err("2", |f| {
        f.tensors.insert(
            "blocks.7.attn_adapter.scale".into(),
            HostTensor::new(vec![1], vec![1.0]).unwrap(),
        );
    });
    assert!(
        matches!(&err, AmflowError::UnexpectedTensor { name, .. } if name == "blocks.7.attn_adapter.scale"),
        "{err}"
    );
}

#[test]
fn misshaped_tensor_is_named() {
    let err = load_err("3", |f| {
        f.tensors.insert(
            "final_head.bias".into(),
            HostTensor::new(vec![4], vec![0.0; 4]).unwrap(),
        );
    });
    assert!(
        matches!(&err, AmflowError::ShapeMismatch { name, .. } if name == "final_head.bias"),
        "{err}"
    );
}

#[test]
fn config_that_disagrees_with_the_tensors_is_an_error() {
    let err = load_err("4", |f| {
        let mut config = amflow::ModelConfig::from_toml_str(&f.metadata["config"], None).unwrap();
        config.tpm = TpmConfig::Lstm {};
        f.metadata.insert("config".into(), config.to_toml());
    });
    assert!(matches!(err, AmflowError::MissingTensor { .. }), "{err}");
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_rejected() {
    let err = load_err("5", |f| {
        f.metadata.remove("format");
    });
    assert!(matches!(err, AmflowError::Checkpoint { .. }), "{err}");
    let path = tmp("garbage.safetensors");
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    let err = checkpoint::load(&path, &device()).unwrap_err();
    assert!(matches!(err, AmflowError::SafeTensors { .. }), "{err}");
    let err = checkpoint::load(&tmp("absent.safetensors"), &device()).unwrap_err();
    assert!(matches!(err, AmflowError::Io { .. }), "{err}");
}
