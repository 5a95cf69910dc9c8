//! Reading the frames of one sampled clip from a stored sample: a video file (through
//! [`VideoReader`]) or a frame folder (one JPEG/PNG per frame, natural-sorted by the
//! number in the file name, the layout of TSN/mmaction "rawframes").
//! Owns the rule for containers whose header frame count is wrong: a small shortfall is
//! header slack (re-sample with the real count), a large one means the file is truncated.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::{check_file, decode_image, DecodeConfig, VideoReader};
use crate::error::{DataError, Result};
use crate::frame::{Resize, RgbFrame};
use crate::sampling::{sample_indices, SampleMode, Sampler, ShortVideoRule};
use amflow_rng::SplitMix64;

/// How a sample is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// One video file in any container/codec FFmpeg reads.
    #[default]
    Video,
    /// A folder with one image per frame.
    FrameFolder,
}

/// Everything needed to turn a stored sample into the frames of one clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClipReadConfig {
    /// Which frames.
    pub sampler: Sampler,
    /// Videos shorter than the sampler's span.
    pub short_video: ShortVideoRule,
    /// Resize applied while converting decoded frames to RGB.
    pub resize: Resize,
    /// Decoder settings.
    pub decode: DecodeConfig,
}

impl Default for ClipReadConfig {
    fn default() -> Self {
        ClipReadConfig {
            sampler: Sampler::Segment { num_segments: 8 },
            short_video: ShortVideoRule::default(),
            resize: Resize::ShortSide(128),
            decode: DecodeConfig::default(),
        }
    }
}

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"];

/// The image files of a frame folder in frame order.
///
/// # Errors
/// [`DataError::Missing`] when the folder does not exist, [`DataError::Io`] when it
/// cannot be listed.
pub fn list_frame_folder(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() {
            files.push(p);
        }
    }
    Ok(frame_order(files))
}

/// The frame files among `files` in frame order: those with an image extension, sorted by
/// the last number in their stem, then by name (what [`list_frame_folder`] returns for a
/// folder's files). Exposed for the fuzz targets.
#[doc(hidden)]
pub fn frame_order(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort_by_cached_key(|p| natural_key(p));
    files
}

/// Sort key: (the last run of digits in the file stem as a number, the stem, the file name:
/// `img_3.jpg` and `img_3.png` have the same stem).
fn natural_key(p: &Path) -> (u64, String, std::ffi::OsString) {
    let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let digits: String = name
        .chars()
        .rev()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (
        digits.parse().unwrap_or(u64::MAX),
        name.to_string(),
        p.file_name().unwrap_or_default().to_os_string(),
    )
}

/// Counts the frames of a sample by decoding it fully (video) or listing it (folder).
///
/// # Errors
/// Any bad-input error of [`VideoReader::open`] / decoding; [`DataError::TooFewFrames`]
/// when it has no decodable frame.
pub fn count_frames(path: &Path, kind: MediaKind, decode: &DecodeConfig) -> Result<usize> {
    let n = match kind {
        MediaKind::Video => {
            let mut reader = VideoReader::open(path, decode)?;
            reader.decode_frames(&[usize::MAX], Resize::None)?.decoded
        }
        MediaKind::FrameFolder => list_frame_folder(path)?.len(),
    };
    if n == 0 {
        return Err(DataError::TooFewFrames {
            path: path.to_path_buf(),
            got: 0,
            needed: 1,
        });
    }
    Ok(n)
}

fn sample(
    path: &Path,
    config: &ClipReadConfig,
    n: usize,
    mode: SampleMode,
    rng: &SplitMix64,
) -> Result<Vec<usize>> {
    // Each attempt samples from the same generator state: a re-sample after a header
    // correction is as deterministic as the first one.
    let mut rng = rng.clone();
    sample_indices(&config.sampler, n, mode, config.short_video, &mut rng).map_err(|e| {
        DataError::TooFewFrames {
            path: path.to_path_buf(),
            got: e.got,
            needed: e.needed,
        }
    })
}

/// Reads the frames of one clip: samples indices with `config.sampler` (random offsets
/// from `rng` in training), decodes them, and returns them in clip order (repeated
/// indices give repeated frames).
///
/// # Errors
/// The bad-input kinds of [`DataError`]; in particular [`DataError::Decode`] with a
/// "truncated" reason when a video ends well before its header's frame count.
pub fn read_clip_frames(
    path: &Path,
    kind: MediaKind,
    config: &ClipReadConfig,
    mode: SampleMode,
    rng: &mut SplitMix64,
) -> Result<Vec<RgbFrame>> {
    let start_rng = rng.clone();
    // Advance the caller's generator by a fixed amount whatever happens below.
    rng.next_u64();
    match kind {
        MediaKind::FrameFolder => {
            let files = list_frame_folder(path)?;
            let idx = sample(path, config, files.len(), mode, &start_rng)?;
            let mut cache: Vec<(usize, RgbFrame)> = Vec::new();
            let mut out = Vec::with_capacity(idx.len());
            for i in idx {
                let frame = match cache.iter().find(|(k, _)| *k == i) {
                    Some((_, f)) => f.clone(),
                    None => {
                        let f = decode_image(&files[i], config.resize)?;
                        cache.push((i, f.clone()));
                        f
                    }
                };
                out.push(frame);
            }
            check_sizes(path, &out)?;
            Ok(out)
        }
        MediaKind::Video => read_video(path, config, mode, &start_rng),
    }
}

