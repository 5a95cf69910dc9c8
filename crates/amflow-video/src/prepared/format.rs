//! The on-disk layout of a prepared dataset and its (de)serialisation:
//!
//! ```text
//! DIR/prepared.json            PreparedMeta: settings, class names, source fingerprint, shard count
//! DIR/shards/shard-000003.bin  records of the good videos of manifest entries [3S, 4S), back to back
//! DIR/shards/shard-000003.json ShardIndex: per video offset, length, checksum, sizes; bad inputs
//! DIR/report.json              PrepareReport over every complete shard (rewritten by each run)
//! ```
//!
//! A record is the frames' bytes back to back, then a trailer: per frame `u32` byte length
//! and `u32` CRC-32 of its bytes, then `u32` frame count, width, height, then `b"AMF1"`
//! (all little-endian; the trailer comes last so a record is written as it is encoded).
//! A shard's index is written after its data file is complete, each through a temporary
//! file and a rename, so an index exists only for a complete shard: it is the shard's
//! completion marker.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::FrameCodec;
use crate::decode::DecodeConfig;
use crate::error::{DataError, Result};
use crate::source::MediaKind;

/// Name of the dataset description in a prepared folder.
pub const META_FILE: &str = "prepared.json";
/// Name of the bad-input report in a prepared folder.
pub const REPORT_FILE: &str = "report.json";
/// `format` field of [`PreparedMeta`].
pub const FORMAT_NAME: &str = "amflow-prepared";
/// Layout version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"AMF1";

/// What a prepared copy holds, fixed when it is first written (TOML/JSON table; every
/// part of a `--shard i/n` job must use the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepareSettings {
    /// Frames are scaled so that their shorter side is this many pixels (aspect kept;
    /// never enlarged). `None`: stored at the source size.
    pub short_side: Option<usize>,
    /// Keep at most this many frames per second (the first frame of each `1/max_fps`
    /// interval). `None`: every frame.
    pub max_fps: Option<f64>,
    /// How each frame is stored.
    pub codec: FrameCodec,
    /// Manifest entries per shard.
    pub videos_per_shard: usize,
    /// Videos with fewer decodable frames are bad inputs (reported, left out).
    pub min_frames: usize,
    /// Decoder settings for the originals (corrupt-data and truncation rules).
    pub decode: DecodeConfig,
}

impl Default for PrepareSettings {
    fn default() -> Self {
        PrepareSettings {
            short_side: Some(256),
            max_fps: None,
            codec: FrameCodec::default(),
            videos_per_shard: 64,
            min_frames: 1,
            decode: DecodeConfig::default(),
        }
    }
}

impl PrepareSettings {
    /// Checks the values.
    ///
    /// # Errors
    /// [`DataError::Config`] for zero sizes, a non-positive frame-rate cap or a bad codec.
    pub fn validate(&self) -> Result<()> {
        if self.short_side == Some(0) {
            return Err(DataError::Config("short_side must be at least 1".into()));
        }
        if self.max_fps.is_some_and(|f| !(f > 0.0 && f.is_finite())) {
            return Err(DataError::Config("max_fps must be positive".into()));
        }
        if self.videos_per_shard == 0 {
            return Err(DataError::Config(
                "videos_per_shard must be at least 1".into(),
            ));
        }
        self.codec.validate()
    }
}

/// `prepared.json`: the dataset as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreparedMeta {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// How it was made.
    pub settings: PrepareSettings,
    /// The source manifest's class names, unchanged.
    pub class_names: Vec<String>,
    /// Entries of the source manifest.
    pub source_entries: usize,
    /// CRC-32 of the source manifest's `(path, label)` list, in hex: parts and resumed
    /// runs must come from the same manifest.
    pub source_fingerprint: String,
    /// Shards (`ceil(source_entries / videos_per_shard)`).
    pub num_shards: usize,
}

/// One good video in a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordIndex {
    /// Index of the video in the source manifest.
    pub entry: usize,
    /// The source file (or frame folder).
    pub source: PathBuf,
    /// Its label in the source manifest.
    pub label: usize,
    /// How the source was stored.
    pub media: MediaKind,
    /// Byte offset of the record in the shard's data file.
    pub offset: u64,
    /// Byte length of the record.
    pub len: u64,
    /// CRC-32 of the record trailer (frame table, counts, magic).
    pub header_crc: u32,
    /// Frames stored.
    pub frames: usize,
    /// Stored frame width.
    pub width: usize,
    /// Stored frame height.
    pub height: usize,
    /// Width of the source frames.
    pub source_width: usize,
    /// Height of the source frames.
    pub source_height: usize,
    /// Frame count a reader of the source samples from first (its header's estimate) when
    /// every frame is stored; the stored count after a frame-rate cap.
    pub sample_frames: usize,
    /// Frames per second of the stored frames (0 when unknown).
    pub fps: f64,
}

