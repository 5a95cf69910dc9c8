//! Every shipped recipe (`configs/*.toml`) parses, builds with a small random backbone of the
//! same family standing in for the real weights, and trains one optimizer step (then validates)
//! on a tiny dataset in the recipe's own dataset format: a Kinetics-400 CSV with label folders,
//! Something-Something v2 JSON files with `<id>.webm` videos, Toyota Smarthome file names.
//!
//! The recipe's text is used as shipped, with its sizes scaled down (224 -> 28 or 32 pixels,
//! 256 -> short side 36), the backbone swapped and the dataset paths set by `--set`-style
//! overrides, which is how a user points a recipe at their data.

use std::path::{Path, PathBuf};

use amflow_train::trainer::{self, Silent};
use amflow_train::TrainConfig;
use amflow_video::{
    write_synthetic_dataset, EncodeConfig, MotionClass, SyntheticMotionConfig,
    SyntheticMotionDataset,
};
use burn::prelude::*;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// Four short videos (long enough for 32 frames 4 apart) of 32x32 pixels.
fn source_videos(dir: &Path) -> Vec<PathBuf> {
    let ds = SyntheticMotionDataset::new(SyntheticMotionConfig {
        num_samples: 4,
        num_frames: 130,
        size: 32,
        classes: vec![MotionClass::Left, MotionClass::Right],
        ..SyntheticMotionConfig::default()
    })
    .unwrap();
    let manifest = write_synthetic_dataset(&ds, dir, &EncodeConfig::default()).unwrap();
    manifest.entries.into_iter().map(|e| e.path).collect()
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// Lays the videos out as `format` expects; the overrides that point a recipe at them.
fn dataset(format: &str, videos: &[PathBuf], dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    match format {
        "kinetics400_csv" => {
            let mut csv = String::from("label,youtube_id,time_start,time_end,split\n");
            for (i, v) in videos.iter().enumerate() {
                let label = if i % 2 == 0 {
                    "abseiling"
                } else {
                    "air drumming"
                };
                csv.push_str(&format!("{label},vid{i:07},0,10,train\n"));
                copy(
                    v,
                    &dir.join("clips")
                        .join(label)
                        .join(format!("vid{i:07}_000000_000010.mp4")),
                );
            }
            std::fs::write(dir.join("k400.csv"), csv).unwrap();
            ["train", "val"]
                .iter()
                .flat_map(|s| {
                    [
                        format!("data.files.{s}.csv=\"{d}/k400.csv\""),
                        format!("data.files.{s}.root=\"{d}/clips\""),
                    ]
                })
                .collect()
        }
        "something_something_v2" => {
            let templates = [
                "Pushing [something] from left to right",
                "Pulling [something]",
            ];
            let labels = format!(
                "{{\"{}\": \"0\", \"{}\": \"1\"}}",
                templates[0].replace(['[', ']'], ""),
                templates[1].replace(['[', ']'], "")
            );
            std::fs::write(dir.join("labels.json"), labels).unwrap();
            let mut records = Vec::new();
            for (i, v) in videos.iter().enumerate() {
                records.push(format!(
                    "{{\"id\": \"{}\", \"template\": \"{}\", \"placeholders\": [\"a cup\"]}}",
                    100 + i,
                    templates[i % 2]
                ));
                // Matroska with MPEG-4 inside, named as SSv2 names its files: FFmpeg reads
                // the container, not the extension.
                copy(v, &dir.join("videos").join(format!("{}.webm", 100 + i)));
            }
            std::fs::write(dir.join("train.json"), format!("[{}]", records.join(","))).unwrap();
            ["train", "val"]
                .iter()
                .flat_map(|s| {
                    [
                        format!("data.files.{s}.labels=\"{d}/labels.json\""),
                        format!("data.files.{s}.annotations=\"{d}/train.json\""),
                        format!("data.files.{s}.root=\"{d}/videos\""),
                    ]
                })
                .collect()
        }
        "toyota_smarthome" => {
            // Subjects 3 (cross-subject train) and 2 (test); cameras 1 (CV train) and 5 (CV
            // validation); activities of both protocols' class lists.
            for (i, v) in videos.iter().enumerate() {
                for activity in ["Cutbread", "Drink.Fromcup"] {
                    let subject = if i % 2 == 0 { 3 } else { 2 };
                    let camera = if i < 2 { 1 } else { 5 };
                    copy(
                        v,
                        &dir.join("mp4").join(format!(
                            "{activity}_p{subject:02}_r{i:02}_v00_c{camera:02}.mp4"
                        )),
                    );
                }
            }
            ["train", "val"]
                .iter()
                .map(|s| format!("data.files.{s}.root=\"{d}/mp4\""))
                .collect()
        }
        other => panic!("a recipe in an untested format `{other}`"),
    }
}

#[test]
fn every_recipe_parses_builds_and_takes_one_step_on_its_dataset_format() {
    let root = std::env::temp_dir().join(format!("amflow-recipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let videos = source_videos(&root.join("source"));
    let mut recipes: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    recipes.sort();
    assert!(recipes.len() >= 8, "{recipes:?}");
    let device = Device::flex();
    for recipe in &recipes {
        let name = recipe.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(recipe).unwrap();
        // As shipped: a real config, nothing but the dataset paths left to set.
        let shipped = TrainConfig::from_toml(&text, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = shipped.model.resolve(None).unwrap();
        assert!(
            matches!(
                model.backbone.weights,
                amflow::config::BackboneWeights::Hub(_)
            ),
            "{name}: a recipe names its Hub weights"
        );
        let format = text
            .lines()
            .find_map(|l| l.strip_prefix("format = \""))
            .and_then(|l| l.split('"').next())
            .unwrap()
            .to_string();
        // Scaled down: CLIP's patch 16 wants 32 pixels, DINOv2's patch 14 wants 28.
        let side = if model.backbone.arch.patch_size == 16 {
            32
        } else {
            28
        };
        let small = text.replace("224", &side.to_string()).replace("256", "36");
        let dir = root.join(&name);
        let mut overrides = dataset(&format, &videos, &dir);
        overrides.extend([
            "model.backbone.weights={ random = { seed = 0 } }".to_string(),
            "model.backbone.arch.hidden_size=32".into(),
            "model.backbone.arch.num_heads=4".into(),
            "model.backbone.arch.mlp_dim=64".into(),
            format!("model.backbone.arch.native_image_size={side}"),
            "model.adapter.bottleneck=8".into(),
            // The tiny datasets have fewer classes than the real ones: take the data's.
            "model.num_classes=0".into(),
            "optim.batch_size=4".into(),
            "optim.accumulate=1".into(),
            "optim.epochs=1".into(),
            "loader.workers=1".into(),
        ]);
        if text.contains("mode = \"aligned\"") {
            overrides.push("model.am_flow.dim=16".into());
            overrides.push("model.am_flow.heads=4".into());
        }
        let config =
            TrainConfig::from_toml(&small, &overrides).unwrap_or_else(|e| panic!("{name}: {e}"));
        let built = config.model.resolve(None).unwrap();
        assert_eq!(
            built.num_frames, model.num_frames,
            "{name}: frames as shipped"
        );
        assert_eq!(built.temporal_blocks, model.temporal_blocks, "{name}");
        assert_eq!(built.tpm, model.tpm.clone(), "{name}: the TPM as shipped");
        let run_dir = dir.join("run");
        let outcome = trainer::train(&config, &run_dir, false, &device, &mut Silent)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(outcome.history.len(), 1, "{name}");
        let last = amflow::checkpoint::load(&run_dir.join("last.safetensors"), &device).unwrap();
        assert_eq!(
            last.metadata.get("step").map(String::as_str),
            Some("1"),
            "{name}: one optimizer step"
        );
        eprintln!("{name}: ok ({format}, {} frames)", built.num_frames);
    }
    std::fs::remove_dir_all(&root).unwrap();
}
