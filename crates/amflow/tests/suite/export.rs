//! Exporting a ViT in the `transformers` DINOv2 layout (`Vit::to_hf_tensors`,
//! `VitConfig::to_hf_config_json`): a real `transformers` file exports back to itself, a
//! random ViT survives export and reload bit for bit, and configs round-trip.

use amflow::backbone::{BackboneFamily, Vit, VitConfig, HF_CONFIG_FILE, HF_WEIGHTS_FILE};
use amflow::{AmflowError, HostTensor, Preset};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::util::{device, fixture, read};

fn hf_config(model: &str) -> VitConfig {
    let text = std::fs::read_to_string(fixture(&format!("hf/{model}/config.json"))).unwrap();
    VitConfig::from_hf_config(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn outputs(vit: &Vit, pixels: Tensor<4>) -> Vec<HostTensor> {
    let (hidden, logits) = vit.forward_plain(pixels).unwrap();
    let mut out = vec![
        HostTensor::from_tensor(&hidden),
        HostTensor::from_tensor(&vit.final_norm.forward(hidden)),
    ];
    out.extend(logits.iter().map(HostTensor::from_tensor));
    out
}

#[test]
fn transformers_files_export_back_to_themselves() {
    for model in ["dinov2_tiny", "dinov2_reg_tiny"] {
        let original = read(&format!("hf/{model}/model.safetensors"));
        let (vit, _) = Vit::from_hf_file(original.clone(), &hf_config(model), &device()).unwrap();
        let exported = vit.to_hf_tensors().unwrap();
        // The fixtures are `Dinov2Model` state dicts (no prefix); mask_token is unused.
        let want: Vec<(&String, &HostTensor)> = original
            .tensors
            .iter()
            .filter(|(k, _)| k.as_str() != "embeddings.mask_token")
            .collect();
        assert_eq!(exported.tensors.len(), want.len(), "{model}: tensor count");
        for (name, t) in want {
            let got = exported
                .tensors
                .get(name)
                .unwrap_or_else(|| panic!("{model}: `{name}` not exported"));
            assert_eq!(got.shape, t.shape, "{model}: `{name}` shape");
            assert_eq!(got.data, t.data, "{model}: `{name}` values");
        }
    }
}

#[test]
fn random_vit_survives_export_and_reload_exactly() {
    let mut with_registers = Preset::SyntheticSmall.config().backbone.arch;
    with_registers.num_registers = 2;
    with_registers.pos_interpolation = amflow::backbone::PosInterpolation::BicubicAntialias;
    for config in [
        Preset::SyntheticSmall.config().backbone.arch,
        with_registers,
    ] {
        let vit = Vit::random(&config, 7, &device()).unwrap();
        let file = vit.to_hf_tensors().unwrap();
        let (back, report) = Vit::from_hf_file(file.clone(), &config, &device()).unwrap();
        assert_eq!(report.applied, file.tensors.len());
        assert!(report.ignored.is_empty());
        let s = config.native_image_size;
        let pixels = Tensor::<4>::random([2, 3, s, s], Distribution::Normal(0.0, 1.0), &device());
        for (a, b) in outputs(&vit, pixels.clone())
            .iter()
            .zip(outputs(&back, pixels))
        {
            assert_eq!(a.shape, b.shape);
            assert_eq!(a.max_abs_diff(&b), 0.0);
        }
        // Shapes of the DINOv2 layout.
        let d = config.hidden_size;
        let g = config.native_grid();
        let p = config.patch_size;
        let shape = |k: &str| file.tensors[k].shape.clone();
        assert_eq!(shape("embeddings.cls_token"), vec![1, 1, d]);
        assert_eq!(
            shape("embeddings.position_embeddings"),
            vec![1, 1 + g * g, d]
        );
        assert_eq!(
            shape("embeddings.patch_embeddings.projection.weight"),
            vec![d, 3, p, p]
        );
        assert_eq!(
            shape("encoder.layer.3.attention.attention.query.weight"),
            vec![d, d]
        );
        assert_eq!(shape("encoder.layer.0.layer_scale2.lambda1"), vec![d]);
        assert_eq!(shape("layernorm.bias"), vec![d]);
        if config.num_registers > 0 {
            assert_eq!(shape("embeddings.register_tokens"), vec![1, 2, d]);
        }
    }
}

#[test]
fn configs_round_trip_through_config_json() {
    let mut configs = vec![
        Preset::SyntheticSmall.config().backbone.arch,
        Preset::Tiny.config().backbone.arch,
        hf_config("dinov2_tiny"),
        hf_config("dinov2_reg_tiny"),
    ];
    let mut odd = configs[0].clone();
    odd.layer_norm_eps = 1e-5;
    odd.layer_scale_init = 0.1;
    odd.mlp_dim = 96; // ratio 1.5
    configs.push(odd);
    for config in configs {
        let json = config.to_hf_config_json().unwrap();
        let text = serde_json::to_string(&json).unwrap();
        let back = VitConfig::from_hf_config(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, config);
    }
}

#[test]
fn inexpressible_configs_are_errors() {
    let clip = hf_config("clip_vision_tiny");
    assert_eq!(clip.family, BackboneFamily::Clip);
    assert!(matches!(
        clip.to_hf_config_json(),
        Err(AmflowError::Config(_))
    ));
    let vit = Vit::random(&clip, 0, &device()).unwrap();
    assert!(matches!(vit.to_hf_tensors(), Err(AmflowError::Config(_))));

    let base = Preset::SyntheticSmall.config().backbone.arch;
    let mut no_ls = base.clone();
    no_ls.layer_scale = false;
    let mut interp = base.clone();
    interp.pos_interpolation = amflow::backbone::PosInterpolation::Forbid;
    let mut act = base;
    act.activation = amflow::nn::Activation::QuickGelu;
    for c in [no_ls, interp, act] {
        assert!(matches!(c.to_hf_config_json(), Err(AmflowError::Config(_))));
    }
}

#[test]
fn save_hf_writes_a_loadable_model_directory() {
    let config = Preset::Tiny.config().backbone.arch;
    let vit = Vit::random(&config, 3, &device()).unwrap();
    let dir = std::env::temp_dir().join(format!("amflow-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    vit.save_hf(&dir).unwrap();
    let text = std::fs::read_to_string(dir.join(HF_CONFIG_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["model_type"], "dinov2");
    let read_back = VitConfig::from_hf_config(&json).unwrap();
    assert_eq!(read_back, config);
    let (back, _) = Vit::load_hf(&dir.join(HF_WEIGHTS_FILE), &read_back, &device()).unwrap();
    let pixels = Tensor::<4>::random([1, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device());
    for (a, b) in outputs(&vit, pixels.clone())
        .iter()
        .zip(outputs(&back, pixels))
    {
        assert_eq!(a.max_abs_diff(&b), 0.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
