//! The loader over real components: the synthetic dataset (order, determinism, shapes,
//! bounded prefetch) and a file dataset mixing good videos encoded by the ffmpeg tool
//! with broken ones (skip policy with replacements and summary, fail policy), plus the
//! manifest scanner on the same files.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use amflow_video::*;
use common::*;

fn synthetic(n: usize) -> Arc<SyntheticMotionDataset> {
    Arc::new(
        SyntheticMotionDataset::new(SyntheticMotionConfig {
            num_samples: n,
            num_frames: 4,
            size: 32,
            ..SyntheticMotionConfig::default()
        })
        .unwrap(),
    )
}

#[test]
fn synthetic_batches_cover_every_sample_once_in_a_seeded_order() {
    let ds = synthetic(20);
    let cfg = LoaderConfig {
        batch_size: 6,
        workers: 2,
        prefetch: 1,
        seed: 3,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(ds.clone(), cfg).unwrap();
    assert_eq!(loader.num_batches(), 4);
    let run = |epoch| loader.epoch(epoch).collect::<Result<Vec<Batch>>>().unwrap();
    let a = run(0);
    assert_eq!(
        a.iter().map(|b| b.shape[0]).collect::<Vec<_>>(),
        [6, 6, 6, 2]
    );
    assert_eq!(a[0].shape, [6, 4, 3, 32, 32]);
    let mut seen: Vec<usize> = a.iter().flat_map(|b| b.indices.clone()).collect();
    assert_ne!(seen, (0..20).collect::<Vec<_>>(), "shuffled");
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    // Content and labels are the dataset's.
    let b = &a[1];
    let clip = ds.get(b.indices[2], 0).unwrap();
    let n = clip.data.len();
    assert_eq!(&b.data[2 * n..3 * n], &clip.data[..]);
    assert_eq!(b.clip(2), Some(&clip.data[..]));
    assert_eq!((b.len(), b.clip(6)), (6, None));
    assert_eq!(b.labels[2], clip.label);
    assert_eq!(
        b.appearance_labels.as_ref().unwrap()[2],
        clip.appearance_label.unwrap()
    );
    // Same epoch, same batches (whatever the worker count); another epoch, another order.
    assert_eq!(a, run(0));
    let one_worker = Loader::new(
        ds.clone(),
        LoaderConfig {
            batch_size: 6,
            workers: 1,
            prefetch: 3,
            seed: 3,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        a,
        one_worker.epoch(0).collect::<Result<Vec<Batch>>>().unwrap()
    );
    assert_ne!(a[0].indices, run(1)[0].indices);
}

#[test]
fn dropping_an_epoch_midway_stops_the_workers() {
    let loader = Loader::new(
        synthetic(40),
        LoaderConfig {
            batch_size: 2,
            workers: 2,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let mut epoch = loader.epoch(0);
    assert!(epoch.next().unwrap().is_ok());
    drop(epoch); // must not hang
    let cfg = LoaderConfig {
        batch_size: 4,
        drop_last: true,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(synthetic(10), cfg).unwrap();
    let batches: Vec<_> = loader.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].indices, [0, 1, 2, 3]);
    assert!(Loader::new(
        synthetic(1),
        LoaderConfig {
            batch_size: 0,
            ..LoaderConfig::default()
        }
    )
    .is_err());
}

/// A manifest of 4 good videos and 4 broken ones (missing, empty, random bytes,
/// truncated), written as a `path label` list.
fn mixed_manifest(dir: &Path) -> Manifest {
    let f = &FIXTURES[0];
    let good = encode_fixture(dir, f);
    let bytes = std::fs::read(&good).unwrap();
    let mut list = String::new();
    for i in 0..4 {
        let p = dir.join(format!("good{i}.{}", f.ext));
        std::fs::copy(&good, &p).unwrap();
        list += &format!("{} {}\n", p.file_name().unwrap().to_str().unwrap(), i % 2);
    }
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    std::fs::write(
        dir.join("random.mp4"),
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("cut.{}", f.ext)),
        &bytes[..bytes.len() / 3],
    )
    .unwrap();
    list += &format!(
        "missing.mp4 0\nempty.mp4 1\nrandom.mp4 0\ncut.{} 1\n",
        f.ext
    );
    std::fs::write(dir.join("list.txt"), list).unwrap();
    std::fs::write(dir.join("classes.txt"), "zero\none\n").unwrap();
    let spec = ManifestSpec::PathLabel {
        list: dir.join("list.txt"),
        root: None,
        class_names: Some(dir.join("classes.txt")),
        media: MediaKind::Video,
    };
    spec.load().unwrap()
}

fn file_dataset(m: Manifest) -> Arc<FileVideoDataset> {
    let cfg = FileDatasetConfig {
        read: ClipReadConfig {
            sampler: Sampler::Segment { num_segments: 4 },
            resize: Resize::ShortSide(32),
            ..ClipReadConfig::default()
        },
        transform: TransformConfig::test(32),
        ..FileDatasetConfig::default()
    };
    Arc::new(FileVideoDataset::new(m, cfg).unwrap())
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn broken_files_are_skipped_replaced_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_manifest(dir.path());
    assert_eq!(m.entries.len(), 8);
    let ds = file_dataset(m);
    let cfg = LoaderConfig {
        batch_size: 4,
        workers: 2,
        max_replacements: 8,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(ds, cfg).unwrap();
    let mut epoch = loader.epoch(0);
    let batches: Vec<Batch> = epoch.by_ref().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 2);
    for b in &batches {
        assert_eq!(b.shape, [4, 4, 3, 32, 32], "replacements fill the batch");
        assert!(
            b.indices.iter().all(|&i| i < 4),
            "only good files in batches: {:?}",
            b.indices
        );
    }
    let summary = epoch.summary();
    let kinds = summary.skipped_by_kind();
    for k in ["missing", "empty", "unreadable-container"] {
        assert!(kinds.get(k).copied().unwrap_or(0) >= 1, "{k} in {kinds:?}");
    }
    for name in ["missing.mp4", "empty.mp4", "random.mp4", "cut."] {
        assert!(
            summary.skipped.iter().any(|s| s.source.contains(name)),
            "{name} skipped"
        );
    }
    assert_eq!(summary.clips, 8);
    assert!(summary.to_string().contains("skipped"), "{summary}");

    let fail = Loader::new(
        loader.dataset().clone(),
        LoaderConfig {
            batch_size: 4,
            bad_input: BadInputPolicy::Fail,
            shuffle: false,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let results: Vec<_> = fail.epoch(0).collect();
    assert!(results[0].is_ok());
    assert!(results[1].as_ref().is_err_and(|e| e.is_bad_input()));
    assert_eq!(results.len(), 2);
}

#[test]
#[cfg_attr(
    missing_test_encoders,
    ignore = "needs the ffmpeg tool with libx264, libx265, libvpx-vp9 and mpeg4 (scripts/setup.sh)"
)]
fn scanner_reports_each_broken_file_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let m = mixed_manifest(dir.path());
    let calls = AtomicUsize::new(0);
    let report = scan_manifest(
        &m,
        &ScanConfig {
            workers: 2,
            depth: ScanDepth::Full,
            ..ScanConfig::default()
        },
        &|p| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert!(p.done <= p.total && p.problems <= p.done);
        },
    );
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    assert_eq!((report.total, report.ok, report.problems.len()), (8, 4, 4));
    assert_eq!(report.frames, 4 * 48);
    let names: Vec<String> = report
        .problems
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(&names[..3], ["missing.mp4", "empty.mp4", "random.mp4"]);
    let text = report.to_string();
    assert!(text.contains("missing.mp4: file is missing"), "{text}");
    assert!(text.contains("8 files checked"), "{text}");
    // The quick scan finds the same missing/empty/random files.
    let quick = scan_manifest(&m, &ScanConfig::default(), &|_| {});
    assert!(quick.problems.len() >= 3);
}

