//! Prepared datasets (`amflow data prepare`): every video of a manifest decoded once,
//! resized at decode, and stored frame by frame (JPEG by default, or raw RGB) in packed,
//! indexed, checksummed shards that a training run reads many times faster than the
//! original files. [`prepare`] writes one (parallel, resumable, in `--shard i/n` parts
//! without a coordinator); [`PreparedStore`] reads it, and
//! [`ManifestSpec::Prepared`](crate::ManifestSpec::Prepared) makes it a dataset format
//! like any other. The layout is described in [`format`].

mod codec;
pub mod format;
mod store;
mod write;

pub use codec::FrameCodec;
pub use format::{BadVideo, PrepareSettings, PreparedMeta, RecordIndex, ShardIndex};
pub use store::PreparedStore;
pub use write::{
    prepare, PrepareConfig, PrepareOutcome, PrepareProgress, PrepareReport, ShardPart,
};
