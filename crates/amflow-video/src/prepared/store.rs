//! [`PreparedStore`]: a prepared folder opened for reading. Opening reads `prepared.json`
//! and every shard index (a missing shard is an error naming it); a clip read samples
//! frame indices exactly as a read of the source video does, then reads only the wanted
//! frames (one positioned read each) and checks their CRC-32 before decoding them, so a
//! truncated or damaged shard gives [`DataError::Corrupt`], never a wrong clip.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::FrameDecoder;
use super::format::{
    parse_trailer, read_json, shard_data_path, shard_index_path, trailer_len, BadVideo,
    PreparedMeta, RecordIndex, ShardIndex, FORMAT_NAME, FORMAT_VERSION, META_FILE,
};
use crate::dataset::{Manifest, ManifestEntry};
use crate::error::{DataError, Result};
use crate::frame::RgbFrame;
use crate::sampling::{sample_indices, SampleMode};
use crate::source::ClipReadConfig;
use amflow_rng::SplitMix64;

/// A prepared dataset opened for reading.
#[derive(Debug, Clone)]
pub struct PreparedStore {
    dir: PathBuf,
    meta: PreparedMeta,
    manifest: Manifest,
    /// `(shard, record)` per manifest entry.
    records: Vec<(usize, RecordIndex)>,
    bad: Vec<BadVideo>,
}

impl PreparedStore {
    /// Opens the prepared folder `dir`.
    ///
    /// # Errors
    /// [`DataError::Io`] / [`DataError::Manifest`] when `prepared.json` or a shard index
    /// cannot be read, is of another format version, or a shard has not been written yet
    /// (the error names the missing shards).
    pub fn open(dir: &Path) -> Result<Self> {
        let meta_path = dir.join(META_FILE);
        if !meta_path.exists() {
            return Err(DataError::Manifest {
                path: meta_path,
                line: 0,
                reason: "not a prepared dataset (no prepared.json; run `amflow data prepare`)"
                    .into(),
            });
        }
        let meta: PreparedMeta = read_json(&meta_path)?;
        if meta.format != FORMAT_NAME || meta.version != FORMAT_VERSION {
            return Err(DataError::Manifest {
                path: meta_path,
                line: 0,
                reason: format!(
                    "format {} version {}; this build reads {FORMAT_NAME} version {FORMAT_VERSION}",
                    meta.format, meta.version
                ),
            });
        }
        let mut missing = Vec::new();
        let mut records = Vec::new();
        let mut bad = Vec::new();
        let mut entries = Vec::new();
        for k in 0..meta.num_shards {
            let path = shard_index_path(dir, k);
            if !path.exists() {
                missing.push(k);
                continue;
            }
            let index: ShardIndex = read_json(&path)?;
            if index.shard != k {
                return Err(DataError::Manifest {
                    path,
                    line: 0,
                    reason: format!("index of shard {} under the name of shard {k}", index.shard),
                });
            }
            for rec in index.videos {
                if rec.label >= meta.class_names.len() {
                    return Err(DataError::Manifest {
                        path,
                        line: 0,
                        reason: format!(
                            "label {} but only {} classes",
                            rec.label,
                            meta.class_names.len()
                        ),
                    });
                }
                entries.push(ManifestEntry {
                    path: rec.source.clone(),
                    label: rec.label,
                    media: rec.media,
                });
                records.push((k, rec));
            }
            bad.extend(index.bad);
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|k| k.to_string()).collect();
            return Err(DataError::Manifest {
                path: dir.join("shards"),
                line: 0,
                reason: format!(
                    "prepared dataset is incomplete: {} of {} shards not written yet ({}); \
                     run `amflow data prepare` again (with the missing `--shard i/n` parts)",
                    missing.len(),
                    meta.num_shards,
                    list.join(", ")
                ),
            });
        }
        let manifest = Manifest {
            entries,
            class_names: meta.class_names.clone(),
        };
        Ok(PreparedStore {
            dir: dir.to_path_buf(),
            meta,
            manifest,
            records,
            bad,
        })
    }

    /// The good videos with their original labels, and the original class list.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `prepared.json`.
    pub fn meta(&self) -> &PreparedMeta {
        &self.meta
    }

    /// Source videos left out, with their reasons.
    pub fn bad_inputs(&self) -> &[BadVideo] {
        &self.bad
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored record of manifest entry `i`.
    pub fn record(&self, i: usize) -> Option<&RecordIndex> {
        self.records.get(i).map(|(_, r)| r)
    }

    /// The name errors give the record of entry `i`: shard file and source video.
    fn record_name(&self, i: usize) -> PathBuf {
        match self.records.get(i) {
            Some((k, r)) => PathBuf::from(format!(
                "{} (record of {})",
                shard_data_path(&self.dir, *k).display(),
                r.source.display()
            )),
            None => self.dir.clone(),
        }
    }

    /// Reads the frames of one clip of entry `i`: indices sampled as
    /// [`read_clip_frames`](crate::read_clip_frames) samples them from the source video
    /// (first from the source's header frame count, again from the real count when that
    /// reaches past the end), frames resized to `config.read.resize` of the source size.
    /// Advances `rng` by one draw, as reading the source does.
    ///
    /// # Errors
    /// [`DataError::Corrupt`] for a truncated or damaged record, [`DataError::TooFewFrames`]
    /// when the short-video rule rejects it, [`DataError::IndexOutOfRange`].
    pub fn read_clip(
        &self,
        i: usize,
        config: &ClipReadConfig,
        mode: SampleMode,
        rng: &mut SplitMix64,
    ) -> Result<Vec<RgbFrame>> {
        let (shard, rec) = self.records.get(i).ok_or(DataError::IndexOutOfRange {
            index: i,
            len: self.records.len(),
        })?;
        let start_rng = rng.clone();
        rng.next_u64();
        let sample = |n: usize| {
            sample_indices(
                &config.sampler,
                n,
                mode,
                config.short_video,
                &mut start_rng.clone(),
            )
            .map_err(|e| DataError::TooFewFrames {
                path: rec.source.clone(),
                got: e.got,
                needed: e.needed,
            })
        };
        let mut idx = sample(rec.sample_frames.max(1))?;
        if idx.iter().any(|&j| j >= rec.frames) {
            idx = sample(rec.frames)?;
        }
        let reader = RecordReader::open(self, *shard, rec, i)?;
        let target = config
            .resize
            .target(rec.source_width.max(1), rec.source_height.max(1));
        let mut decoder = FrameDecoder::new(self.meta.settings.codec);
        let mut cache: Vec<(usize, RgbFrame)> = Vec::with_capacity(idx.len());
        let mut out = Vec::with_capacity(idx.len());
        for j in idx {
            let frame = match cache.iter().find(|(k, _)| *k == j) {
                Some((_, f)) => f.clone(),
                None => {
                    let blob = reader.frame(j)?;
                    let f = decoder.decode(&blob, (rec.width, rec.height), target, &reader.name)?;
                    cache.push((j, f.clone()));
                    f
                }
            };
            out.push(frame);
        }
        Ok(out)
    }

    /// Checks the record of entry `i`: its table and the checksum of every frame; with
    /// `decode_all` also decodes every frame (else the first). Returns the frame count.
    ///
    /// # Errors
    /// [`DataError::Corrupt`] naming what is damaged.
    pub fn verify(&self, i: usize, decode_all: bool) -> Result<usize> {
        let (shard, rec) = self.records.get(i).ok_or(DataError::IndexOutOfRange {
            index: i,
            len: self.records.len(),
        })?;
        let reader = RecordReader::open(self, *shard, rec, i)?;
        let mut decoder = FrameDecoder::new(self.meta.settings.codec);
        for j in 0..rec.frames {
            let blob = reader.frame(j)?;
            if j == 0 || decode_all {
                decoder.decode(
                    &blob,
                    (rec.width, rec.height),
                    (rec.width, rec.height),
                    &reader.name,
                )?;
            }
        }
        Ok(rec.frames)
    }
}

