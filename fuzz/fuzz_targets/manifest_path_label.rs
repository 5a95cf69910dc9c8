//! `path label` lists (`ManifestSpec::PathLabel`) and class-names files.
//! Input: `<list>` or `<class names>\0<list>`.
#![no_main]

use std::path::Path;

use amflow_video::{Manifest, MediaKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (names, list) = match text.split_once('\0') {
        Some((names, list)) => (Some(Manifest::parse_class_names(names)), list),
        None => (None, &*text),
    };
    let media = if data.first().is_some_and(|b| b & 1 == 1) {
        MediaKind::FrameFolder
    } else {
        MediaKind::Video
    };
    if let Ok(m) = Manifest::parse_path_label(
        list,
        Path::new("list.txt"),
        Path::new("/nonexistent/amflow-fuzz"),
        names,
        media,
    ) {
        for e in &m.entries {
            assert!(e.label < m.class_names.len(), "label outside the classes");
        }
        let _ = m.class_counts();
    }
});
