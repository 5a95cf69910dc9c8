//! Prepared copies (`amflow data prepare`): clips read from one match clips read from the
//! source videos; bad inputs are left out and listed; a stopped run resumes to the same
//! bytes; `--shard i/n` parts combine to the bytes of one run; damaged shards are named
//! errors that the bad-input policy handles. Sources are synthetic clips written with
//! FFmpeg's built-in MPEG-4 encoder (always available), so nothing here is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use amflow_video::dataset::{FileDatasetConfig, FileVideoDataset, Manifest, ManifestEntry, Split};
use amflow_video::{
    prepare, scan_prepared, write_synthetic_dataset, write_video, BadInputPolicy, DataError,
    EncodeConfig, FrameCodec, Loader, LoaderConfig, ManifestSpec, MediaKind, MotionClass,
    PrepareConfig, PrepareSettings, PreparedStore, Resize, RgbFrame, SampleMode, Sampler,
    ScanConfig, ScanDepth, ShardPart, SplitMix64, SyntheticMotionConfig, SyntheticMotionDataset,
    TransformConfig, VideoDataset,
};

/// PSNR of two equally long byte buffers, in dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Six good synthetic videos (10 frames, 48x48, two classes) and four bad entries
/// (missing, zero bytes, random bytes, one frame where two are required), interleaved.
fn source(dir: &Path) -> Manifest {
    let ds = SyntheticMotionDataset::new(SyntheticMotionConfig {
        num_samples: 6,
        num_frames: 10,
        size: 48,
        classes: vec![MotionClass::Left, MotionClass::Right],
        ..SyntheticMotionConfig::default()
    })
    .unwrap();
    let good = write_synthetic_dataset(&ds, dir, &EncodeConfig::default()).unwrap();
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let noise = dir.join("noise.mp4");
    let mut rng = SplitMix64::new(7);
    std::fs::write(
        &noise,
        (0..4096).map(|_| rng.next_u64() as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let short = dir.join("short.mp4");
    write_video(
        &short,
        &[RgbFrame::filled(48, 48, [9, 99, 199])],
        &EncodeConfig::default(),
    )
    .unwrap();
    let bad = |path: PathBuf| ManifestEntry {
        path,
        label: 1,
        media: MediaKind::Video,
    };
    let mut entries = good.entries.clone();
    entries.insert(1, bad(dir.join("missing.mp4")));
    entries.insert(3, bad(empty));
    entries.insert(5, bad(noise));
    entries.push(bad(short));
    Manifest {
        entries,
        class_names: good.class_names,
    }
}

fn settings() -> PrepareSettings {
    PrepareSettings {
        videos_per_shard: 3,
        min_frames: 2,
        ..PrepareSettings::default()
    }
}

fn run(manifest: &Manifest, out: &Path, part: ShardPart, max_shards: Option<usize>) {
    let config = PrepareConfig {
        settings: settings(),
        workers: 2,
        part,
        max_shards,
    };
    prepare(manifest, out, &config, &|_| {}).unwrap();
}

/// Every file under `dir` (relative path -> bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn good_only(m: &Manifest) -> Manifest {
    Manifest {
        entries: m
            .entries
            .iter()
            .filter(|e| {
                let n = e.path.file_name().unwrap().to_string_lossy().to_string();
                !["missing.mp4", "empty.mp4", "noise.mp4", "short.mp4"].contains(&n.as_str())
            })
            .cloned()
            .collect(),
        class_names: m.class_names.clone(),
    }
}

#[test]
fn prepared_clips_match_the_source_and_bad_inputs_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = source(&dir.path().join("src"));
    let out = dir.path().join("prepared");
    run(&manifest, &out, ShardPart::default(), None);

    // The report lists the four bad inputs with their reasons; the copy holds the rest
    // with the original labels and class list.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let kinds: Vec<(String, String)> = report["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let p = PathBuf::from(b["path"].as_str().unwrap());
            (
                p.file_name().unwrap().to_string_lossy().into(),
                b["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("missing.mp4", "missing"),
        ("empty.mp4", "empty"),
        ("noise.mp4", "unreadable-container"),
        ("short.mp4", "too-few-frames"),
    ];
    assert_eq!(kinds, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(report["prepared"], 6);
    assert_eq!(report["shards_complete"], 4);
    let store = PreparedStore::open(&out).unwrap();
    let good = good_only(&manifest);
    assert_eq!(store.manifest(), &good);
    assert_eq!(store.bad_inputs().len(), 4);
    assert_eq!(
        ManifestSpec::from_path(&out).unwrap(),
        ManifestSpec::Prepared { dir: out.clone() }
    );

    // The same clips, sampled identically, within a JPEG bound: segment and dense, train
    // draws and test views, at the stored size and at a smaller decode-time size.
    let (mut worst, mut sum, mut count) = (f64::INFINITY, 0.0, 0);
    for sampler in [
        Sampler::Segment { num_segments: 4 },
        Sampler::Dense {
            num_frames: 3,
            stride: 2,
        },
    ] {
        for resize in [Resize::ShortSide(48), Resize::ShortSide(32)] {
            let read = amflow_video::ClipReadConfig {
                sampler,
                resize,
                ..Default::default()
            };
            for (i, e) in good.entries.iter().enumerate() {
                for (seed, mode) in [
                    (1, SampleMode::Train),
                    (2, SampleMode::Train),
                    (0, SampleMode::Test { view: 1, views: 3 }),
                ] {
                    let a = amflow_video::read_clip_frames(
                        &e.path,
                        e.media,
                        &read,
                        mode,
                        &mut SplitMix64::new(seed),
                    )
                    .unwrap();
                    let b = store
                        .read_clip(i, &read, mode, &mut SplitMix64::new(seed))
                        .unwrap();
                    assert_eq!(a.len(), b.len());
                    for (fa, fb) in a.iter().zip(&b) {
                        assert_eq!((fa.width, fa.height), (fb.width, fb.height));
                        let p = psnr(&fa.data, &fb.data);
                        worst = worst.min(p);
                        sum += p;
                        count += 1;
                        // The same frame, not a neighbour: neighbouring frames of these
                        // clips differ far more (checked below).
                        assert!(p > 28.0, "{}: PSNR {p:.1} dB", e.path.display());
                    }
                }
            }
        }
    }
    let mean = sum / count as f64;
    eprintln!("PSNR prepared vs source: worst {worst:.1} dB, mean {mean:.1} dB");
    assert!(mean > 32.0, "mean PSNR {mean:.1} dB");
    // A neighbouring frame is far from the 30 dB bound, so the bound tells frames apart.
    let read = amflow_video::ClipReadConfig {
        sampler: Sampler::Dense {
            num_frames: 2,
            stride: 1,
        },
        resize: Resize::ShortSide(48),
        ..Default::default()
    };
    let f = store
        .read_clip(
            0,
            &read,
            SampleMode::Test { view: 0, views: 1 },
            &mut SplitMix64::new(0),
        )
        .unwrap();
    let neighbours = psnr(&f[0].data, &f[1].data);
    eprintln!("PSNR of neighbouring frames: {neighbours:.1} dB");
    assert!(neighbours < 26.0, "{neighbours:.1} dB");

    // As a dataset: the same length, labels and views as the source files.
    for split in [Split::Train, Split::Test] {
        let config = FileDatasetConfig {
            split,
            temporal_views: 2,
            transform: TransformConfig::test(32),
            ..FileDatasetConfig::default()
        };
        let a = FileVideoDataset::new(good.clone(), config.clone()).unwrap();
        let b = FileVideoDataset::from_spec(&ManifestSpec::Prepared { dir: out.clone() }, config)
            .unwrap();
        assert!(b.prepared().is_some());
        assert_eq!(a.len(), b.len());
        assert_eq!(a.class_names(), b.class_names());
        for i in 0..a.len() {
            let (ca, cb) = (a.get(i, 5).unwrap(), b.get(i, 5).unwrap());
            assert_eq!(
                (ca.shape, ca.label, ca.sample, ca.view),
                (cb.shape, cb.label, cb.sample, cb.view)
            );
        }
    }

    // Raw frames are exact.
    let raw = dir.path().join("raw");
    let config = PrepareConfig {
        settings: PrepareSettings {
            codec: FrameCodec::Raw,
            ..settings()
        },
        ..PrepareConfig::default()
    };
    prepare(&good, &raw, &config, &|_| {}).unwrap();
    let raw = PreparedStore::open(&raw).unwrap();
    let read = amflow_video::ClipReadConfig {
        resize: Resize::ShortSide(48),
        ..Default::default()
    };
    for (i, e) in good.entries.iter().enumerate() {
        let a = amflow_video::read_clip_frames(
            &e.path,
            e.media,
            &read,
            SampleMode::Train,
            &mut SplitMix64::new(3),
        )
        .unwrap();
        let b = raw
            .read_clip(i, &read, SampleMode::Train, &mut SplitMix64::new(3))
            .unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn stopped_prepare_resumes_to_the_same_bytes_and_parts_combine() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = source(&dir.path().join("src"));
    let whole = dir.path().join("whole");
    run(&manifest, &whole, ShardPart::default(), None);
    let reference = files(&whole);

    // Stopped after one shard, then "killed" while writing the next one: a half-written
    // data file and a stray temporary index; the shard is not complete and is never read.
    let resumed = dir.path().join("resumed");
    run(&manifest, &resumed, ShardPart::default(), Some(1));
    let e = PreparedStore::open(&resumed).unwrap_err().to_string();
    assert!(e.contains("3 of 4 shards not written yet (1, 2, 3)"), "{e}");
    let half = &reference[Path::new("shards/shard-000001.bin")];
    std::fs::write(
        resumed.join("shards/shard-000001.bin.tmp"),
        &half[..half.len() / 2],
    )
    .unwrap();
    std::fs::write(
        resumed.join("shards/shard-000001.bin"),
        &half[..half.len() / 2],
    )
    .unwrap();
    std::fs::write(resumed.join("shards/shard-000002.json.tmp"), b"{").unwrap();
    run(&manifest, &resumed, ShardPart::default(), None);
    let mut got = files(&resumed);
    got.retain(|p, _| !p.to_string_lossy().ends_with(".tmp"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    assert!(got == reference, "a resumed run wrote other bytes");

    // A killed run whose data file was renamed but whose index was not written.
    std::fs::remove_file(resumed.join("shards/shard-000002.json")).unwrap();
    run(&manifest, &resumed, ShardPart::default(), None);
    let mut got = files(&resumed);
    got.retain(|p, _| !p.to_string_lossy().ends_with(".tmp"));
    assert!(got == reference);

    // Two parts of a job array into one folder, no coordinator: the same bytes.
    let parts = dir.path().join("parts");
    run(&manifest, &parts, "1/2".parse().unwrap(), None);
    assert!(PreparedStore::open(&parts).is_err());
    run(&manifest, &parts, "0/2".parse().unwrap(), None);
    assert!(
        files(&parts) == reference,
        "parts differ from one whole run"
    );
    assert!("2/2".parse::<ShardPart>().is_err() && "x".parse::<ShardPart>().is_err());

    // Other settings into the same folder are refused.
    let config = PrepareConfig {
        settings: PrepareSettings {
            short_side: Some(32),
            ..settings()
        },
        ..PrepareConfig::default()
    };
    let e = prepare(&manifest, &parts, &config, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("other settings"), "{e}");
}

#[test]
fn damaged_shards_are_named_errors_the_policy_handles() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = good_only(&source(&dir.path().join("src")));
    let out = dir.path().join("prepared");
    let config = PrepareConfig {
        settings: PrepareSettings {
            videos_per_shard: 2,
            ..settings()
        },
        ..PrepareConfig::default()
    };
    prepare(&manifest, &out, &config, &|_| {}).unwrap();
    // Shard 0: cut in the middle of its second record. Shard 1: one byte flipped in
    // the first frame of its first record.
    let s0 = out.join("shards/shard-000000.bin");
    let bytes = std::fs::read(&s0).unwrap();
    let store = PreparedStore::open(&out).unwrap();
    let second = store.record(1).unwrap();
    std::fs::write(&s0, &bytes[..(second.offset + second.len / 2) as usize]).unwrap();
    let s1 = out.join("shards/shard-000001.bin");
    let mut bytes = std::fs::read(&s1).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&s1, &bytes).unwrap();

    let read = amflow_video::ClipReadConfig::default();
    let store = PreparedStore::open(&out).unwrap();
    assert!(store
        .read_clip(0, &read, SampleMode::Train, &mut SplitMix64::new(0))
        .is_ok());
    for (i, needle) in [(1, "shard is truncated"), (2, "checksum mismatch")] {
        let e = store
            .read_clip(
                i,
                &read,
                SampleMode::Test { view: 0, views: 1 },
                &mut SplitMix64::new(0),
            )
            .unwrap_err();
        assert!(
            matches!(e, DataError::Corrupt { .. }) && e.is_bad_input(),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(needle) && msg.contains("shard-00000"), "{msg}");
        assert_eq!(e.kind_name(), "damaged-prepared-record");
    }
    // `data check` finds both.
    let report = scan_prepared(
        &store,
        &ScanConfig {
            depth: ScanDepth::Full,
            ..ScanConfig::default()
        },
        &|_| {},
    );
    assert_eq!(
        report.problems.iter().map(|p| p.entry).collect::<Vec<_>>(),
        [1, 2]
    );

    // The loader skips them (counted, named) or stops, as for broken source files.
    let spec = ManifestSpec::Prepared { dir: out.clone() };
    // Test views: the centre frames of 8 segments of 10 include frame 0, the damaged one
    // (a training draw that misses it reads a correct clip: only the frames read count).
    let test = FileDatasetConfig {
        split: Split::Test,
        ..FileDatasetConfig::default()
    };
    let ds = Arc::new(FileVideoDataset::from_spec(&spec, test).unwrap());
    for policy in [BadInputPolicy::Skip, BadInputPolicy::Fail] {
        let loader = Loader::new(
            ds.clone(),
            LoaderConfig {
                batch_size: 6,
                shuffle: false,
                bad_input: policy,
                max_replacements: 0,
                workers: 1,
                ..LoaderConfig::default()
            },
        )
        .unwrap();
        let mut epoch = loader.epoch(0);
        let batches: Vec<_> = epoch.by_ref().collect();
        match policy {
            BadInputPolicy::Skip => {
                assert_eq!(epoch.summary().clips, 4);
                let kinds = epoch.summary().skipped_by_kind();
                assert_eq!(kinds.get("damaged-prepared-record"), Some(&2));
            }
            BadInputPolicy::Fail => {
                assert!(batches
                    .iter()
                    .any(|b| matches!(b, Err(DataError::Corrupt { .. }))));
            }
        }
    }

    // A shard index that is gone makes the copy incomplete, named at open.
    std::fs::remove_file(out.join("shards/shard-000002.json")).unwrap();
    let e = PreparedStore::open(&out).unwrap_err().to_string();
    assert!(e.contains("1 of 3 shards not written yet (2)"), "{e}");
}
