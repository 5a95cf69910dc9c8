//! Toyota Smarthome clip names (`<Activity>_p<subject>_r.._v.._c...mp4`).
//! Input: one file name per line; the first byte picks the split.
#![no_main]

use std::path::PathBuf;

use amflow_video::{Manifest, SmarthomeSplit};
use libfuzzer_sys::fuzz_target;

const SPLITS: [SmarthomeSplit; 8] = [
    SmarthomeSplit::CrossSubjectTrain,
    SmarthomeSplit::CrossSubjectTest,
    SmarthomeSplit::CrossView1Train,
    SmarthomeSplit::CrossView1Validation,
    SmarthomeSplit::CrossView1Test,
    SmarthomeSplit::CrossView2Train,
    SmarthomeSplit::CrossView2Validation,
    SmarthomeSplit::CrossView2Test,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let split = SPLITS[usize::from(first) % SPLITS.len()];
    let text = String::from_utf8_lossy(rest);
    let files: Vec<PathBuf> = text
        .lines()
        .map(|l| PathBuf::from("/nonexistent/amflow-fuzz").join(l))
        .collect();
    if let Ok(m) = Manifest::from_smarthome_files(files, split) {
        assert_eq!(m.class_names.len(), split.classes().len());
        for e in &m.entries {
            assert!(e.label < m.class_names.len(), "label outside the classes");
        }
    }
});
