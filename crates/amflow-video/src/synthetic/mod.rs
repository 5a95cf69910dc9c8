//! The synthetic motion dataset (the project's embedded default data): clips whose
//! action classes differ only by how the main object (or the camera) moves, while
//! every appearance factor (shape, texture, colours, background, distractors) is random
//! and shared by all classes. Optional camera motion (pan + jitter of the textured
//! background) makes the motion relative to the scene, which is what a frame-aligning
//! encoder must recover. The main object's shape is a separate appearance label for
//! pretraining an image model on single frames ([`SyntheticAppearanceDataset`]).
//!
//! Everything is rendered procedurally in memory from `(seed, index)`: the same
//! configuration always yields bit-identical clips. Reference: this follows the idea of
//! motion-only synthetic benchmarks (e.g. "Moving MNIST", Srivastava et al., 2015) but
//! with class definitions of our own, listed in [`MotionClass`].

mod config;
mod dataset;
mod render;
mod scene;

pub use config::{
    CameraMotion, MotionClass, ShapeKind, SyntheticMotionConfig, MAX_SYNTHETIC_CLIP_VALUES,
};
pub use dataset::{SyntheticAppearanceDataset, SyntheticMotionDataset};

#[cfg(test)]
mod tests {
    use amflow_rng::{derive_seed, SplitMix64};

    use super::scene::build_scene;
    use super::*;
    use crate::dataset::VideoDataset;
    use crate::transform::FlipPolicy;

    /// Fuzz-harness finding (dataset_config): `size` and `num_frames` were unbounded, so a
    /// config's numbers sized each rendered clip (`size = 10^9`: 3 x 10^18 values) and
    /// `num_samples x num_frames` overflowed the appearance dataset's `len()`.
    #[test]
    fn clip_sizes_past_the_limit_are_config_errors() {
        let base = SyntheticMotionConfig::default();
        for c in [
            SyntheticMotionConfig {
                size: 1_000_000_000,
                ..base.clone()
            },
            SyntheticMotionConfig {
                num_frames: usize::MAX / 2,
                ..base.clone()
            },
            SyntheticMotionConfig {
                num_samples: usize::MAX,
                ..base.clone()
            },
        ] {
            let e = SyntheticMotionDataset::new(c).unwrap_err();
            assert!(matches!(e, crate::DataError::Config(_)), "{e:?}");
        }
        // 5 x 4096 x 4096 x 3 is just under 2^28 values, 6 frames are over.
        let edge = SyntheticMotionConfig {
            num_frames: 5,
            size: 4096,
            ..base
        };
        assert!(SyntheticMotionDataset::new(edge.clone()).is_ok());
        let over = SyntheticMotionConfig {
            num_frames: 6,
            ..edge
        };
        assert!(SyntheticMotionDataset::new(over).is_err());
    }

    fn small(classes: Vec<MotionClass>) -> SyntheticMotionDataset {
        SyntheticMotionDataset::new(SyntheticMotionConfig {
            num_samples: 64,
            classes,
            noise: 0.0,
            max_distractors: 0,
            ..SyntheticMotionConfig::default()
        })
        .unwrap()
    }

    /// Centroid of pixels that differ from frame 0's background estimate: we instead
    /// track the main object through its colour mask (pixels equal to one of its colours).
    fn object_centroid(ds: &SyntheticMotionDataset, index: usize, t: usize) -> (f32, f32, f32) {
        let mut rng = SplitMix64::new(derive_seed(ds.config().seed, &[index as u64]));
        let shape = ShapeKind::ALL[rng.below(ShapeKind::ALL.len())];
        let (label, _) = ds.labels(index).unwrap();
        let scene = build_scene(ds.config(), ds.config().classes[label], shape, &mut rng);
        let size = ds.config().size;
        let obj = scene.objects.last().copied().unwrap();
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        let c = size as f32 / 2.0;
        for y in 0..size {
            for x in 0..size {
                let wx = (x as f32 + 0.5 - c) / scene.zoom[t] + c + scene.camera[t].0;
                let wy = (y as f32 + 0.5 - c) / scene.zoom[t] + c + scene.camera[t].1;
                if obj.color_at(t as f32, wx, wy).is_some() {
                    sx += x as f32;
                    sy += y as f32;
                    n += 1.0;
                }
            }
        }
        (sx / n, sy / n, n)
    }

    #[test]
    fn translation_classes_move_the_object_the_right_way() {
        let ds = small(vec![
            MotionClass::Left,
            MotionClass::Right,
            MotionClass::Up,
            MotionClass::Down,
        ]);
        for i in 0..16 {
            let (x0, y0, _) = object_centroid(&ds, i, 0);
            let (x1, y1, _) = object_centroid(&ds, i, 7);
            let (dx, dy) = (x1 - x0, y1 - y0);
            match i % 4 {
                0 => assert!(dx < -8.0 && dy.abs() < 3.0, "left {dx} {dy}"),
                1 => assert!(dx > 8.0 && dy.abs() < 3.0, "right {dx} {dy}"),
                2 => assert!(dy < -8.0 && dx.abs() < 3.0, "up {dx} {dy}"),
                _ => assert!(dy > 8.0 && dx.abs() < 3.0, "down {dx} {dy}"),
            }
        }
    }

