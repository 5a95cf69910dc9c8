//! End to end through `FileVideoDataset`: frame folders (JPEG/PNG written by the ffmpeg
//! tool from a real video) must give the same clip as the video itself; test views with
//! three-crop and several temporal clips must expand and differ as documented.

mod common;

use std::sync::Arc;

use amflow_video::*;
use common::*;

fn config(split: Split, views: usize, stages: Vec<Stage>) -> FileDatasetConfig {
    FileDatasetConfig {
        read: ClipReadConfig {
            sampler: Sampler::Dense {
                num_frames: 4,
                stride: 8,
            },
            resize: Resize::ShortSide(48),
            ..ClipReadConfig::default()
        },
        transform: TransformConfig {
            stages,
            normalization: Normalization::Unit,
        },
        split,
        temporal_views: views,
        flip: FlipPolicy::Allow,
    }
}

#[test]
#[cfg_attr(
    any(missing_ffmpeg_tool, missing_opencv_samples),
    ignore = "needs the ffmpeg tool and opencv-doc's videos (scripts/setup.sh)"
)]
fn frame_folder_matches_its_video() {
    let video = opencv_sample("Megamind.avi");
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("megamind_frames");
    std::fs::create_dir_all(&frames).unwrap();
    // PNG is lossless: the folder holds exactly the decoded frames (first 60).
    ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-vsync",
        "0",
        "-frames:v",
        "60",
        "-start_number",
        "1",
        frames.join("img_%d.png").to_str().unwrap(),
    ]);
    assert_eq!(list_frame_folder(&frames).unwrap().len(), 60);
    let clip_video = dir.path().join("first60.avi");
    ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-vsync",
        "0",
        "-frames:v",
        "60",
        "-an",
        "-c:v",
        "png",
        clip_video.to_str().unwrap(),
    ]);
    // Same frames by index: folder image k+1 is video frame k.
    let files = list_frame_folder(&frames).unwrap();
    let mut reader = VideoReader::open(&clip_video, &DecodeConfig::default()).unwrap();
    let from_video = reader
        .decode_frames(&[0, 10, 59], Resize::ShortSide(48))
        .unwrap();
    assert_eq!(from_video.frames.len(), 3);
    for (k, f) in &from_video.frames {
        let img = amflow_video::decode::decode_image(&files[*k], Resize::ShortSide(48)).unwrap();
        assert!(img == *f, "folder frame {k} differs from video frame {k}");
    }
    // Through the dataset: a frame-folder sample is a normal clip.
    let manifest = Manifest {
        entries: vec![ManifestEntry {
            path: frames.clone(),
            label: 0,
            media: MediaKind::FrameFolder,
        }],
        class_names: vec!["megamind".into()],
    };
    let stages = vec![Stage::CenterCrop { size: 48 }];
    let ds = FileVideoDataset::new(manifest, config(Split::Test, 1, stages)).unwrap();
    let a = ds.get(0, 7).unwrap();
    assert_eq!(a.shape, [4, 3, 48, 48]);
    assert_eq!(a, ds.get(0, 8).unwrap());
    // JPEG frames decode too (lossy, so only close).
    let jpeg = dir.path().join("jpeg");
    std::fs::create_dir_all(&jpeg).unwrap();
    ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-vsync",
        "0",
        "-frames:v",
        "60",
        "-q:v",
        "2",
        jpeg.join("%05d.jpg").to_str().unwrap(),
    ]);
    let frames = read_clip_frames(
        &jpeg,
        MediaKind::FrameFolder,
        &ClipReadConfig::default(),
        SampleMode::Test { view: 0, views: 1 },
        &mut SplitMix64::new(0),
    )
    .unwrap();
    assert_eq!(frames.len(), 8);
    assert_eq!(frames[0].height, 128);
}

#[test]
#[cfg_attr(
    missing_opencv_samples,
    ignore = "needs Debian's opencv-doc sample videos (scripts/setup.sh)"
)]
fn test_views_expand_with_three_crop_and_temporal_clips() {
    let video = opencv_sample("vtest.avi");
    let manifest = Manifest {
        entries: vec![ManifestEntry {
            path: video,
            label: 0,
            media: MediaKind::Video,
        }],
        class_names: vec!["people".into()],
    };
    let stages = vec![Stage::ThreeCrop { size: 48 }];
    let ds = Arc::new(FileVideoDataset::new(manifest, config(Split::Test, 2, stages)).unwrap());
    assert_eq!(ds.len(), 6);
    let clips: Vec<Clip> = (0..6).map(|i| ds.get(i, 0).unwrap()).collect();
    assert!(clips
        .iter()
        .all(|c| c.sample == 0 && c.shape == [4, 3, 48, 48]));
    assert_eq!(
        clips.iter().map(|c| c.view).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    for i in 0..6 {
        for j in i + 1..6 {
            assert_ne!(clips[i].data, clips[j].data, "views {i} and {j} are equal");
        }
    }
    // Deterministic: test views ignore the seed.
    assert_eq!(ds.get(4, 99).unwrap(), clips[4]);
    assert!(matches!(
        ds.get(6, 0),
        Err(DataError::IndexOutOfRange { .. })
    ));
    // Batches of views carry the sample for score averaging.
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 6,
            shuffle: false,
            workers: 2,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.samples, [0; 6]);
    assert_eq!(batch.shape, [6, 4, 3, 48, 48]);
}

#[test]
#[cfg_attr(
    missing_opencv_samples,
    ignore = "needs Debian's opencv-doc sample videos (scripts/setup.sh)"
)]
fn training_clips_vary_with_the_seed_and_repeat_with_it() {
    let video = opencv_sample("vtest.avi");
    let manifest = Manifest {
        entries: vec![ManifestEntry {
            path: video,
            label: 0,
            media: MediaKind::Video,
        }],
        class_names: vec!["people".into()],
    };
    let stages = vec![
        Stage::RandomResizedCrop {
            size: 32,
            scale: [0.3, 1.0],
            ratio: [0.75, 1.333],
        },
        Stage::HorizontalFlip { p: 0.5 },
        Stage::RandAugment {
            num_ops: 2,
            magnitude: 9.0,
        },
    ];
    let ds = FileVideoDataset::new(manifest, config(Split::Train, 1, stages)).unwrap();
    let a = ds.get(0, 1).unwrap();
    assert_eq!(a, ds.get(0, 1).unwrap());
    assert_ne!(a.data, ds.get(0, 2).unwrap().data);
    assert_eq!(a.shape, [4, 3, 32, 32]);
}
