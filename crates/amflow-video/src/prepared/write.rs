//! [`prepare`]: decode every video of a manifest once (straight through, resized at
//! decode, optionally thinned to a frame-rate cap), encode each frame with the
//! [`FrameCodec`](super::FrameCodec) and write the shards of a prepared copy on worker
//! threads, one shard per worker at a time. Resumable: shards whose index exists are kept,
//! the others are (re)written from scratch; deterministic, so a resumed run writes the
//! same bytes as an uninterrupted one. A `--shard i/n` part writes only shards `k` with
//! `k % n == i`, so parts need no coordinator.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::codec::FrameEncoder;
use super::format::{
    fingerprint, io_error, read_json, record_trailer, shard_data_path, shard_index_path, temp_path,
    to_json, write_atomic, BadVideo, PrepareSettings, PreparedMeta, RecordIndex, ShardIndex,
    FORMAT_NAME, FORMAT_VERSION, META_FILE, REPORT_FILE,
};
use crate::dataset::{Manifest, ManifestEntry};
use crate::decode::{check_file, decode_image, VideoReader};
use crate::error::{DataError, Result};
use crate::frame::{Resize, RgbFrame};
use crate::source::{list_frame_folder, MediaKind};

/// Which part of a job array a run prepares: shards `k` with `k % count == index`
/// (CLI: `--shard index/count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPart {
    /// This part, `0..count`.
    pub index: usize,
    /// Parts in all.
    pub count: usize,
}

impl Default for ShardPart {
    fn default() -> Self {
        ShardPart { index: 0, count: 1 }
    }
}

impl FromStr for ShardPart {
    type Err = DataError;

    /// Parses `i/n` with `i < n`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || DataError::Config(format!("shard part `{s}` is not `i/n` with i < n"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(ShardPart { index, count })
    }
}

/// Settings of one `prepare` run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrepareConfig {
    /// What the prepared copy holds.
    pub settings: PrepareSettings,
    /// Worker threads (0: one per available core).
    pub workers: usize,
    /// The part of a job array this run writes.
    pub part: ShardPart,
    /// Stop after writing this many shards (a time-limited job; the next run continues).
    pub max_shards: Option<usize>,
}

/// Progress passed to the callback after each video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareProgress {
    /// Videos handled by this run so far.
    pub done: usize,
    /// Videos this run handles.
    pub total: usize,
    /// Bad inputs found by this run so far.
    pub bad: usize,
}

/// `report.json`: totals over every complete shard of a prepared folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareReport {
    /// Entries of the source manifest.
    pub source_entries: usize,
    /// Entries covered by complete shards.
    pub entries_done: usize,
    /// Good videos stored.
    pub prepared: usize,
    /// Frames stored.
    pub frames: u64,
    /// Bytes of the shard data files.
    pub bytes: u64,
    /// Complete shards.
    pub shards_complete: usize,
    /// Shards in all.
    pub shards_total: usize,
    /// Shards not written yet (by any part).
    pub shards_missing: Vec<usize>,
    /// Every bad input, in manifest order.
    pub bad: Vec<BadVideo>,
}

/// What one `prepare` run did.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareOutcome {
    /// Shards written by this run.
    pub written: usize,
    /// Shards of this part that were already complete.
    pub reused: usize,
    /// Shards of this part left for a later run (`max_shards`).
    pub remaining: usize,
    /// The folder's report after this run (also written to `report.json`).
    pub report: PrepareReport,
}

