//! Kinetics-400 CSVs (`ManifestSpec::Kinetics400Csv`).
//! Input: `<csv>` or `<class names>\0<csv>`; the first byte picks the layout.
#![no_main]

use std::path::Path;

use amflow_video::{KineticsLayout, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (names, csv) = match text.split_once('\0') {
        Some((names, csv)) => (Some(Manifest::parse_class_names(names)), csv),
        None => (None, &*text),
    };
    let layout = match data.first().map(|b| b % 3) {
        Some(1) => KineticsLayout::Flat,
        Some(2) => KineticsLayout::IdOnly,
        _ => KineticsLayout::LabelFolders,
    };
    if let Ok(m) = Manifest::parse_kinetics_csv(
        csv,
        Path::new("train.csv"),
        Path::new("/nonexistent/amflow-fuzz"),
        layout,
        names,
    ) {
        for e in &m.entries {
            assert!(e.label < m.class_names.len(), "label outside the classes");
        }
    }
});
