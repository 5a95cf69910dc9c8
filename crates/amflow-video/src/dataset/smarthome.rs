//! Toyota Smarthome trimmed action clips (Das et al., "Toyota Smarthome: Real-World
//! Activities of Daily Living", ICCV 2019): files `<Activity>_p<subject>_r<rep>_v<view>_c<cam>.mp4`,
//! and the dataset's three protocols: cross-subject (CS: 31 classes, split by subject)
//! and cross-view CV1 / CV2 (19 classes, split by camera; camera 2 is the test view,
//! camera 5 the validation view, training uses camera 1 (CV1) or cameras 1, 3, 4, 6, 7
//! (CV2)). Their metric is mean per-class accuracy
//! ([`mean_class_accuracy`](crate::mean_class_accuracy)).

use std::path::{Path, PathBuf};

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

/// The 19 classes of the cross-view protocols (CV1, CV2), in class-index order: the
/// activities seen by the cameras of both sides of the split.
pub const SMARTHOME_CV_CLASSES: [&str; 19] = [
    "Cutbread",
    "Drink.Frombottle",
    "Drink.Fromcan",
    "Drink.Fromcup",
    "Drink.Fromglass",
    "Eat.Attable",
    "Eat.Snack",
    "Enter",
    "Getup",
    "Leave",
    "Pour.Frombottle",
    "Pour.Fromcan",
    "Readbook",
    "Sitdown",
    "Takepills",
    "Uselaptop",
    "Usetablet",
    "Usetelephone",
    "Walk",
];

/// Cameras of the CV1 training split.
pub const SMARTHOME_CV1_TRAIN_CAMERAS: [u32; 1] = [1];
/// Cameras of the CV2 training split.
pub const SMARTHOME_CV2_TRAIN_CAMERAS: [u32; 5] = [1, 3, 4, 6, 7];
/// Camera of the validation split of both cross-view protocols.
pub const SMARTHOME_CV_VALIDATION_CAMERAS: [u32; 1] = [5];
/// Camera of the test split of both cross-view protocols.
pub const SMARTHOME_CV_TEST_CAMERAS: [u32; 1] = [2];

/// Subjects of the cross-subject training split.
pub const SMARTHOME_TRAIN_SUBJECTS: [u32; 11] = [3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25];
/// Subjects of the cross-subject test split.
pub const SMARTHOME_TEST_SUBJECTS: [u32; 7] = [2, 10, 11, 14, 16, 18, 20];

/// Protocol and side of a Smarthome split (TOML: `split = "cross_subject_train"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmarthomeSplit {
    /// Cross-subject: subjects [`SMARTHOME_TRAIN_SUBJECTS`], 31 classes.
    CrossSubjectTrain,
    /// Cross-subject: subjects [`SMARTHOME_TEST_SUBJECTS`], 31 classes.
    CrossSubjectTest,
    /// CV1: camera 1, the 19 [`SMARTHOME_CV_CLASSES`].
    CrossView1Train,
    /// CV1: camera 5 (validation), 19 classes.
    CrossView1Validation,
    /// CV1: camera 2, 19 classes.
    CrossView1Test,
    /// CV2: cameras 1, 3, 4, 6 and 7, 19 classes.
    CrossView2Train,
    /// CV2: camera 5 (validation), 19 classes.
    CrossView2Validation,
    /// CV2: camera 2, 19 classes.
    CrossView2Test,
}

impl SmarthomeSplit {
    /// The protocol's classes, in class-index order.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            SmarthomeSplit::CrossSubjectTrain | SmarthomeSplit::CrossSubjectTest => {
                &SMARTHOME_CLASSES
            }
            _ => &SMARTHOME_CV_CLASSES,
        }
    }

    /// Whether a clip of `subject` seen by `camera` belongs to this split (None: the
    /// split needs a camera and the name has none).
    fn contains(self, subject: u32, camera: Option<u32>) -> Option<bool> {
        let cameras: &[u32] = match self {
            SmarthomeSplit::CrossSubjectTrain => {
                return Some(SMARTHOME_TRAIN_SUBJECTS.contains(&subject))
            }
            SmarthomeSplit::CrossSubjectTest => {
                return Some(SMARTHOME_TEST_SUBJECTS.contains(&subject))
            }
            SmarthomeSplit::CrossView1Train => &SMARTHOME_CV1_TRAIN_CAMERAS,
            SmarthomeSplit::CrossView2Train => &SMARTHOME_CV2_TRAIN_CAMERAS,
            SmarthomeSplit::CrossView1Validation | SmarthomeSplit::CrossView2Validation => {
                &SMARTHOME_CV_VALIDATION_CAMERAS
            }
            SmarthomeSplit::CrossView1Test | SmarthomeSplit::CrossView2Test => {
                &SMARTHOME_CV_TEST_CAMERAS
            }
        };
        camera.map(|c| cameras.contains(&c))
    }
}

