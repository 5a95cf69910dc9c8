//! The [`Manifest`]: the samples of one dataset split as `(path, label)` entries with
//! the class names, and [`ManifestSpec`], the serde-tagged choice of annotation format
//! (one variant per supported dataset layout) that loads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kinetics::KineticsLayout;
use super::smarthome::SmarthomeSplit;
use crate::error::{DataError, Result};
use crate::source::MediaKind;

/// One stored sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Video file or frame folder.
    pub path: PathBuf,
    /// Class index into [`Manifest::class_names`].
    pub label: usize,
    /// How the sample is stored.
    pub media: MediaKind,
}

/// The samples of one split and the class names their labels index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Samples in annotation order.
    pub entries: Vec<ManifestEntry>,
    /// Class names; `entries[i].label < class_names.len()`.
    pub class_names: Vec<String>,
}

/// Where a split's annotations are and in which format (TOML/JSON: `format = "..."`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum ManifestSpec {
    /// Generic list: one sample per line, `path label` (whitespace separated; the path may
    /// contain spaces, the label is the last field; a middle field such as the frame
    /// count of mmaction's rawframe lists is ignored). Blank lines and `#` comments are
    /// skipped. Relative paths are resolved against `root`.
    PathLabel {
        /// The list file.
        list: PathBuf,
        /// Folder that relative paths start from (default: the list's folder).
        #[serde(default)]
        root: Option<PathBuf>,
        /// One class name per line, line `i` naming label `i`. Without it the classes
        /// are named by their numbers.
        #[serde(default)]
        class_names: Option<PathBuf>,
        /// Whether paths are video files or frame folders.
        #[serde(default)]
        media: MediaKind,
    },
    /// Kinetics-400 official CSV (`label,youtube_id,time_start,time_end,split`).
    Kinetics400Csv {
        /// The CSV file (e.g. `train.csv`, `validate.csv`).
        csv: PathBuf,
        /// Folder holding the downloaded clips.
        root: PathBuf,
        /// How clips are laid out under `root`.
        #[serde(default)]
        layout: KineticsLayout,
        /// Class names file (one per line); default: the CSV's labels sorted, which is
        /// the standard Kinetics-400 class index when the CSV is a full split.
        #[serde(default)]
        class_names: Option<PathBuf>,
    },
    /// Something-Something v2: `labels.json` plus `train.json` / `validation.json`,
    /// videos `<root>/<id>.webm`.
    SomethingSomethingV2 {
        /// `something-something-v2-labels.json` (template -> index).
        labels: PathBuf,
        /// `something-something-v2-train.json` or `-validation.json`.
        annotations: PathBuf,
        /// Folder with the `.webm` files.
        root: PathBuf,
    },
    /// Toyota Smarthome trimmed clips (`<Activity>_p<subject>_r.._v.._c...mp4`):
    /// cross-subject protocol (31 classes) or cross-view CV1/CV2 (19 classes).
    ToyotaSmarthome {
        /// Folder with the `.mp4` files.
        root: PathBuf,
        /// Protocol and side of the split.
        split: SmarthomeSplit,
    },
    /// A prepared copy written by `amflow data prepare` (decoded once, stored as JPEG
    /// frames in indexed shards): the source's good videos, labels and class list.
    Prepared {
        /// The folder holding `prepared.json`.
        dir: PathBuf,
    },
}

impl ManifestSpec {
    /// Parses the annotations into a manifest. Files are not opened (see
    /// [`scan_manifest`](crate::scan_manifest) for that).
    ///
    /// # Errors
    /// [`DataError::Io`] when an annotation file cannot be read, [`DataError::Manifest`]
    /// when it is malformed (the error names the file and line).
    pub fn load(&self) -> Result<Manifest> {
        match self {
            ManifestSpec::PathLabel {
                list,
                root,
                class_names,
                media,
            } => super::list::load(list, root.as_deref(), class_names.as_deref(), *media),
            ManifestSpec::Kinetics400Csv {
                csv,
                root,
                layout,
                class_names,
            } => super::kinetics::load(csv, root, *layout, class_names.as_deref()),
            ManifestSpec::SomethingSomethingV2 {
                labels,
                annotations,
                root,
            } => super::ssv2::load(labels, annotations, root),
            ManifestSpec::ToyotaSmarthome { root, split } => super::smarthome::load(root, *split),
            ManifestSpec::Prepared { dir } => Ok(crate::prepared::PreparedStore::open(dir)?
                .manifest()
                .clone()),
        }
    }
}