/// The synthetic dataset, counting how many clips were requested.
struct Counting {
    inner: SyntheticMotionDataset,
    gets: AtomicUsize,
}

impl Counting {
    /// `n` synthetic clips of 2 frames of 16x16.
    fn synthetic(n: usize) -> Arc<Self> {
        Arc::new(Counting {
            inner: SyntheticMotionDataset::new(SyntheticMotionConfig {
                num_samples: n,
                num_frames: 2,
                size: 16,
                ..SyntheticMotionConfig::default()
            })
            .unwrap(),
            gets: AtomicUsize::new(0),
        })
    }
}

impl VideoDataset for Counting {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn get(&self, index: usize, seed: u64) -> Result<Clip> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(index, seed)
    }
    fn describe(&self, index: usize) -> String {
        self.inner.describe(index)
    }
}

#[test]
fn prefetch_window_bounds_work_ahead_of_a_slow_consumer() {
    let counting = Counting::synthetic(200);
    let cfg = LoaderConfig {
        batch_size: 4,
        workers: 2,
        prefetch: 2,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(counting.clone(), cfg).unwrap();
    let mut epoch = loader.epoch(0);
    assert!(epoch.next().unwrap().is_ok());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Consumed 1 batch: batches 0..1+prefetch may exist, 12 clips at most (of 200).
    let gets = counting.gets.load(Ordering::SeqCst);
    assert!(gets <= 12, "{gets} clips read ahead");
    assert!(gets >= 8, "workers should have prefetched: {gets}");
    let rest: Vec<_> = epoch.by_ref().collect();
    assert_eq!(rest.len(), 49);
    assert_eq!(epoch.summary().clips, 200);
}

#[test]
fn an_epoch_resumed_at_a_batch_delivers_the_rest_without_decoding_the_start() {
    let counting = Counting::synthetic(30);
    let cfg = LoaderConfig {
        batch_size: 4,
        workers: 2,
        seed: 9,
        name: "train".into(),
        ..LoaderConfig::default()
    };
    let loader = Loader::new(counting.clone(), cfg).unwrap();
    let whole: Vec<Batch> = loader.epoch(3).map(|b| b.unwrap()).collect();
    assert_eq!(whole.len(), 8);
    assert!(whole.iter().enumerate().all(|(i, b)| b.position == i));

    counting.gets.store(0, Ordering::SeqCst);
    let mut resumed = loader.epoch_from(3, 5);
    let rest: Vec<Batch> = resumed.by_ref().map(|b| b.unwrap()).collect();
    assert_eq!(rest, whole[5..].to_vec());
    // Batches 5..8 hold 4 + 4 + 2 clips: nothing before them was decoded.
    assert_eq!(counting.gets.load(Ordering::SeqCst), 10);
    assert_eq!(resumed.summary().batches, 3);
    assert_eq!(
        resumed.summary().to_string(),
        "train epoch 3: 3 batches, 10 clips, 0 skipped"
    );
    // Past the end: nothing.
    assert_eq!(loader.epoch_from(3, 8).count(), 0);
}

/// Batches are 8-bit and carry the clips' normalisation; clips that ask for different ones
/// cannot share a batch (one normalisation per batch on the device).
#[test]
fn batches_carry_one_normalisation_and_refuse_mixed_ones() {
    struct Mixed(Arc<Counting>);
    impl VideoDataset for Mixed {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn class_names(&self) -> &[String] {
            self.0.class_names()
        }
        fn get(&self, index: usize, seed: u64) -> Result<Clip> {
            let mut clip = self.0.get(index, seed)?;
            if index == 3 {
                clip.norm = PixelNorm::UNIT;
            }
            Ok(clip)
        }
        fn describe(&self, index: usize) -> String {
            self.0.describe(index)
        }
    }
    let config = LoaderConfig {
        batch_size: 2,
        workers: 1,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(Arc::new(Mixed(Counting::synthetic(4))), config).unwrap();
    let mut epoch = loader.epoch(0);
    let first = epoch.next().unwrap().unwrap();
    assert_eq!(first.norm, transform::Normalization::ImageNet.pixel_norm());
    assert_eq!(first.data.len(), 2 * 2 * 3 * 16 * 16);
    let host = first.normalized();
    assert_eq!(host.len(), first.data.len());
    let (scale, shift) = (first.norm.scale(), first.norm.shift());
    let last = host.len() - 1; // the last clip's last frame's blue channel
    assert_eq!(host[0], f32::from(first.data[0]) * scale[0] - shift[0]);
    assert_eq!(
        host[last],
        f32::from(first.data[last]) * scale[2] - shift[2]
    );
    let e = epoch.next().unwrap().unwrap_err();
    assert!(e.to_string().contains("different normalisations"), "{e}");
}
