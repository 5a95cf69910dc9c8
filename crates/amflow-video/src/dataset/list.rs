//! The generic `path label` list format (also mmaction's `path num_frames label`
//! rawframe lists), with an optional class-names file.

use std::path::Path;

use super::manifest::{bad, read_class_names, read_text, Manifest, ManifestEntry};
use crate::error::Result;
use crate::source::MediaKind;

pub(crate) fn load(
    list: &Path,
    root: Option<&Path>,
    class_names: Option<&Path>,
    media: MediaKind,
) -> Result<Manifest> {
    let text = read_text(list)?;
    let root = root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| list.parent().map(Path::to_path_buf).unwrap_or_default());
    let names = class_names.map(read_class_names).transpose()?;
    Manifest::parse_path_label(&text, list, &root, names, media)
}

impl Manifest {
    /// Parses the text of a `path label` list (see [`ManifestSpec::PathLabel`]
    /// (super::ManifestSpec::PathLabel)): relative paths are joined onto `root`; `list`
    /// names the file in errors. Without `class_names` the classes are named by their
    /// numbers, `0..=max label`.
    ///
    /// # Errors
    /// [`DataError::Manifest`](crate::DataError::Manifest) naming the line of a malformed
    /// entry or of a label without a class name.
    pub fn parse_path_label(
        text: &str,
        list: &Path,
        root: &Path,
        class_names: Option<Vec<String>>,
        media: MediaKind,
    ) -> Result<Manifest> {
        let names = class_names;
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (rest, label) = line
                .rsplit_once(char::is_whitespace)
                .ok_or_else(|| bad(list, i + 1, "expected `path label`"))?;
            let label: usize = label
                .parse()
                .map_err(|_| bad(list, i + 1, format!("label `{label}` is not a class index")))?;
            let mut path = rest.trim_end();
            // `path num_frames label`: drop a numeric middle field.
            if let Some((p, middle)) = path.rsplit_once(char::is_whitespace) {
                if middle.parse::<u64>().is_ok() {
                    path = p.trim_end();
                }
            }
            if let Some(n) = &names {
                if label >= n.len() {
                    return Err(bad(
                        list,
                        i + 1,
                        format!("label {label} but only {} class names", n.len()),
                    ));
                }
            }
            entries.push(ManifestEntry {
                path: root.join(path),
                label,
                media,
            });
        }
        let class_names = names.unwrap_or_else(|| {
            let n = entries.iter().map(|e| e.label + 1).max().unwrap_or(0);
            (0..n).map(|i| i.to_string()).collect()
        });
        Ok(Manifest {
            entries,
            class_names,
        })
    }
}
