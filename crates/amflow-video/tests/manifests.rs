//! Fixture manifests in each supported annotation format (files under
//! `tests/fixtures/`), parsed into manifests; malformed variants must fail with the
//! file and line named.

use std::path::{Path, PathBuf};

use amflow_video::*;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

#[test]
fn kinetics_csv_sorted_classes_and_downloader_names() {
    let dir = tempfile::tempdir().unwrap();
    // One clip present in a label folder with underscores and as webm.
    let folder = dir.path().join("air_drumming");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("--nQbRBEz2s_000104_000114.webm"), b"x").unwrap();
    let spec = ManifestSpec::Kinetics400Csv {
        csv: fixture("kinetics400/train.csv"),
        root: dir.path().to_path_buf(),
        layout: KineticsLayout::LabelFolders,
        class_names: None,
    };
    let m = spec.load().unwrap();
    assert_eq!(
        m.class_names,
        [
            "abseiling",
            "air drumming",
            "passing American football (in game)"
        ]
    );
    assert_eq!(
        m.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [0, 2, 1, 0]
    );
    assert_eq!(
        m.entries[0].path,
        dir.path().join("abseiling/---QUuC4vJs_000003_000013.mp4")
    );
    assert_eq!(
        m.entries[2].path,
        folder.join("--nQbRBEz2s_000104_000114.webm")
    );
    assert_eq!(m.class_counts(), [2, 1, 1]);
    let flat = ManifestSpec::Kinetics400Csv {
        csv: fixture("kinetics400/train.csv"),
        root: dir.path().to_path_buf(),
        layout: KineticsLayout::Flat,
        class_names: None,
    };
    assert_eq!(
        flat.load().unwrap().entries[3].path,
        dir.path().join("--33Lscn6sk_000004_000014.mp4")
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "label,youtube_id,time_start,time_end,split\nabseiling,x,soon,13,train\n",
    )
    .unwrap();
    let e = ManifestSpec::Kinetics400Csv {
        csv: bad.clone(),
        root: dir.path().into(),
        layout: KineticsLayout::Flat,
        class_names: None,
    }
    .load()
    .unwrap_err();
    assert!(matches!(e, DataError::Manifest { line: 2, .. }), "{e}");
    std::fs::write(&bad, "youtube_id,time_start\nx,1\n").unwrap();
    let e = ManifestSpec::Kinetics400Csv {
        csv: bad,
        root: dir.path().into(),
        layout: KineticsLayout::Flat,
        class_names: None,
    }
    .load()
    .unwrap_err();
    assert!(e.to_string().contains("missing column `label`"), "{e}");
}