/// Prepares the shards of `config.part` of `manifest` into `dir`, calling `progress`
/// after each video (from the worker threads). Every unusable source video (missing,
/// undecodable, truncated, fewer than `min_frames` frames) is left out and listed in the
/// shard's index and in `report.json`.
///
/// # Errors
/// [`DataError::Config`] for invalid settings or a folder already holding a copy made
/// with other settings or from another manifest; [`DataError::Io`] when the output
/// cannot be written. Problems of single source videos are never errors.
pub fn prepare(
    manifest: &Manifest,
    dir: &Path,
    config: &PrepareConfig,
    progress: &(dyn Fn(PrepareProgress) + Sync),
) -> Result<PrepareOutcome> {
    let settings = &config.settings;
    settings.validate()?;
    if config.part.count == 0 || config.part.index >= config.part.count {
        return Err(DataError::Config(format!(
            "shard part {}/{} is out of range",
            config.part.index, config.part.count
        )));
    }
    let shards_dir = dir.join("shards");
    std::fs::create_dir_all(&shards_dir).map_err(io_error(&shards_dir))?;
    let meta = PreparedMeta {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        settings: settings.clone(),
        class_names: manifest.class_names.clone(),
        source_entries: manifest.entries.len(),
        source_fingerprint: fingerprint(manifest),
        num_shards: manifest.entries.len().div_ceil(settings.videos_per_shard),
    };
    let meta_path = dir.join(META_FILE);
    if meta_path.exists() {
        let old: PreparedMeta = read_json(&meta_path)?;
        if old != meta {
            return Err(DataError::Config(format!(
                "{} holds a prepared copy made with other settings or from another manifest \
                 (source {} entries, fingerprint {}; this run: {} entries, fingerprint {}); \
                 use another output folder or remove it",
                dir.display(),
                old.source_entries,
                old.source_fingerprint,
                meta.source_entries,
                meta.source_fingerprint
            )));
        }
    } else {
        // Every part writes the same bytes: whichever rename lands last is as good.
        write_atomic(&meta_path, &to_json(&meta))?;
    }

    let mine: Vec<usize> = (0..meta.num_shards)
        .filter(|k| k % config.part.count == config.part.index)
        .collect();
    let (done, mut todo): (Vec<usize>, Vec<usize>) = mine
        .iter()
        .partition(|&&k| shard_complete(dir, k).is_some());
    let remaining = match config.max_shards {
        Some(m) if m < todo.len() => {
            let left = todo.len() - m;
            todo.truncate(m);
            left
        }
        _ => 0,
    };
    let entries_of = |k: usize| {
        let a = k * settings.videos_per_shard;
        a..(a + settings.videos_per_shard).min(manifest.entries.len())
    };
    let total: usize = todo.iter().map(|&k| entries_of(k).len()).sum();
    let workers = if config.workers > 0 {
        config.workers
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    .min(todo.len().max(1));
    let next = AtomicUsize::new(0);
    let handled = AtomicUsize::new(0);
    let bad = AtomicUsize::new(0);
    let first_error: Mutex<Option<DataError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if first_error.lock().map_or(true, |e| e.is_some()) {
                    return;
                }
                let Some(&k) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let on_video = |was_bad: bool| {
                    let b = if was_bad {
                        bad.fetch_add(1, Ordering::SeqCst) + 1
                    } else {
                        bad.load(Ordering::SeqCst)
                    };
                    progress(PrepareProgress {
                        done: handled.fetch_add(1, Ordering::SeqCst) + 1,
                        total,
                        bad: b,
                    });
                };
                let range = entries_of(k);
                if let Err(e) = write_shard(
                    dir,
                    k,
                    range.start,
                    &manifest.entries[range],
                    settings,
                    &on_video,
                ) {
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let report = folder_report(dir, &meta);
    write_atomic(&dir.join(REPORT_FILE), &to_json(&report))?;
    Ok(PrepareOutcome {
        written: todo.len(),
        reused: done.len(),
        remaining,
        report,
    })
}

/// The index of shard `k` when the shard is complete (index readable, data file of the
/// size it names).
pub(crate) fn shard_complete(dir: &Path, k: usize) -> Option<ShardIndex> {
    let index: ShardIndex = read_json(&shard_index_path(dir, k)).ok()?;
    let len = std::fs::metadata(shard_data_path(dir, k)).ok()?.len();
    (index.shard == k && index.bytes == len).then_some(index)
}

/// Totals over the complete shards of `dir`.
fn folder_report(dir: &Path, meta: &PreparedMeta) -> PrepareReport {
    let mut r = PrepareReport {
        source_entries: meta.source_entries,
        entries_done: 0,
        prepared: 0,
        frames: 0,
        bytes: 0,
        shards_complete: 0,
        shards_total: meta.num_shards,
        shards_missing: Vec::new(),
        bad: Vec::new(),
    };
    for k in 0..meta.num_shards {
        let Some(index) = shard_complete(dir, k) else {
            r.shards_missing.push(k);
            continue;
        };
        r.shards_complete += 1;
        r.entries_done += index.entries;
        r.prepared += index.videos.len();
        r.frames += index.videos.iter().map(|v| v.frames as u64).sum::<u64>();
        r.bytes += index.bytes;
        r.bad.extend(index.bad);
    }
    r
}

/// Writes shard `k` (entries `entries`, the first being manifest entry `first`): data to a
/// temporary file, renamed when complete, then the index the same way.
fn write_shard(
    dir: &Path,
    k: usize,
    first: usize,
    entries: &[ManifestEntry],
    settings: &PrepareSettings,
    on_video: &dyn Fn(bool),
) -> Result<()> {
    let data_path = shard_data_path(dir, k);
    let tmp = temp_path(&data_path);
    let file = File::create(&tmp).map_err(io_error(&tmp))?;
    let mut out = BufWriter::new(file);
    let mut offset = 0u64;
    let mut crc = crc32fast::Hasher::new();
    let mut index = ShardIndex {
        shard: k,
        first_entry: first,
        entries: entries.len(),
        bytes: 0,
        data_crc: 0,
        videos: Vec::new(),
        bad: Vec::new(),
    };
    for (i, entry) in entries.iter().enumerate() {
        let mut record = RecordWriter {
            out: &mut out,
            path: &tmp,
            written: 0,
            crc: crc32fast::Hasher::new(),
            table: Vec::new(),
            encoder: None,
            size: None,
            settings,
        };
        match encode_video(entry, &mut record) {
            Ok(mut rec) => {
                let trailer = record_trailer(rec.width, rec.height, &record.table);
                record.write(&trailer)?;
                rec.entry = first + i;
                rec.offset = offset;
                rec.len = record.written;
                rec.header_crc = crc32fast::hash(&trailer);
                offset += record.written;
                crc.combine(&record.crc);
                index.videos.push(rec);
                on_video(false);
            }
            Err(Failure::Output(e)) => return Err(e),
            Err(Failure::Input(e)) => {
                // Drop what was written of this video.
                out.flush().map_err(io_error(&tmp))?;
                out.get_ref().set_len(offset).map_err(io_error(&tmp))?;
                out.seek(SeekFrom::Start(offset)).map_err(io_error(&tmp))?;
                tracing::warn!(file = %entry.path.display(), kind = e.kind_name(), "left out: {e}");
                index.bad.push(BadVideo {
                    entry: first + i,
                    path: entry.path.clone(),
                    kind: e.kind_name().into(),
                    reason: e.to_string(),
                });
                on_video(true);
            }
        }
    }
    out.flush().map_err(io_error(&tmp))?;
    let file = out.into_inner().map_err(|e| DataError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.set_len(offset).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &data_path).map_err(io_error(&data_path))?;
    index.bytes = offset;
    index.data_crc = crc.finalize();
    write_atomic(&shard_index_path(dir, k), &to_json(&index))
}

/// Why a video could not be stored: its input (left out and reported) or the output
/// (the run stops).
enum Failure {
    Input(DataError),
    Output(DataError),
}

impl From<DataError> for Failure {
    fn from(e: DataError) -> Self {
        Failure::Input(e)
    }
}

/// Whether `e` is a failure to write `out` (the shard), not a property of the input.
fn is_output_error(e: &DataError, out: &Path) -> bool {
    matches!(e, DataError::Io { path, .. } if path == out)
}

/// Appends the frames of one video to the shard file as they are encoded.
struct RecordWriter<'a> {
    out: &'a mut BufWriter<File>,
    path: &'a Path,
    written: u64,
    crc: crc32fast::Hasher,
    table: Vec<(u32, u32)>,
    encoder: Option<FrameEncoder>,
    size: Option<(usize, usize)>,
    settings: &'a PrepareSettings,
}

impl RecordWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io_error(self.path))?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn frame(&mut self, frame: &RgbFrame, source: &Path) -> Result<()> {
        let size = (frame.width, frame.height);
        if self.encoder.is_none() {
            self.encoder = Some(FrameEncoder::new(
                self.settings.codec,
                frame.width,
                frame.height,
                source,
            )?);
            self.size = Some(size);
        }
        if self.size != Some(size) {
            return Err(DataError::Decode {
                path: source.to_path_buf(),
                reason: "frame size changes inside the video".into(),
            });
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(DataError::Config("no frame encoder".into()));
        };
        let blob = encoder.encode(frame, source)?;
        let len = u32::try_from(blob.len()).map_err(|_| DataError::Encode {
            path: source.to_path_buf(),
            reason: "a stored frame exceeds 4 GiB".into(),
        })?;
        self.table.push((len, crc32fast::hash(&blob)));
        self.write(&blob)
    }
}