    #[test]
    fn approach_grows_and_leave_shrinks() {
        let ds = small(vec![MotionClass::Approach, MotionClass::Leave]);
        for i in 0..8 {
            let (_, _, a0) = object_centroid(&ds, i, 0);
            let (_, _, a1) = object_centroid(&ds, i, 7);
            if i % 2 == 0 {
                assert!(a1 > a0 * 2.0, "approach {a0} -> {a1}");
            } else {
                assert!(a0 > a1 * 2.0, "leave {a0} -> {a1}");
            }
        }
    }

    #[test]
    fn static_frames_are_identical_without_noise_and_camera() {
        let ds = small(vec![MotionClass::Static]);
        let f = ds.render(3).unwrap();
        assert!(f.iter().all(|x| *x == f[0]));
        let ds = small(vec![MotionClass::RotateCw]);
        let f = ds.render(3).unwrap();
        assert_ne!(f[0], f[1]);
    }

    #[test]
    fn deterministic_per_seed_and_varied_across_samples() {
        let ds = small(MotionClass::ALL.to_vec());
        let a = ds.get(5, 0).unwrap();
        let b = ds.get(5, 99).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shape, [8, 3, 56, 56]);
        assert_ne!(ds.get(16, 0).unwrap().data, a.data);
        let other = SyntheticMotionDataset::new(SyntheticMotionConfig {
            seed: 1,
            ..ds.config().clone()
        })
        .unwrap();
        assert_ne!(other.get(5, 0).unwrap().data, a.data);
        assert!(ds.get(64, 0).is_err());
        // Labels are balanced and appearance labels cover every shape.
        let shapes: std::collections::BTreeSet<usize> =
            (0..64).map(|i| ds.labels(i).unwrap().1).collect();
        assert_eq!(shapes.len(), 6);
    }

    #[test]
    fn fresh_each_call_varies_with_the_seed_but_keeps_the_label() {
        let mut cfg = small(MotionClass::ALL.to_vec()).config().clone();
        cfg.fresh_each_call = true;
        let ds = SyntheticMotionDataset::new(cfg).unwrap();
        let a = ds.get(7, 1).unwrap();
        assert_eq!(a, ds.get(7, 1).unwrap());
        let b = ds.get(7, 2).unwrap();
        assert_ne!(a.data, b.data);
        assert_eq!((a.label, b.label), (7, 7));
    }

    #[test]
    fn camera_pan_moves_the_background() {
        let mut cfg = small(vec![MotionClass::Static]).config().clone();
        cfg.camera = CameraMotion {
            pan: 0.03,
            jitter: 0.01,
        };
        let ds = SyntheticMotionDataset::new(cfg).unwrap();
        let moved = (0..8).filter(|&i| {
            let f = ds.render(i).unwrap();
            f[0] != f[7]
        });
        assert!(moved.count() >= 6);
    }

    #[test]
    fn flip_policy_pairs_mirrored_classes_and_config_is_checked() {
        let ds = small(MotionClass::ALL.to_vec());
        assert_eq!(
            ds.flip_policy(),
            FlipPolicy::SwapLabels {
                pairs: vec![[1, 2], [5, 6]]
            }
        );
        let bad = SyntheticMotionConfig {
            num_frames: 1,
            ..SyntheticMotionConfig::default()
        };
        assert!(SyntheticMotionDataset::new(bad).is_err());
        let bad = SyntheticMotionConfig {
            classes: vec![MotionClass::Left, MotionClass::Left],
            ..SyntheticMotionConfig::default()
        };
        assert!(SyntheticMotionDataset::new(bad).is_err());
        let cfg: SyntheticMotionConfig = toml::from_str(
            "num_frames = 4\nsize = 32\nclasses = [\"left\", \"right\"]\n[camera]\npan = 0.02\n",
        )
        .unwrap();
        assert_eq!(cfg.classes, vec![MotionClass::Left, MotionClass::Right]);
    }

    #[test]
    fn appearance_dataset_yields_single_labelled_frames() {
        let cfg = SyntheticMotionConfig {
            num_samples: 4,
            ..SyntheticMotionConfig::default()
        };
        let motion = SyntheticMotionDataset::new(cfg.clone()).unwrap();
        let app = SyntheticAppearanceDataset::new(cfg).unwrap();
        assert_eq!(app.len(), 32);
        assert_eq!(app.class_names().len(), 6);
        let clip = app.get(8 + 3, 0).unwrap();
        assert_eq!(clip.shape, [1, 3, 56, 56]);
        let full = motion.get(1, 0).unwrap();
        assert_eq!(clip.label, full.appearance_label.unwrap());
        let plane = 3 * 56 * 56;
        assert_eq!(&clip.data[..], &full.data[3 * plane..4 * plane]);
    }
}
