//! Frame-folder file names (`list_frame_folder`'s filter and natural order).
//! Input: one file name per line (a folder's entries: distinct, without `/`).
#![no_main]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use amflow_video::source::frame_order;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let names: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.contains('/') && *l != "." && *l != "..")
        .collect();
    let dir = Path::new("/nonexistent/amflow-fuzz");
    let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let ordered = frame_order(files.clone());
    assert!(ordered.len() <= files.len());
    // The order is a function of the names, not of the order the folder lists them in.
    let mut reversed = files;
    reversed.reverse();
    assert_eq!(
        frame_order(reversed),
        ordered,
        "order depends on listing order"
    );
});