fn read_video(
    path: &Path,
    config: &ClipReadConfig,
    mode: SampleMode,
    rng: &SplitMix64,
) -> Result<Vec<RgbFrame>> {
    check_file(path)?;
    let mut reader = VideoReader::open(path, &config.decode)?;
    let info = reader.info().clone();
    let mut n = info.estimated_frames;
    if n == 0 {
        // No usable header count nor duration: count first.
        n = count_frames(path, MediaKind::Video, &config.decode)?;
    }
    for attempt in 0..2 {
        let idx = sample(path, config, n, mode, rng)?;
        let got = reader.decode_frames(&idx, config.resize)?;
        if !got.reached_end {
            let frames: Vec<RgbFrame> = idx
                .iter()
                .map(|i| {
                    got.frames
                        .iter()
                        .find(|(k, _)| k == i)
                        .map(|(_, f)| f.clone())
                        .ok_or_else(|| DataError::Decode {
                            path: path.to_path_buf(),
                            reason: format!("frame {i} was not produced by the decoder"),
                        })
                })
                .collect::<Result<_>>()?;
            check_sizes(path, &frames)?;
            return Ok(frames);
        }
        let actual = got.decoded;
        if actual == 0 {
            return Err(DataError::TooFewFrames {
                path: path.to_path_buf(),
                got: 0,
                needed: config.sampler.num_frames(),
            });
        }
        // The header's frame count, else duration x frame rate, is what the file promised.
        let promised = info.header_frames.unwrap_or(info.estimated_frames);
        let slack = (promised as f32 * config.decode.truncation_tolerance).max(2.0);
        if ((promised - actual.min(promised)) as f32) > slack {
            let source = if info.header_frames.is_some() {
                "header announces"
            } else {
                "duration implies"
            };
            return Err(DataError::Decode {
                path: path.to_path_buf(),
                reason: format!(
                    "truncated: {source} {promised} frames, stream ends after {actual}"
                ),
            });
        }
        if attempt == 0 {
            n = actual;
            reader = VideoReader::open(path, &config.decode)?;
        }
    }
    Err(DataError::Decode {
        path: path.to_path_buf(),
        reason: "frame count changed between two decodes".into(),
    })
}

fn check_sizes(path: &Path, frames: &[RgbFrame]) -> Result<()> {
    if let Some(first) = frames.first() {
        if let Some(bad) = frames
            .iter()
            .find(|f| f.width != first.width || f.height != first.height)
        {
            return Err(DataError::Decode {
                path: path.to_path_buf(),
                reason: format!(
                    "frame size changes inside the clip ({}x{} then {}x{})",
                    first.width, first.height, bad.width, bad.height
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_frame_names() {
        let mut v: Vec<PathBuf> = ["img_10.jpg", "img_2.jpg", "img_1.jpg", "img_00003.jpg"]
            .iter()
            .map(PathBuf::from)
            .collect();
        v.sort_by_cached_key(|p| natural_key(p));
        let names: Vec<_> = v.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            ["img_1.jpg", "img_2.jpg", "img_00003.jpg", "img_10.jpg"]
        );
    }

    /// Fuzz crash (frame_names): names with the same stem (`img_3.JPG`, `img_3.png`) had
    /// equal sort keys, so the frame order followed the order the folder was listed in.
    #[test]
    fn frame_order_does_not_depend_on_listing_order() {
        let names = [
            "img_3.png",
            "img_3.JPG",
            "img_00001.jpg",
            "notes.txt",
            "img_3.jpeg",
        ];
        let files: Vec<PathBuf> = names.iter().map(|n| Path::new("/f").join(n)).collect();
        let mut reversed = files.clone();
        reversed.reverse();
        let ordered = frame_order(files);
        assert_eq!(frame_order(reversed), ordered);
        let names: Vec<_> = ordered.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(
            names,
            ["img_00001.jpg", "img_3.JPG", "img_3.jpeg", "img_3.png"]
        );
    }

    #[test]
    fn missing_folder_and_file_are_reported_as_missing() {
        let cfg = ClipReadConfig::default();
        let p = Path::new("/nonexistent/amflow/clip");
        for kind in [MediaKind::Video, MediaKind::FrameFolder] {
            let e = read_clip_frames(p, kind, &cfg, SampleMode::Train, &mut SplitMix64::new(0));
            assert!(matches!(e, Err(DataError::Missing { .. })), "{e:?}");
        }
    }
}
