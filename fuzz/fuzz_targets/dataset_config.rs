//! Dataset TOML: `DatasetConfig` (synthetic or files + `ManifestSpec` + `FileDatasetConfig`)
//! and a bare `ManifestSpec` file (what `amflow data check spec.toml` reads), then the
//! checks a dataset runs on its config before reading any file.
#![no_main]

use std::path::Path;

use amflow_video::{
    sample_indices, DatasetConfig, FileVideoDataset, Manifest, ManifestEntry, ManifestSpec,
    MediaKind, SampleMode, SplitMix64, SyntheticAppearanceDataset, SyntheticMotionDataset,
    VideoDataset,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = toml::from_str::<ManifestSpec>(text) {
        let _ = spec.relative_to(Path::new("/nonexistent/amflow-fuzz"));
    }
    let Ok(config) = toml::from_str::<DatasetConfig>(text) else {
        return;
    };
    // What a run directory records must read back.
    if let Ok(back) = toml::to_string(&config) {
        toml::from_str::<DatasetConfig>(&back).expect("a serialised config reads back");
    }
    match config {
        DatasetConfig::Synthetic { synthetic } => {
            let small = synthetic.num_frames.saturating_mul(synthetic.size) <= 256;
            if let Ok(ds) = SyntheticAppearanceDataset::new(synthetic.clone()) {
                let _ = ds.len();
            }
            if let Ok(ds) = SyntheticMotionDataset::new(synthetic) {
                let _ = (ds.len(), ds.class_names().len(), ds.flip_policy());
                // Render the small ones: the config's floats drive the scene.
                if small && ds.len() > 0 {
                    let clip = ds.get(ds.len() - 1, 7).expect("a valid config renders");
                    let values = clip.normalized();
                    assert!(values.iter().all(|v| v.is_finite()), "non-finite pixels");
                }
            }
        }
        DatasetConfig::Files { dataset, .. } => {
            let manifest = Manifest {
                entries: vec![
                    ManifestEntry {
                        path: "/nonexistent/amflow-fuzz/a.mp4".into(),
                        label: 0,
                        media: MediaKind::Video,
                    };
                    3
                ],
                class_names: vec!["a".into()],
            };
            let read = dataset.read.clone();
            let temporal_views = dataset.temporal_views;
            if let Ok(ds) = FileVideoDataset::new(manifest, dataset) {
                let _ = (
                    ds.len(),
                    ds.views(),
                    ds.describe(ds.len().saturating_sub(1)),
                );
                // A config the dataset accepted samples every video length without panicking
                // (the frame indices of a clip are drawn before any file is decoded).
                let mut rng = SplitMix64::new(0);
                for n in [1, 2, 7, 300] {
                    for mode in [
                        SampleMode::Train,
                        SampleMode::Test {
                            view: temporal_views.saturating_sub(1),
                            views: temporal_views,
                        },
                    ] {
                        if let Ok(idx) =
                            sample_indices(&read.sampler, n, mode, read.short_video, &mut rng)
                        {
                            assert_eq!(idx.len(), read.sampler.num_frames());
                            assert!(idx.iter().all(|&i| i < n), "index past the video");
                        }
                    }
                }
            }
        }
    }
});
