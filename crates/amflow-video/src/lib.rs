//! Video data pipeline for amflow (decoding, sampling, transforms, datasets, synthetic data).

pub mod check;
pub mod dataset;
pub mod decode;
pub mod encode;
pub mod error;
pub mod frame;
pub mod loader;
pub mod metrics;
pub mod rng;
pub mod sampling;
pub mod source;
pub mod synthetic;
pub mod transform;

pub use check::{scan_manifest, FileProblem, ScanConfig, ScanDepth, ScanProgress, ScanReport};
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
pub use rng::SeedRng;
pub use sampling::{sample_indices, SampleMode, Sampler, ShortVideoRule, TooShort};
pub use source::{count_frames, list_frame_folder, read_clip_frames, ClipReadConfig, MediaKind};
pub use synthetic::{
    CameraMotion, MotionClass, ShapeKind, SyntheticAppearanceDataset, SyntheticMotionConfig,
    SyntheticMotionDataset,
};
pub use transform::{FlipPolicy, Normalization, RandOp, Stage, TransformConfig};