impl ManifestSpec {
    /// The spec for a manifest given only as a file path (what `amflow data check
    /// MANIFEST` receives):
    /// - `*.toml`: a spec file (`format = "..."` plus that format's fields); relative
    ///   paths in it are resolved against the TOML file's folder;
    /// - `*.csv`: a Kinetics-400 CSV whose clips are in label folders next to it;
    /// - a folder holding `prepared.json`: a prepared copy (`amflow data prepare`);
    /// - anything else: a `path label` list, with `classes.txt` beside it as class names
    ///   when that file exists.
    ///
    /// # Errors
    /// [`DataError::Io`] / [`DataError::Manifest`] when a TOML spec cannot be read or parsed.
    pub fn from_path(path: &Path) -> Result<ManifestSpec> {
        if path.join(crate::prepared::format::META_FILE).is_file() {
            return Ok(ManifestSpec::Prepared {
                dir: path.to_path_buf(),
            });
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        Ok(match ext.as_deref() {
            Some("toml") => {
                let spec: ManifestSpec =
                    toml::from_str(&read_text(path)?).map_err(|e| bad(path, 0, e.to_string()))?;
                spec.relative_to(&dir)
            }
            Some("csv") => ManifestSpec::Kinetics400Csv {
                csv: path.to_path_buf(),
                root: dir,
                layout: KineticsLayout::LabelFolders,
                class_names: None,
            },
            _ => {
                let classes = dir.join("classes.txt");
                ManifestSpec::PathLabel {
                    list: path.to_path_buf(),
                    root: None,
                    class_names: classes.exists().then_some(classes),
                    media: MediaKind::Video,
                }
            }
        })
    }

    /// The same spec with every relative path joined onto `dir`.
    pub fn relative_to(&self, dir: &Path) -> ManifestSpec {
        let j = |p: &PathBuf| dir.join(p);
        let jo = |p: &Option<PathBuf>| p.as_ref().map(|p| dir.join(p));
        match self {
            ManifestSpec::PathLabel {
                list,
                root,
                class_names,
                media,
            } => ManifestSpec::PathLabel {
                list: j(list),
                root: jo(root),
                class_names: jo(class_names),
                media: *media,
            },
            ManifestSpec::Kinetics400Csv {
                csv,
                root,
                layout,
                class_names,
            } => ManifestSpec::Kinetics400Csv {
                csv: j(csv),
                root: j(root),
                layout: *layout,
                class_names: jo(class_names),
            },
            ManifestSpec::SomethingSomethingV2 {
                labels,
                annotations,
                root,
            } => ManifestSpec::SomethingSomethingV2 {
                labels: j(labels),
                annotations: j(annotations),
                root: j(root),
            },
            ManifestSpec::ToyotaSmarthome { root, split } => ManifestSpec::ToyotaSmarthome {
                root: j(root),
                split: *split,
            },
            ManifestSpec::Prepared { dir } => ManifestSpec::Prepared { dir: j(dir) },
        }
    }
}

impl Manifest {
    /// The class names of a class-names file: one per non-empty line, trimmed, line `i`
    /// naming label `i`.
    pub fn parse_class_names(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Number of samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.class_names.len()];
        for e in &self.entries {
            if let Some(n) = c.get_mut(e.label) {
                *n += 1;
            }
        }
        c
    }
}

/// Reads a whole text file, mapping errors to [`DataError::Io`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// One class name per non-empty line.
pub(crate) fn read_class_names(path: &Path) -> Result<Vec<String>> {
    Ok(Manifest::parse_class_names(&read_text(path)?))
}

/// A [`DataError::Manifest`] for `path:line`.
pub(crate) fn bad(path: &Path, line: usize, reason: impl Into<String>) -> DataError {
    DataError::Manifest {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}
