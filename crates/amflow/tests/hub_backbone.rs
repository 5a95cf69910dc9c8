//! Backbones by Hub name, end to end against a loopback stand-in of the Hub
//! (`amflow-hub/tests/support/hub_server.rs`) serving the committed `transformers` fixtures in
//! the Hub's URL layout: the architecture read from `config.json`, weights equal to loading
//! the same file by path, the commit recorded, a disagreeing architecture named, and a
//! checkpoint that reloads offline from the cache.
//!
//! One test, in a binary of its own: it sets `HF_ENDPOINT`, `HF_HUB_CACHE` and
//! `HF_HUB_OFFLINE` for the process, which no other test may see.

#[path = "../../amflow-hub/tests/support/hub_server.rs"]
mod hub_server;

use std::collections::BTreeMap;
use std::path::PathBuf;

use amflow::backbone::VitConfig;
use amflow::config::{BackboneWeights, HubWeights};
use amflow::{checkpoint, AmFlowModel, AmflowError, HostTensor, ModelConfig, Preset};
use burn::prelude::*;
use hub_server::{HubServer, ServedRepo};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(rel)
}

fn served(id: &str, dir: &str) -> ServedRepo {
    let read = |f: &str| std::fs::read(fixture(dir).join(f)).unwrap();
    ServedRepo::new(
        id,
        &[
            ("config.json", read("config.json")),
            ("model.safetensors", read("model.safetensors")),
        ],
    )
}

fn logits(model: &AmFlowModel, device: &Device) -> HostTensor {
    let [h, w] = model.config.image_size;
    let t = model.config.num_frames;
    let n = t * 3 * h * w;
    let clip = HostTensor::new(
        vec![1, t, 3, h, w],
        (0..n)
            .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
            .collect(),
    )
    .unwrap();
    HostTensor::from_tensor(&model.forward(clip.to_tensor::<5>(device).unwrap()).unwrap())
}

#[test]
fn hub_backbones_load_like_files_pin_their_commit_and_reload_offline() {
    let device = Device::flex();
    let cache = tempfile::tempdir().unwrap();
    let repo = served("test-org/dinov2-tiny", "dinov2_tiny");
    let server = HubServer::start(vec![repo.clone()]);
    std::env::set_var("HF_ENDPOINT", server.url());
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::remove_var("HF_TOKEN");

    // `arch` left out: read from config.json, and the commit recorded.
    let mut base = Preset::Tiny.config();
    base.backbone.weights = BackboneWeights::Hub(HubWeights::new("test-org/dinov2-tiny"));
    let mut table: toml::Table = toml::from_str(&base.to_toml()).unwrap();
    table["backbone"].as_table_mut().unwrap().remove("arch");
    let text = toml::to_string(&table).unwrap();
    assert!(!text.contains("hidden_size"), "{text}");
    let config = ModelConfig::from_toml_str(&text, None).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("dinov2_tiny/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config.backbone.arch,
        VitConfig::from_hf_config(&json).unwrap()
    );
    assert_eq!(config.backbone.arch.mlp_dim, 128, "mlp_ratio 4 of width 32");
    let BackboneWeights::Hub(h) = &config.backbone.weights else {
        panic!("hub weights expected")
    };
    assert_eq!(h.commit.as_deref(), Some(repo.commit.as_str()));

    // The same weights as the file loaded by path, to the bit.
    let (hub_model, report) = AmFlowModel::new(&config, &device).unwrap();
    assert_eq!(
        report.unwrap().hub_commit.as_deref(),
        Some(repo.commit.as_str())
    );
    let mut by_path = config.clone();
    by_path.backbone.weights = BackboneWeights::File {
        path: fixture("dinov2_tiny/model.safetensors"),
    };
    let (file_model, _) = AmFlowModel::new(&by_path, &device).unwrap();
    let want = logits(&file_model, &device);
    assert_eq!(logits(&hub_model, &device), want);

    // A configured architecture that disagrees with config.json is named.
    let mut wrong = config.clone();
    wrong.backbone.arch.num_heads = 2;
    match AmFlowModel::new(&wrong, &device) {
        Err(AmflowError::HubArchitecture { field, .. }) => assert_eq!(field, "num_heads"),
        Err(e) => panic!("expected the differing field named, got {e}"),
        Ok(_) => panic!("a disagreeing architecture loaded"),
    }
    // A preset's config.json is checked too: the served file is not ViT-B.
    let mut base_preset = Preset::Dinov2B14Am12Transformer.config();
    base_preset.backbone.weights = BackboneWeights::Hub(HubWeights::new("test-org/dinov2-tiny"));
    let e = AmFlowModel::new(&base_preset, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("backbone.arch.hidden_size = 768"), "{e}");

    // A checkpoint names its commit and reloads with the Hub gone, offline.
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("init.safetensors");
    checkpoint::save(&hub_model, &ckpt, &BTreeMap::new()).unwrap();
    server.stop();
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let loaded = checkpoint::load(&ckpt, &device).unwrap();
    assert_eq!(
        loaded.model.config.backbone.weights,
        config.backbone.weights
    );
    assert_eq!(logits(&loaded.model, &device), want);
    // Offline, a repository never fetched is one line naming the cache.
    let mut other = config.clone();
    other.backbone.weights = BackboneWeights::Hub(HubWeights::new("test-org/other"));
    let e = AmFlowModel::new(&other, &device).err().unwrap().to_string();
    assert!(e.contains("HF_HUB_OFFLINE") && !e.contains('\n'), "{e}");
    std::env::remove_var("HF_HUB_OFFLINE");
}
