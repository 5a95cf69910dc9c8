//! Provenance of the committed fixtures: every safetensors file under `tests/fixtures/` carries
//! the metadata written by `tests/fixtures/provenance.py` (`torch_version`,
//! `transformers_version`, `script`, `script_commit`), made with versions inside the pinned
//! ranges (transformers per the model spec, whose position interpolation is part of the
//! contract), by a committed script, and with the versions that `versions.txt` records. A
//! fixture made outside those ranges, or from an uncommitted script, fails here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

use super::util::fixture;

/// `[lower, upper)` as (major, minor); keep in step with `tests/fixtures/provenance.py`.
const TORCH_RANGE: ((u32, u32), (u32, u32)) = ((2, 15), (2, 16));
/// `[lower, upper)` as (major, minor): `transformers` 5.23-5.24 per the model spec.
const TRANSFORMERS_RANGE: ((u32, u32), (u32, u32)) = ((5, 23), (5, 25));
/// The scripts that write fixtures.
const SCRIPTS: [&str; 2] = ["make_hf_fixtures.py", "make_amflow_fixtures.py"];

/// Every `*.safetensors` file under `dir`, recursively, sorted.
fn safetensors_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(safetensors_files(&path));
        } else if path.extension().is_some_and(|e| e == "safetensors") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn metadata(path: &Path) -> HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.metadata().clone().unwrap_or_default()
}

/// (major, minor) of a version such as `2.15.0+cu132` or `5.24.0`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn in_range(version: &str, (lo, hi): ((u32, u32), (u32, u32))) -> bool {
    major_minor(version).is_some_and(|v| lo <= v && v < hi)
}

/// The versions `versions.txt` records, by package.
fn recorded_versions() -> HashMap<String, String> {
    let text = std::fs::read_to_string(fixture("versions.txt")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn version_ranges_are_checked_by_major_and_minor() {
    assert!(in_range("5.24.0", TRANSFORMERS_RANGE));
    assert!(in_range("5.23.1", TRANSFORMERS_RANGE));
    assert!(!in_range("5.25.0", TRANSFORMERS_RANGE));
    assert!(!in_range("5.22.9", TRANSFORMERS_RANGE));
    assert!(!in_range("4.57.0", TRANSFORMERS_RANGE));
    assert!(in_range("2.15.0+cu132", TORCH_RANGE));
    assert!(!in_range("2.16.0", TORCH_RANGE));
    assert!(!in_range("garbage", TORCH_RANGE));
}

#[test]
fn every_fixture_records_its_provenance_within_the_pinned_versions() {
    let files = safetensors_files(&fixture(""));
    // 3 backbones x (model + io) + 4 AM Flow variants x (checkpoint + io).
    assert!(files.len() >= 14, "found only {} fixtures", files.len());
    let recorded = recorded_versions();
    for path in &files {
        let what = path.display();
        let meta = metadata(path);
        let get = |key: &str| {
            meta.get(key)
                .unwrap_or_else(|| panic!("{what}: no `{key}` metadata (regenerate it)"))
        };
        let (torch, transformers) = (get("torch_version"), get("transformers_version"));
        assert!(
            in_range(transformers, TRANSFORMERS_RANGE),
            "{what}: made with transformers {transformers}, outside the pinned {TRANSFORMERS_RANGE:?}"
        );
        assert!(
            in_range(torch, TORCH_RANGE),
            "{what}: made with torch {torch}, outside the pinned {TORCH_RANGE:?}"
        );
        for (package, version) in [("torch", torch), ("transformers", transformers)] {
            assert_eq!(
                recorded.get(package),
                Some(version),
                "{what}: versions.txt disagrees on {package}"
            );
        }
        let script = get("script");
        assert!(
            SCRIPTS.contains(&script.as_str()),
            "{what}: script {script}"
        );
        let expected_script = if path.starts_with(fixture("hf")) {
            SCRIPTS[0]
        } else {
            SCRIPTS[1]
        };
        assert_eq!(script, expected_script, "{what}: written by another script");
        if path.file_name().is_some_and(|n| n == "model.safetensors") {
            // save_pretrained's own metadata survives the re-save (transformers needs it).
            assert_eq!(get("format"), "pt", "{what}: format");
        }
        let commit = get("script_commit");
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{what}: script_commit `{commit}` is not a commit (was the script committed first?)"
        );
    }
}