/// One record of a shard file opened for positioned reads.
struct RecordReader<'a> {
    file: File,
    rec: &'a RecordIndex,
    /// `(offset in the file, length, crc)` per frame.
    frames: Vec<(u64, u32, u32)>,
    name: PathBuf,
}

impl<'a> RecordReader<'a> {
    fn open(store: &PreparedStore, shard: usize, rec: &'a RecordIndex, i: usize) -> Result<Self> {
        let name = store.record_name(i);
        let corrupt = |reason: String| DataError::Corrupt {
            path: name.clone(),
            reason,
        };
        let path = shard_data_path(&store.dir, shard);
        let file = File::open(&path).map_err(|e| corrupt(format!("cannot open the shard: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| corrupt(format!("cannot read the shard's size: {e}")))?
            .len();
        let tl = trailer_len(rec.frames) as u64;
        let end = rec.offset.checked_add(rec.len).filter(|_| rec.len >= tl);
        let Some(end) = end.filter(|&e| e <= size) else {
            return Err(corrupt(format!(
                "shard is truncated: the record spans bytes {}..{} of a {size}-byte file",
                rec.offset,
                rec.offset.saturating_add(rec.len)
            )));
        };
        let mut trailer = vec![0u8; tl as usize];
        file.read_exact_at(&mut trailer, end - tl)
            .map_err(|e| corrupt(format!("cannot read the record table: {e}")))?;
        let table = parse_trailer(&trailer, rec).map_err(corrupt)?;
        let mut at = rec.offset;
        let frames = table
            .into_iter()
            .map(|(len, crc)| {
                let f = (at, len, crc);
                at += u64::from(len);
                f
            })
            .collect();
        Ok(RecordReader {
            file,
            rec,
            frames,
            name,
        })
    }

    /// The checked bytes of frame `j`.
    fn frame(&self, j: usize) -> Result<Vec<u8>> {
        let corrupt = |reason: String| DataError::Corrupt {
            path: self.name.clone(),
            reason,
        };
        let &(at, len, crc) = self
            .frames
            .get(j)
            .ok_or_else(|| corrupt(format!("frame {j} of a {}-frame record", self.rec.frames)))?;
        let mut blob = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut blob, at)
            .map_err(|e| corrupt(format!("cannot read frame {j}: {e}")))?;
        if crc32fast::hash(&blob) != crc {
            return Err(corrupt(format!("frame {j} checksum mismatch")));
        }
        Ok(blob)
    }
}
