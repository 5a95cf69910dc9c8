//! Something-Something v2 annotations (`ManifestSpec::SomethingSomethingV2`).
//! Input: `<labels.json>\0<train.json>`.
#![no_main]

use std::path::Path;

use amflow_video::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (labels, annotations) = text.split_once('\0').unwrap_or((&*text, "[]"));
    if let Ok(m) = Manifest::parse_ssv2(
        labels,
        Path::new("labels.json"),
        annotations,
        Path::new("train.json"),
        Path::new("/nonexistent/amflow-fuzz"),
    ) {
        for e in &m.entries {
            assert!(e.label < m.class_names.len(), "label outside the classes");
        }
    }
});