/// One source video that is not in the prepared copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadVideo {
    /// Index in the source manifest.
    pub entry: usize,
    /// The source file.
    pub path: PathBuf,
    /// Error kind ([`DataError::kind_name`]).
    pub kind: String,
    /// Full error message.
    pub reason: String,
}

/// `shards/shard-NNNNNN.json`: what a complete shard holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardIndex {
    /// Shard number.
    pub shard: usize,
    /// First source manifest entry of the shard.
    pub first_entry: usize,
    /// Source manifest entries the shard covers (good and bad).
    pub entries: usize,
    /// Size of the data file.
    pub bytes: u64,
    /// CRC-32 of the whole data file.
    pub data_crc: u32,
    /// Good videos, in manifest order.
    pub videos: Vec<RecordIndex>,
    /// Bad inputs, in manifest order.
    pub bad: Vec<BadVideo>,
}

/// The data file of shard `k` under `dir`.
pub fn shard_data_path(dir: &Path, k: usize) -> PathBuf {
    dir.join("shards").join(format!("shard-{k:06}.bin"))
}

/// The index of shard `k` under `dir`.
pub fn shard_index_path(dir: &Path, k: usize) -> PathBuf {
    dir.join("shards").join(format!("shard-{k:06}.json"))
}

/// The temporary name `path` is written under before it is renamed into place.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, flushed to disk, renamed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
    f.write_all(bytes).map_err(io_error(&tmp))?;
    f.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| DataError::Manifest {
        path: path.to_path_buf(),
        line: e.line(),
        reason: e.to_string(),
    })
}

/// Pretty JSON with a final newline.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let mut v = serde_json::to_vec_pretty(value).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The trailer of a record: per-frame length and CRC, frame count, size, magic.
pub(crate) fn record_trailer(width: usize, height: usize, frames: &[(u32, u32)]) -> Vec<u8> {
    let mut h = Vec::with_capacity(trailer_len(frames.len()));
    for (len, crc) in frames {
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
    }
    for v in [frames.len() as u32, width as u32, height as u32] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&RECORD_MAGIC);
    h
}

/// Bytes of the trailer of a record with `frames` frames.
pub(crate) fn trailer_len(frames: usize) -> usize {
    8 * frames + 16
}

/// The `(length, crc)` table of a record trailer, checked against its index entry.
pub(crate) fn parse_trailer(
    trailer: &[u8],
    rec: &RecordIndex,
) -> std::result::Result<Vec<(u32, u32)>, String> {
    let n = rec.frames;
    if trailer.len() != trailer_len(n) {
        return Err(format!(
            "record trailer is {} bytes, expected {}",
            trailer.len(),
            trailer_len(n)
        ));
    }
    if crc32fast::hash(trailer) != rec.header_crc {
        return Err("record table checksum mismatch".into());
    }
    if trailer[8 * n + 12..] != RECORD_MAGIC {
        return Err("record does not end with the record magic".into());
    }
    let word = |i: usize| {
        u32::from_le_bytes([trailer[i], trailer[i + 1], trailer[i + 2], trailer[i + 3]]) as usize
    };
    if (word(8 * n), word(8 * n + 4), word(8 * n + 8)) != (n, rec.width, rec.height) {
        return Err("record table disagrees with the index".into());
    }
    let table: Vec<(u32, u32)> = (0..n)
        .map(|i| (word(8 * i) as u32, word(8 * i + 4) as u32))
        .collect();
    let total: u64 = trailer.len() as u64 + table.iter().map(|(l, _)| u64::from(*l)).sum::<u64>();
    if total != rec.len {
        return Err(format!(
            "record frames add up to {total} bytes, the index says {}",
            rec.len
        ));
    }
    Ok(table)
}

/// CRC-32 of the `(path, label)` list of a manifest, in hex.
pub(crate) fn fingerprint(manifest: &crate::dataset::Manifest) -> String {
    let mut h = crc32fast::Hasher::new();
    for e in &manifest.entries {
        h.update(e.path.to_string_lossy().as_bytes());
        h.update(&[0]);
        h.update(&(e.label as u64).to_le_bytes());
    }
    for c in &manifest.class_names {
        h.update(c.as_bytes());
        h.update(&[0]);
    }
    format!("{:08x}", h.finalize())
}
