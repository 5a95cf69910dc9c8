//! Kinetics-400 annotations: the official CSV layout
//! `label,youtube_id,time_start,time_end,split` (Kay et al., 2017; columns found by
//! header name, quoted fields allowed) and the file naming of the common downloaders,
//! `<youtube_id>_<time_start:06>_<time_end:06>.<ext>`, in per-label folders or flat.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{bad, read_class_names, read_text, Manifest, ManifestEntry};
use crate::error::Result;
use crate::source::MediaKind;

/// How downloaded Kinetics clips are laid out under the root folder. For every layout
/// the extensions mp4, webm, mkv and avi are tried in that order; a clip found under
/// none is listed with the first candidate path (and reported missing by the checker
/// and the loader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KineticsLayout {
    /// `root/<label>/<id>_<start>_<end>.<ext>` (label as written or with spaces replaced by
    /// underscores).
    #[default]
    LabelFolders,
    /// `root/<id>_<start>_<end>.<ext>`.
    Flat,
    /// `root/<id>.<ext>`.
    IdOnly,
}

const EXTENSIONS: &[&str] = &["mp4", "webm", "mkv", "avi"];

/// Splits one CSV line, honouring double quotes.
pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

fn candidates(
    root: &Path,
    layout: KineticsLayout,
    label: &str,
    stem: &str,
    id: &str,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ext in EXTENSIONS {
        match layout {
            KineticsLayout::LabelFolders => {
                out.push(root.join(label).join(format!("{stem}.{ext}")));
                out.push(
                    root.join(label.replace(' ', "_"))
                        .join(format!("{stem}.{ext}")),
                );
            }
            KineticsLayout::Flat => out.push(root.join(format!("{stem}.{ext}"))),
            KineticsLayout::IdOnly => out.push(root.join(format!("{id}.{ext}"))),
        }
    }
    out
}

pub(crate) fn load(
    csv: &Path,
    root: &Path,
    layout: KineticsLayout,
    class_names: Option<&Path>,
) -> Result<Manifest> {
    let text = read_text(csv)?;
    let class_names = class_names.map(read_class_names).transpose()?;
    Manifest::parse_kinetics_csv(&text, csv, root, layout, class_names)
}

impl Manifest {
    /// Parses the text of a Kinetics-400 CSV (see [`ManifestSpec::Kinetics400Csv`]
    /// (super::ManifestSpec::Kinetics400Csv)); `csv` names the file in errors, clips are
    /// looked for under `root` in `layout`. Without `class_names` the classes are the
    /// CSV's labels, sorted.
    ///
    /// # Errors
    /// [`DataError::Manifest`](crate::DataError::Manifest) naming the line of a missing
    /// column, short row, bad time, empty id or unknown label.
    pub fn parse_kinetics_csv(
        text: &str,
        csv: &Path,
        root: &Path,
        layout: KineticsLayout,
        class_names: Option<Vec<String>>,
    ) -> Result<Manifest> {
        parse_csv(text, csv, root, layout, class_names)
    }
}

fn parse_csv(
    text: &str,
    csv: &Path,
    root: &Path,
    layout: KineticsLayout,
    class_names: Option<Vec<String>>,
) -> Result<Manifest> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(csv, 1, "empty CSV"))?;
    let header = split_csv(header);
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(
                csv,
                1,
                format!("missing column `{name}` in header {header:?}"),
            )
        })
    };
    let (c_label, c_id, c_start, c_end) = (
        col("label")?,
        col("youtube_id")?,
        col("time_start")?,
        col("time_end")?,
    );
    let mut rows = Vec::new();
    for (i, line) in lines {
        let f = split_csv(line);
        let get = |c: usize| {
            f.get(c).map(String::as_str).ok_or_else(|| {
                bad(
                    csv,
                    i + 1,
                    format!("expected {} fields, got {}", header.len(), f.len()),
                )
            })
        };
        let time = |c: usize| -> Result<u64> {
            let s = get(c)?;
            s.parse::<f64>()
                .ok()
                .filter(|t| *t >= 0.0)
                .map(|t| t.round() as u64)
                .ok_or_else(|| bad(csv, i + 1, format!("bad time `{s}`")))
        };
        let (label, id) = (get(c_label)?.to_string(), get(c_id)?.to_string());
        if id.is_empty() {
            return Err(bad(csv, i + 1, "empty youtube_id"));
        }
        rows.push((i + 1, label, id, time(c_start)?, time(c_end)?));
    }
    let class_names = match class_names {
        Some(names) => names,
        None => {
            let mut names: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
            names.sort();
            names.dedup();
            names
        }
    };
    let mut entries = Vec::with_capacity(rows.len());
    for (line, label, id, start, end) in rows {
        let idx = class_names
            .iter()
            .position(|n| *n == label)
            .ok_or_else(|| bad(csv, line, format!("label `{label}` is not a known class")))?;
        let stem = format!("{id}_{start:06}_{end:06}");
        let cands = candidates(root, layout, &label, &stem, &id);
        let path = cands
            .iter()
            .find(|p| p.exists())
            .or(cands.first())
            .cloned()
            .unwrap_or_default();
        entries.push(ManifestEntry {
            path,
            label: idx,
            media: MediaKind::Video,
        });
    }
    Ok(Manifest {
        entries,
        class_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes() {
        assert_eq!(
            split_csv(r#""passing American football (in game)",abc,10,20,train"#),
            [
                "passing American football (in game)",
                "abc",
                "10",
                "20",
                "train"
            ]
        );
        assert_eq!(split_csv(r#""a ""b"", c",d"#), [r#"a "b", c"#, "d"]);
    }
}