/// The fields of a Smarthome file stem, e.g. `Cook.Cut_p03_r00_v12_c05`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SmarthomeName<'a> {
    pub activity: &'a str,
    pub subject: u32,
    /// The camera (`c05` -> 5), when the stem ends with one.
    pub camera: Option<u32>,
}

/// Parses a Smarthome file stem; None when it does not start `<Activity>_p<subject>`.
pub(crate) fn parse_name(stem: &str) -> Option<SmarthomeName<'_>> {
    let mut parts = stem.split('_');
    let activity = parts.next()?;
    let subject = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let camera = parts
        .next_back()
        .and_then(|p| p.strip_prefix('c'))
        .and_then(|c| c.parse().ok());
    Some(SmarthomeName {
        activity,
        subject,
        camera,
    })
}

pub(crate) fn load(root: &Path, split: SmarthomeSplit) -> Result<Manifest> {
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
    Manifest::from_smarthome_files(files, split)
}

impl Manifest {
    /// The manifest of a Smarthome split from the paths of the clip files (`.mp4`, any
    /// order): each file name is parsed as `<Activity>_p<subject>_r.._v.._c..`; clips of
    /// activities outside the split's classes or of other subjects / cameras are left out.
    ///
    /// # Errors
    /// [`DataError::Manifest`](crate::DataError::Manifest) naming a file whose name does not
    /// parse, or has no camera for a cross-view split.
    pub fn from_smarthome_files(
        mut files: Vec<PathBuf>,
        split: SmarthomeSplit,
    ) -> Result<Manifest> {
        let classes = split.classes();
        files.sort();
        let mut entries = Vec::new();
        for p in files {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let name = parse_name(stem)
                .ok_or_else(|| bad(&p, 0, "name is not <Activity>_p<subject>_r.._v.._c.."))?;
            // Clips of activities outside the protocol's classes are not part of it.
            let Some(label) = classes.iter().position(|c| *c == name.activity) else {
                continue;
            };
            let member = split.contains(name.subject, name.camera).ok_or_else(|| {
                bad(
                    &p,
                    0,
                    "name has no camera (..._c<camera>) for a cross-view split",
                )
            })?;
            if member {
                entries.push(ManifestEntry {
                    path: p.clone(),
                    label,
                    media: MediaKind::Video,
                });
            }
        }
        Ok(Manifest {
            entries,
            class_names: classes.iter().map(|s| s.to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_split_are_consistent() {
        assert_eq!(
            parse_name("Cook.Cut_p03_r00_v12_c05"),
            Some(SmarthomeName {
                activity: "Cook.Cut",
                subject: 3,
                camera: Some(5)
            })
        );
        assert_eq!(parse_name("Walk_p02").map(|n| n.camera), Some(None));
        assert_eq!(parse_name("garbage"), None);
        assert!(SMARTHOME_TRAIN_SUBJECTS
            .iter()
            .all(|s| !SMARTHOME_TEST_SUBJECTS.contains(s)));
        let mut sorted = SMARTHOME_CLASSES.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 31);
        // The cross-view classes are a subset of the 31, in the same (sorted) order.
        assert!(SMARTHOME_CV_CLASSES.windows(2).all(|w| w[0] < w[1]));
        assert!(SMARTHOME_CV_CLASSES
            .iter()
            .all(|c| SMARTHOME_CLASSES.contains(c)));
        // Training, validation and test cameras never overlap.
        for train in [
            &SMARTHOME_CV1_TRAIN_CAMERAS[..],
            &SMARTHOME_CV2_TRAIN_CAMERAS[..],
        ] {
            assert!(train.iter().all(|c| !SMARTHOME_CV_TEST_CAMERAS.contains(c)
                && !SMARTHOME_CV_VALIDATION_CAMERAS.contains(c)));
        }
        assert!(SMARTHOME_CV_VALIDATION_CAMERAS
            .iter()
            .all(|c| !SMARTHOME_CV_TEST_CAMERAS.contains(c)));
    }
}
