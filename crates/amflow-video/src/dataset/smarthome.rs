//! Toyota Smarthome trimmed action clips (Das et al., "Toyota Smarthome: Real-World
//! Activities of Daily Living", ICCV 2019): files `<Activity>_p<subject>_r<rep>_v<view>_c<cam>.mp4`,
//! the 31 action classes of the cross-subject (CS) protocol, and its subject split.
//! Its metric is mean per-class accuracy ([`mean_class_accuracy`](crate::mean_class_accuracy)).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::manifest::{bad, Manifest, ManifestEntry};
use crate::error::{DataError, Result};
use crate::source::MediaKind;

/// The 31 classes of the cross-subject protocol, in class-index order.
pub const SMARTHOME_CLASSES: [&str; 31] = [
    "Cook.Cleandishes",
    "Cook.Cleanup",
    "Cook.Cut",
    "Cook.Stir",
    "Cook.Usestove",
    "Cutbread",
    "Drink.Frombottle",
    "Drink.Fromcan",
    "Drink.Fromcup",
    "Drink.Fromglass",
    "Eat.Attable",
    "Eat.Snack",
    "Enter",
    "Getup",
    "Laydown",
    "Leave",
    "Makecoffee.Pourgrains",
    "Makecoffee.Pourwater",
    "Maketea.Boilwater",
    "Maketea.Insertteabag",
    "Pour.Frombottle",
    "Pour.Fromcan",
    "Pour.Fromkettle",
    "Readbook",
    "Sitdown",
    "Takepills",
    "Uselaptop",
    "Usetablet",
    "Usetelephone",
    "Walk",
    "WatchTV",
];

/// Subjects of the cross-subject training split.
pub const SMARTHOME_TRAIN_SUBJECTS: [u32; 11] = [3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25];
/// Subjects of the cross-subject test split.
pub const SMARTHOME_TEST_SUBJECTS: [u32; 7] = [2, 10, 11, 14, 16, 18, 20];

/// Side of the cross-subject split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmarthomeSplit {
    /// Subjects [`SMARTHOME_TRAIN_SUBJECTS`].
    CrossSubjectTrain,
    /// Subjects [`SMARTHOME_TEST_SUBJECTS`].
    CrossSubjectTest,
}

/// `(activity, subject)` from a Smarthome file stem, e.g. `Cook.Cut_p03_r00_v12_c05`.
pub(crate) fn parse_name(stem: &str) -> Option<(&str, u32)> {
    let mut parts = stem.split('_');
    let activity = parts.next()?;
    let subject = parts.next()?.strip_prefix('p')?.parse().ok()?;
    Some((activity, subject))
}

pub(crate) fn load(root: &Path, split: SmarthomeSplit) -> Result<Manifest> {
    let subjects: &[u32] = match split {
        SmarthomeSplit::CrossSubjectTrain => &SMARTHOME_TRAIN_SUBJECTS,
        SmarthomeSplit::CrossSubjectTest => &SMARTHOME_TEST_SUBJECTS,
    };
    let io = |source| DataError::Io {
        path: root.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4")) {
            files.push(p);
        }
    }
    files.sort();
    let mut entries = Vec::new();
    for p in files {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let (activity, subject) = parse_name(stem)
            .ok_or_else(|| bad(&p, 0, "name is not <Activity>_p<subject>_r.._v.._c.."))?;
        // Clips of activities outside the 31 CS classes are not part of the protocol.
        let Some(label) = SMARTHOME_CLASSES.iter().position(|c| *c == activity) else {
            continue;
        };
        if subjects.contains(&subject) {
            entries.push(ManifestEntry {
                path: p.clone(),
                label,
                media: MediaKind::Video,
            });
        }
    }
    Ok(Manifest {
        entries,
        class_names: SMARTHOME_CLASSES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_split_are_consistent() {
        assert_eq!(
            parse_name("Cook.Cut_p03_r00_v12_c05"),
            Some(("Cook.Cut", 3))
        );
        assert_eq!(parse_name("garbage"), None);
        assert!(SMARTHOME_TRAIN_SUBJECTS
            .iter()
            .all(|s| !SMARTHOME_TEST_SUBJECTS.contains(s)));
        let mut sorted = SMARTHOME_CLASSES.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 31);
    }
}
