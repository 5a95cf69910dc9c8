//! Video data pipeline for amflow: FFmpeg decoding ([`decode`]), clip sampling
//! ([`sampling`]), transforms ([`transform`]), datasets and their annotation formats
//! ([`dataset`]), the synthetic motion data ([`synthetic`]), the batching [`Loader`]
//! ([`loader`]), the manifest checker ([`check`]) and prepared copies decoded once for
//! fast multi-epoch reading ([`prepared`]) and sliding windows over whole videos for
//! timelines ([`timeline`]) and over live sources ([`live`]). It produces plain 8-bit buffers
//! with shapes (`(B, T, 3, H, W)` row-major) and the per-channel normalisation to apply to them
//! ([`pixels`]; the model side makes the `f32` values, on its device), and does not depend on
//! any tensor library.
//! `docs/data.md` in the repository describes formats, sampling and policies.
//!
//! ```
//! use std::sync::Arc;
//! use amflow_video::{Loader, LoaderConfig, SyntheticMotionConfig, SyntheticMotionDataset};
//!
//! let data = SyntheticMotionDataset::new(SyntheticMotionConfig {
//!     num_samples: 8,
//!     num_frames: 4,
//!     size: 32,
//!     ..SyntheticMotionConfig::default()
//! })?;
//! let loader = Loader::new(Arc::new(data), LoaderConfig { batch_size: 4, ..LoaderConfig::default() })?;
//! let mut epoch = loader.epoch(0);
//! for batch in epoch.by_ref() {
//!     let batch = batch?;
//!     assert_eq!(batch.shape, [4, 4, 3, 32, 32]);
//!     assert_eq!(batch.data.len(), 4 * 4 * 3 * 32 * 32); // bytes
//!     assert_eq!(batch.normalized().len(), batch.data.len()); // f32, on the host
//! }
//! assert_eq!(epoch.summary().clips, 8);
//! # Ok::<(), amflow_video::DataError>(())
//! ```

pub mod check;
pub mod dataset;
pub mod decode;
pub mod encode;
pub mod erasing;
pub mod error;
pub mod frame;
pub mod live;
pub mod loader;
pub mod metrics;
pub mod pixels;
pub mod prepared;
pub mod sampling;
pub mod source;
pub mod synthetic;
pub mod timeline;
pub mod transform;

pub use amflow_rng::SplitMix64;
pub use check::{
    scan_manifest, scan_prepared, FileProblem, ScanConfig, ScanDepth, ScanProgress, ScanReport,
};
pub use dataset::{
    DatasetConfig, FileDatasetConfig, FileVideoDataset, KineticsLayout, Manifest, ManifestEntry,
    ManifestSpec, SmarthomeSplit, Split, VideoDataset,
};
pub use decode::{DecodeConfig, DecodedFrames, VideoInfo, VideoReader};
pub use encode::{
    encoder_available, write_synthetic_dataset, write_video, Container, EncodeConfig, VideoCodec,
};
pub use error::{DataError, Result};
pub use frame::{Clip, Resize, RgbFrame};
pub use loader::{BadInputPolicy, Batch, Epoch, EpochSummary, Loader, LoaderConfig, SkippedSample};
pub use metrics::{average_views, mean_class_accuracy, top1_accuracy};
pub use pixels::PixelNorm;
pub use prepared::{
    prepare, FrameCodec, PrepareConfig, PrepareOutcome, PrepareProgress, PrepareReport,
    PrepareSettings, PreparedStore, ShardPart,
};
pub use sampling::{sample_indices, SampleMode, Sampler, ShortVideoRule, TooShort};
pub use source::{count_frames, list_frame_folder, read_clip_frames, ClipReadConfig, MediaKind};
pub use synthetic::{
    CameraMotion, MotionClass, ShapeKind, SyntheticAppearanceDataset, SyntheticMotionConfig,
    SyntheticMotionDataset, MAX_SYNTHETIC_CLIP_VALUES,
};
pub use transform::{FlipPolicy, Normalization, RandOp, Stage, TransformConfig};