#[test]
fn ssv2_labels_come_from_templates_without_brackets() {
    let spec = ManifestSpec::SomethingSomethingV2 {
        labels: fixture("ssv2/labels.json"),
        annotations: fixture("ssv2/train.json"),
        root: PathBuf::from("/data/ssv2"),
    };
    let m = spec.load().unwrap();
    assert_eq!(m.class_names[2], "Pushing something from left to right");
    assert_eq!(
        m.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [1, 2, 0]
    );
    assert_eq!(m.entries[1].path, Path::new("/data/ssv2/42326.webm"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("test.json");
    std::fs::write(&bad, r#"[{"id": "1"}]"#).unwrap();
    let e = ManifestSpec::SomethingSomethingV2 {
        labels: fixture("ssv2/labels.json"),
        annotations: bad,
        root: "/x".into(),
    }
    .load()
    .unwrap_err();
    assert!(e.to_string().contains("no template"), "{e}");
}

#[test]
fn path_label_list_with_class_names_and_rawframe_counts() {
    let spec = ManifestSpec::PathLabel {
        list: fixture("list/train.txt"),
        root: None,
        class_names: Some(fixture("list/classes.txt")),
        media: MediaKind::Video,
    };
    let m = spec.load().unwrap();
    assert_eq!(m.entries.len(), 3);
    assert_eq!(m.entries[0].path, fixture("list/videos/walk 01.mp4"));
    assert_eq!(m.entries[2].path, fixture("list/frames/jump_0001"));
    assert_eq!(
        m.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [1, 0, 2]
    );
    assert_eq!(m.class_names, ["run", "walk", "jump"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("l.txt");
    std::fs::write(&bad, "a.mp4 0\nb.mp4 five\n").unwrap();
    let e = ManifestSpec::PathLabel {
        list: bad.clone(),
        root: None,
        class_names: None,
        media: MediaKind::Video,
    }
    .load()
    .unwrap_err();
    assert!(matches!(e, DataError::Manifest { line: 2, .. }), "{e}");
    std::fs::write(&bad, "a.mp4 7\n").unwrap();
    let e = ManifestSpec::PathLabel {
        list: bad,
        root: None,
        class_names: Some(fixture("list/classes.txt")),
        media: MediaKind::Video,
    }
    .load()
    .unwrap_err();
    assert!(e.to_string().contains("only 3 class names"), "{e}");
}

#[test]
fn smarthome_cross_subject_split_and_31_classes() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Cook.Cut_p03_r00_v12_c05.mp4", // train subject
        "Walk_p02_r01_v03_c01.mp4",     // test subject
        "WatchTV_p25_r00_v01_c07.mp4",  // train subject
        "Cook_p03_r00_v01_c07.mp4",     // not one of the 31 classes
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let load = |split| {
        ManifestSpec::ToyotaSmarthome {
            root: dir.path().into(),
            split,
        }
        .load()
        .unwrap()
    };
    let train = load(SmarthomeSplit::CrossSubjectTrain);
    assert_eq!(train.class_names.len(), 31);
    let names: Vec<&str> = train
        .entries
        .iter()
        .map(|e| train.class_names[e.label].as_str())
        .collect();
    assert_eq!(names, ["Cook.Cut", "WatchTV"]);
    let test = load(SmarthomeSplit::CrossSubjectTest);
    assert_eq!(test.entries.len(), 1);
    assert_eq!(test.class_names[test.entries[0].label], "Walk");
    // The spec round-trips through TOML.
    let spec: ManifestSpec = toml::from_str(
        "format = \"toyota_smarthome\"\nroot = \"/d\"\nsplit = \"cross_subject_test\"\n",
    )
    .unwrap();
    assert_eq!(
        spec,
        ManifestSpec::ToyotaSmarthome {
            root: "/d".into(),
            split: SmarthomeSplit::CrossSubjectTest
        }
    );
}

#[test]
fn smarthome_cross_view_splits_by_camera_with_19_classes() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Walk_p02_r00_v01_c01.mp4",                 // camera 1: CV1 and CV2 train
        "Readbook_p03_r01_v02_c03.mp4",             // camera 3: CV2 train only
        "Drink.Fromcup_p25_r00_v05_c07.mp4",        // camera 7: CV2 train only
        "Enter_p10_r00_v03_c05.mp4",                // camera 5: validation
        "Sitdown_p04_r02_v01_c02.mp4",              // camera 2: test
        "Cook.Cut_p03_r00_v12_c01.mp4",             // a CS class outside the 19
        "Makecoffee.Pourwater_p03_r00_v01_c02.mp4", // ditto
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let load = |split| {
        ManifestSpec::ToyotaSmarthome {
            root: dir.path().into(),
            split,
        }
        .load()
        .unwrap()
    };
    let names = |m: &amflow_video::Manifest| -> Vec<String> {
        m.entries
            .iter()
            .map(|e| m.class_names[e.label].clone())
            .collect()
    };
    let cv1_train = load(SmarthomeSplit::CrossView1Train);
    assert_eq!(cv1_train.class_names.len(), 19);
    assert_eq!(cv1_train.class_names[0], "Cutbread");
    assert_eq!(cv1_train.class_names[18], "Walk");
    assert_eq!(names(&cv1_train), ["Walk"]);
    // The label indexes the 19 cross-view classes, not the 31.
    assert_eq!(cv1_train.entries[0].label, 18);
    assert_eq!(
        names(&load(SmarthomeSplit::CrossView2Train)),
        ["Drink.Fromcup", "Readbook", "Walk"]
    );
    for split in [
        SmarthomeSplit::CrossView1Validation,
        SmarthomeSplit::CrossView2Validation,
    ] {
        assert_eq!(names(&load(split)), ["Enter"]);
    }
    for split in [
        SmarthomeSplit::CrossView1Test,
        SmarthomeSplit::CrossView2Test,
    ] {
        assert_eq!(names(&load(split)), ["Sitdown"]);
    }
    // Cross-subject still sees all 31 classes of the same folder.
    let cs = load(SmarthomeSplit::CrossSubjectTrain);
    assert_eq!(cs.class_names.len(), 31);
    assert!(names(&cs).contains(&"Cook.Cut".to_string()));
    // A cross-view split needs the camera in the name.
    std::fs::write(dir.path().join("Walk_p02_r00.mp4"), b"").unwrap();
    let e = ManifestSpec::ToyotaSmarthome {
        root: dir.path().into(),
        split: SmarthomeSplit::CrossView1Test,
    }
    .load()
    .unwrap_err();
    assert!(e.to_string().contains("no camera"), "{e}");
    // TOML names of the splits.
    for (text, split) in [
        ("cross_view1_train", SmarthomeSplit::CrossView1Train),
        (
            "cross_view1_validation",
            SmarthomeSplit::CrossView1Validation,
        ),
        ("cross_view1_test", SmarthomeSplit::CrossView1Test),
        ("cross_view2_train", SmarthomeSplit::CrossView2Train),
        (
            "cross_view2_validation",
            SmarthomeSplit::CrossView2Validation,
        ),
        ("cross_view2_test", SmarthomeSplit::CrossView2Test),
    ] {
        let spec: ManifestSpec = toml::from_str(&format!(
            "format = \"toyota_smarthome\"\nroot = \"/d\"\nsplit = \"{text}\"\n"
        ))
        .unwrap();
        assert_eq!(
            spec,
            ManifestSpec::ToyotaSmarthome {
                root: "/d".into(),
                split
            }
        );
    }
}

#[test]
fn manifest_spec_from_a_bare_path() {
    let dir = tempfile::tempdir().unwrap();
    let spec_file = dir.path().join("ssv2.toml");
    std::fs::write(
        &spec_file,
        format!(
            "format = \"something_something_v2\"\nlabels = \"{}\"\nannotations = \"{}\"\nroot = \"videos\"\n",
            fixture("ssv2/labels.json").display(),
            fixture("ssv2/train.json").display()
        ),
    )
    .unwrap();
    let m = ManifestSpec::from_path(&spec_file).unwrap().load().unwrap();
    assert_eq!(m.entries[0].path, dir.path().join("videos/78687.webm"));
    let list = ManifestSpec::from_path(&fixture("list/train.txt")).unwrap();
    assert_eq!(list.load().unwrap().class_names, ["run", "walk", "jump"]);
    let csv = ManifestSpec::from_path(&fixture("kinetics400/train.csv")).unwrap();
    assert_eq!(csv.load().unwrap().entries.len(), 4);
    std::fs::write(&spec_file, "format = \"nope\"").unwrap();
    assert!(matches!(
        ManifestSpec::from_path(&spec_file),
        Err(DataError::Manifest { .. })
    ));
}
