//! Something-Something v2 annotations (Goyal et al., ICCV 2017): the labels JSON maps
//! each template (brackets removed) to a class index; the train/validation JSON lists
//! `{"id", "template", ...}` records; videos are `<root>/<id>.webm`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::manifest::{bad, read_text, Manifest, ManifestEntry};
use crate::error::Result;
use crate::source::MediaKind;

#[derive(Deserialize)]
struct Record {
    id: serde_json::Value,
    #[serde(default)]
    template: Option<String>,
}

/// `"Putting [something] on [something]"` -> `"Putting something on something"`.
pub(crate) fn template_to_label(template: &str) -> String {
    template.replace(['[', ']'], "")
}

pub(crate) fn load(labels: &Path, annotations: &Path, root: &Path) -> Result<Manifest> {
    let (class_names, index) = parse_labels(&read_text(labels)?, labels)?;
    parse_records(
        &read_text(annotations)?,
        annotations,
        root,
        class_names,
        &index,
    )
}

impl Manifest {
    /// Parses Something-Something v2 annotations (see
    /// [`ManifestSpec::SomethingSomethingV2`](super::ManifestSpec::SomethingSomethingV2)):
    /// `labels_json` the labels file's text, `annotations_json` the train or validation
    /// list's; `labels` and `annotations` name the files in errors, videos are
    /// `<root>/<id>.webm`.
    ///
    /// # Errors
    /// [`DataError::Manifest`](crate::DataError::Manifest) for malformed JSON, a bad or
    /// repeated class index, a record without id or template, or an unknown template.
    pub fn parse_ssv2(
        labels_json: &str,
        labels: &Path,
        annotations_json: &str,
        annotations: &Path,
        root: &Path,
    ) -> Result<Manifest> {
        let (class_names, index) = parse_labels(labels_json, labels)?;
        parse_records(annotations_json, annotations, root, class_names, &index)
    }
}

/// The class names of a labels file and the index of each.
fn parse_labels(text: &str, labels: &Path) -> Result<(Vec<String>, HashMap<String, usize>)> {
    let map: HashMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        bad(
            labels,
            e.line(),
            format!("expected {{template: index}}: {e}"),
        )
    })?;
    let mut class_names = vec![String::new(); map.len()];
    // Whether each index is taken: an empty template is a name too.
    let mut taken = vec![false; map.len()];
    let mut index = HashMap::with_capacity(map.len());
    for (name, v) in &map {
        let i = match v {
            serde_json::Value::String(s) => s.parse::<usize>().ok(),
            serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
            _ => None,
        }
        .filter(|&i| i < class_names.len())
        .ok_or_else(|| bad(labels, 0, format!("class `{name}` has bad index {v}")))?;
        if std::mem::replace(&mut taken[i], true) {
            return Err(bad(labels, 0, format!("index {i} used twice")));
        }
        class_names[i] = name.clone();
        index.insert(name.clone(), i);
    }
    Ok((class_names, index))
}

fn parse_records(
    text: &str,
    annotations: &Path,
    root: &Path,
    class_names: Vec<String>,
    index: &HashMap<String, usize>,
) -> Result<Manifest> {
    let records: Vec<Record> = serde_json::from_str(text).map_err(|e| {
        bad(
            annotations,
            e.line(),
            format!("expected a list of records: {e}"),
        )
    })?;
    let mut entries = Vec::with_capacity(records.len());
    for (k, r) in records.iter().enumerate() {
        let id = match &r.id {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(bad(annotations, 0, format!("record {k}: bad id {other}"))),
        };
        let template = r.template.as_deref().ok_or_else(|| {
            bad(
                annotations,
                0,
                format!("record {k} (id {id}) has no template (test split?)"),
            )
        })?;
        let name = template_to_label(template);
        let label = *index.get(&name).ok_or_else(|| {
            bad(
                annotations,
                0,
                format!("record {k}: template `{name}` not in labels"),
            )
        })?;
        entries.push(ManifestEntry {
            path: root.join(format!("{id}.webm")),
            label,
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

    /// Found reading the manifest_ssv2 target's paths: with an empty template, `{"": 0,
    /// "a": 0}` was accepted or rejected depending on the map's iteration order (an empty
    /// name did not mark its index as taken), leaving index 1 without a class.
    #[test]
    fn an_index_used_twice_is_an_error_even_for_an_empty_template() {
        for labels in [r#"{"": "0", "a": "0"}"#, r#"{"a": 0, "": 0}"#] {
            let e = Manifest::parse_ssv2(
                labels,
                Path::new("labels.json"),
                "[]",
                Path::new("train.json"),
                Path::new("/v"),
            )
            .unwrap_err();
            assert!(e.to_string().contains("used twice"), "{e}");
        }
        let m = Manifest::parse_ssv2(
            r#"{"": 1, "Putting something": 0}"#,
            Path::new("labels.json"),
            r#"[{"id": 7, "template": "Putting [something]"}, {"id": "8", "template": ""}]"#,
            Path::new("train.json"),
            Path::new("/v"),
        )
        .unwrap();
        assert_eq!(m.class_names, ["Putting something", ""]);
        assert_eq!(m.entries[1].label, 1);
        assert_eq!(m.entries[0].path, Path::new("/v/7.webm"));
    }
}
