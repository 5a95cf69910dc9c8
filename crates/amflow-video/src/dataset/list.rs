//! The generic `path label` list format (also mmaction's `path num_frames label`
//! rawframe lists), with an optional class-names file.

use std::path::Path;

use super::manifest::{bad, read_class_names, read_text, Manifest, ManifestEntry};
use crate::error::Result;
use crate::source::MediaKind;

/// Labels of a list without a class-names file are below this (the classes are named by
/// their numbers, `0..=max label`, so the largest label sizes the class list).
pub(crate) const MAX_NUMBERED_CLASSES: usize = 1 << 20;

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
            match &names {
                Some(n) if label >= n.len() => {
                    return Err(bad(
                        list,
                        i + 1,
                        format!("label {label} but only {} class names", n.len()),
                    ));
                }
                // Numbered classes are `0..=max label`: a label read from the file must not
                // size that list.
                None if label >= MAX_NUMBERED_CLASSES => {
                    return Err(bad(
                        list,
                        i + 1,
                        format!(
                            "label {label}: without a class-names file labels must be below \
                             {MAX_NUMBERED_CLASSES}"
                        ),
                    ));
                }
                _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, names: Option<Vec<String>>) -> Result<Manifest> {
        Manifest::parse_path_label(
            text,
            Path::new("list.txt"),
            Path::new("/data"),
            names,
            MediaKind::Video,
        )
    }

    #[test]
    fn numbered_classes_cover_the_labels() {
        let m = parse("a.mp4 0\n# comment\n\nb c.mp4 120 3\n", None).unwrap();
        assert_eq!(m.class_names, ["0", "1", "2", "3"]);
        assert_eq!(m.entries[1].path, Path::new("/data/b c.mp4"));
        assert_eq!(m.entries[1].label, 3);
        let named = parse("a.mp4 1\n", Some(vec!["x".into()]));
        assert!(matches!(
            named,
            Err(crate::DataError::Manifest { line: 1, .. })
        ));
    }

    /// Fuzz crash (manifest_path_label): a huge label without class names sized a
    /// `0..=label` list of class names (an allocation of 10^19 strings); `usize::MAX`
    /// overflowed `label + 1`.
    #[test]
    fn huge_label_without_class_names_is_an_error() {
        for text in [
            "\x1cak\r 5555555555555555555",
            "a.mp4 18446744073709551615",
            "a.mp4 1048576",
        ] {
            let e = parse(text, None).unwrap_err();
            assert!(
                matches!(&e, crate::DataError::Manifest { line: 1, reason, .. } if reason.contains("below")),
                "{e:?}"
            );
        }
        let m = parse("a.mp4 1048575", None).unwrap();
        assert_eq!(m.class_names.len(), MAX_NUMBERED_CLASSES);
    }
}