/// The decode-time resize for a `width x height` source: short side down to the setting.
fn store_resize(settings: &PrepareSettings, width: usize, height: usize) -> Resize {
    match settings.short_side {
        Some(s) if width.min(height) > s => Resize::ShortSide(s),
        _ => Resize::None,
    }
}

/// Decodes `entry` and writes its frames through `record`; the index entry (without its
/// position, filled in by the caller).
fn encode_video(
    entry: &ManifestEntry,
    record: &mut RecordWriter<'_>,
) -> std::result::Result<RecordIndex, Failure> {
    let settings = record.settings;
    let out_path = record.path;
    let path = &entry.path;
    let (source_width, source_height, frames, sample_frames, fps) = match entry.media {
        MediaKind::Video => {
            check_file(path)?;
            let mut reader = VideoReader::open(path, &settings.decode)?;
            let info = reader.info().clone();
            let resize = store_resize(settings, info.width, info.height);
            // Frame-rate cap: keep frame i when it starts a new 1/max_fps interval.
            let step = settings
                .max_fps
                .filter(|&cap| info.fps > cap)
                .map(|cap| cap / info.fps);
            let mut kept = 0usize;
            let mut output_error: Option<DataError> = None;
            let decoded = reader.for_each_frame(resize, &mut |i, frame| {
                if let Some(step) = step {
                    let slot = |i: usize| (i as f64 * step).floor() as u64;
                    if i > 0 && slot(i) == slot(i - 1) {
                        return Ok(());
                    }
                }
                kept += 1;
                record.frame(&frame, path).map_err(|e| {
                    if is_output_error(&e, out_path) {
                        let reason = e.to_string();
                        output_error = Some(e);
                        DataError::Encode {
                            path: path.clone(),
                            reason,
                        }
                    } else {
                        e
                    }
                })
            });
            if let Some(e) = output_error {
                return Err(Failure::Output(e));
            }
            let decoded = decoded?;
            // The reader's truncation rule (see `source::read_video`), applied to the
            // whole stream.
            let promised = info.header_frames.unwrap_or(info.estimated_frames);
            let slack = (promised as f32 * settings.decode.truncation_tolerance).max(2.0);
            if decoded > 0 && (promised - decoded.min(promised)) as f32 > slack {
                let what = if info.header_frames.is_some() {
                    "header announces"
                } else {
                    "duration implies"
                };
                return Err(Failure::Input(DataError::Decode {
                    path: path.clone(),
                    reason: format!(
                        "truncated: {what} {promised} frames, stream ends after {decoded}"
                    ),
                }));
            }
            let (sample, fps) = match step {
                Some(_) => (kept, settings.max_fps.unwrap_or(0.0)),
                None if info.estimated_frames > 0 => (info.estimated_frames, info.fps),
                None => (kept, info.fps),
            };
            (info.width, info.height, kept, sample, fps)
        }
        MediaKind::FrameFolder => {
            let files = list_frame_folder(path)?;
            let (w, h) = match files.first() {
                Some(f) => {
                    let info = VideoReader::open(f, &settings.decode)?.info().clone();
                    (info.width, info.height)
                }
                None => (0, 0),
            };
            let resize = store_resize(settings, w, h);
            for f in &files {
                let frame = decode_image(f, resize)?;
                record.frame(&frame, path).map_err(|e| {
                    if is_output_error(&e, out_path) {
                        Failure::Output(e)
                    } else {
                        Failure::Input(e)
                    }
                })?;
            }
            (w, h, files.len(), files.len(), 0.0)
        }
    };
    if frames < settings.min_frames.max(1) {
        return Err(Failure::Input(DataError::TooFewFrames {
            path: path.clone(),
            got: frames,
            needed: settings.min_frames.max(1),
        }));
    }
    let (width, height) = record.size.unwrap_or((0, 0));
    Ok(RecordIndex {
        entry: 0,
        source: path.clone(),
        label: entry.label,
        media: entry.media,
        offset: 0,
        len: 0,
        header_crc: 0,
        frames,
        width,
        height,
        source_width,
        source_height,
        sample_frames,
        fps,
    })
}
