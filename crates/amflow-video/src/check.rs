//! Manifest health check: [`scan_manifest`] opens (and optionally fully decodes) every
//! file of a [`Manifest`] on worker threads, reports progress through a callback, and
//! returns a [`ScanReport`] listing each missing or undecodable file with its reason,
//! plus totals; [`scan_prepared`] does the same for the records of a prepared copy.
//! This is the library side of `amflow data check MANIFEST`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dataset::Manifest;
use crate::decode::{DecodeConfig, VideoReader};
use crate::error::DataError;
use crate::frame::Resize;
use crate::prepared::PreparedStore;
use crate::source::{count_frames, MediaKind};

/// How thoroughly each file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanDepth {
    /// Open the container, find the video stream and decode its first frame (fast).
    #[default]
    FirstFrame,
    /// Decode every frame (finds truncation and corruption anywhere; slow).
    Full,
}

/// Scan settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Worker threads (0: one per available core).
    pub workers: usize,
    /// How much of each file to decode.
    pub depth: ScanDepth,
    /// Files with fewer decodable frames than this are reported (only checked with
    /// [`ScanDepth::Full`] or frame folders).
    pub min_frames: usize,
    /// Decoder settings.
    pub decode: DecodeConfig,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            workers: 0,
            depth: ScanDepth::FirstFrame,
            min_frames: 1,
            decode: DecodeConfig::default(),
        }
    }
}

/// Progress passed to the callback after each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanProgress {
    /// Files checked so far.
    pub done: usize,
    /// Files in the manifest.
    pub total: usize,
    /// Problems found so far.
    pub problems: usize,
}

/// One unusable file.
#[derive(Debug)]
pub struct FileProblem {
    /// Index of the entry in the manifest.
    pub entry: usize,
    /// The file.
    pub path: PathBuf,
    /// Why it is unusable.
    pub error: DataError,
}

/// Result of [`scan_manifest`].
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Entries checked.
    pub total: usize,
    /// Entries that passed.
    pub ok: usize,
    /// Unusable entries, in manifest order.
    pub problems: Vec<FileProblem>,
    /// Frames counted over the good files (with [`ScanDepth::Full`] or frame folders;
    /// header estimates otherwise).
    pub frames: u64,
    /// Wall time of the scan.
    pub elapsed: Duration,
}

impl ScanReport {
    /// Problems per error kind ([`DataError::kind_name`]).
    pub fn problems_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for p in &self.problems {
            *m.entry(p.error.kind_name()).or_insert(0) += 1;
        }
        m
    }

    /// Whether every file is usable.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for ScanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{:<22} {}", p.error.kind_name(), p.error)?;
        }
        write!(
            f,
            "{} files checked in {:.1}s: {} ok, {} unusable",
            self.total,
            self.elapsed.as_secs_f64(),
            self.ok,
            self.problems.len()
        )?;
        let kinds = self.problems_by_kind();
        if !kinds.is_empty() {
            let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

fn check_one(path: &std::path::Path, media: MediaKind, cfg: &ScanConfig) -> Result<u64, DataError> {
    let n = match (media, cfg.depth) {
        (MediaKind::Video, ScanDepth::FirstFrame) => {
            let mut r = VideoReader::open(path, &cfg.decode)?;
            let est = r.info().estimated_frames;
            let got = r.decode_frames(&[0], Resize::ShortSide(16))?;
            if got.frames.is_empty() {
                return Err(DataError::TooFewFrames {
                    path: path.to_path_buf(),
                    got: 0,
                    needed: cfg.min_frames.max(1),
                });
            }
            return Ok(est as u64);
        }
        _ => count_frames(path, media, &cfg.decode)?,
    };
    if n < cfg.min_frames {
        return Err(DataError::TooFewFrames {
            path: path.to_path_buf(),
            got: n,
            needed: cfg.min_frames,
        });
    }
    Ok(n as u64)
}

/// Checks every entry of `manifest` on `config.workers` threads, calling `progress`
/// after each file (from the worker threads). Never fails: every problem is a line of
/// the report.
pub fn scan_manifest(
    manifest: &Manifest,
    config: &ScanConfig,
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> ScanReport {
    run_scan(
        manifest,
        config,
        &|i| {
            let entry = &manifest.entries[i];
            check_one(&entry.path, entry.media, config)
        },
        progress,
    )
}

/// Checks every record of a prepared copy on `config.workers` threads: the record table
/// and every frame's checksum, decoding the first frame ([`ScanDepth::FirstFrame`]) or
/// every frame ([`ScanDepth::Full`]); records with fewer than `min_frames` frames are
/// reported too. Paths in the report are the source videos; errors name the shard.
pub fn scan_prepared(
    store: &PreparedStore,
    config: &ScanConfig,
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> ScanReport {
    run_scan(
        store.manifest(),
        config,
        &|i| {
            let n = store.verify(i, config.depth == ScanDepth::Full)?;
            if n < config.min_frames {
                return Err(DataError::TooFewFrames {
                    path: store.manifest().entries[i].path.clone(),
                    got: n,
                    needed: config.min_frames,
                });
            }
            Ok(n as u64)
        },
        progress,
    )
}

fn run_scan(
    manifest: &Manifest,
    config: &ScanConfig,
    check: &(dyn Fn(usize) -> Result<u64, DataError> + Sync),
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> ScanReport {
    let start = Instant::now();
    let total = manifest.entries.len();
    let workers = if config.workers > 0 {
        config.workers
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    .min(total.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<u64, DataError>)>> =
        Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(entry) = manifest.entries.get(i) else {
                    return;
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(i)))
                    .unwrap_or_else(|_| {
                        Err(DataError::Decode {
                            path: entry.path.clone(),
                            reason: "checking the file panicked".into(),
                        })
                    });
                let problems = if r.is_err() {
                    found.fetch_add(1, Ordering::SeqCst) + 1
                } else {
                    found.load(Ordering::SeqCst)
                };
                if let Ok(mut v) = results.lock() {
                    v.push((i, r));
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(ScanProgress {
                    done: d,
                    total,
                    problems,
                });
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut report = ScanReport {
        total,
        ..ScanReport::default()
    };
    for (i, r) in results {
        match r {
            Ok(n) => {
                report.ok += 1;
                report.frames += n;
            }
            Err(error) => report.problems.push(FileProblem {
                entry: i,
                path: manifest.entries[i].path.clone(),
                error,
            }),
        }
    }
    report.elapsed = start.elapsed();
    report
}
