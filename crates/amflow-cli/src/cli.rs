//! Command-line arguments (clap). Raw flags live here; each command validates them.

use std::path::PathBuf;

use amflow_video::timeline::Span;
use clap::{Args, Parser, Subcommand};

/// AM Flow: adapters for temporal processing in action recognition.
#[derive(Debug, Parser)]
#[command(name = "amflow", version, about, long_about = None)]
pub struct Cli {
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Compute device: `flex` (CPU, default), `cuda[:N]`, `vulkan`, `wgpu` (GPU backends need
    /// the cargo feature of the same name). `amflow train` takes a comma-separated list for
    /// data-parallel training, e.g. `cuda:0,cuda:1`.
    #[arg(long, global = true, default_value = "flex")]
    pub device: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an AM Flow model on generated synthetic motion clips and print the logits and the
    /// AM flow statistics per block.
    Demo(DemoArgs),
    /// Print a model's architecture summary: parameter counts and compute per clip.
    Info(InfoArgs),
    /// List the presets, or print one as a TOML config.
    Preset(PresetArgs),
    /// Build a model from a config and save it as an (untrained) checkpoint.
    Init(InitArgs),
    /// Run one clip stored as a `(B, T, 3, H, W)` safetensors tensor and write the logits and
    /// the intermediates (attention logits, AM flow, bottlenecks, head logits).
    Forward(ForwardArgs),
    /// Dataset tools.
    Data(DataArgs),
    /// Train AM Flow (default: the embedded synthetic motion data on the project's small
    /// pretrained image ViT, then the frame-only baseline for comparison).
    Train(TrainArgs),
    /// Evaluate a checkpoint: top-1, top-5, mean class accuracy, per-class accuracy, confusion
    /// matrix (CSV and PNG), JSON summary.
    Eval(EvalArgs),
    /// Classify video files: top-k labels with probabilities.
    Predict(PredictArgs),
    /// Classify a live source (anything FFmpeg opens: a file, `-` for stdin, `udp://`,
    /// `rtsp://`, a device) every few seconds on its latest window, one JSON line each.
    Watch(WatchArgs),
    /// Reproduce the paper's ablations in miniature: train every variant (AM flow or not,
    /// vanilla or aligned, with and without camera motion, transformer/TCN/LSTM units, from
    /// scratch, frame-only) with the same budget and seeds; write the table and the curves.
    Ablate(AblateArgs),
    /// Pretrain a small image ViT from scratch on single synthetic frames (shape labels only):
    /// what made the embedded `synthetic-vit-s8` backbone
    /// (`crates/amflow/assets/synthetic-vit-s8/`).
    PretrainImage(PretrainImageArgs),
    /// Draw the AM flow of consecutive frames per block (PCA over channels to RGB) beside the
    /// frames, as in the paper's Figure 5.
    Flow(FlowArgs),
}

/// `amflow train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training config (TOML); default: the embedded synthetic-data run.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set optim.lr=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory (default: runs/<UTC time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this directory exactly where it stopped.
    #[arg(long, conflicts_with_all = ["config", "run_dir"])]
    pub resume: Option<PathBuf>,
    /// Skip the frame-only baseline that the embedded default trains for comparison.
    #[arg(long)]
    pub no_baseline: bool,
    /// Dry run: check the config and the data (counts, classes, a few decodes), build the
    /// model, print parameters, FLOPs per clip, steps per epoch and the memory estimate per
    /// device (JSON on stdout), and exit without training.
    #[arg(long, conflicts_with = "resume")]
    pub plan: bool,
}

/// `amflow ablate`.
#[derive(Debug, Args)]
pub struct AblateArgs {
    /// The built-in study: `mini` (9 variants x 3 seeds, under an hour on 2 cores) or `quick`
    /// (one seed, less data, minutes).
    #[arg(long, default_value = "mini", conflicts_with = "config")]
    pub preset: String,
    /// Shorthand for `--preset quick`.
    #[arg(long, conflicts_with_all = ["config", "preset"])]
    pub quick: bool,
    /// A study config (TOML: `seeds`, `[base]` training config, `[[variants]]` with `name`,
    /// `claim` and `set` overrides).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a key of the base training config, e.g. `--set optim.epochs=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output folder (default: ablation/<preset>); finished runs in it are reused and
    /// interrupted ones resumed.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `amflow pretrain-image`.
#[derive(Debug, Args)]
pub struct PretrainImageArgs {
    /// Pretraining config (TOML; default: the one that made the embedded backbone, e.g.
    /// `crates/amflow/assets/synthetic-vit-s8/pretrain.toml`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder for model.safetensors, config.json and pretrain.toml.
    #[arg(long)]
    pub out: PathBuf,
}

/// `amflow eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Training config whose validation data to use (default: the run directory's
    /// `config.toml` next to the checkpoint, else the embedded synthetic data).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output folder for summary.json, per_class.csv, confusion.csv and confusion.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Read validation clips as the config's `data.val_clips` says, not as the checkpoint's
    /// input contract (the validation pipeline it was trained with) says.
    #[arg(long)]
    pub config_clips: bool,
}

/// `amflow predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Video files (or frame folders).
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
    /// The checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Labels to print per video.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// One JSON object per video on stdout.
    #[arg(long)]
    pub json: bool,
    /// Make clips as this input contract says (a TOML file with a `[clips]` table: sampler,
    /// resize, stages, normalization, views) instead of the checkpoint's own.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Slide a clip window over the whole video (one video file) and print one JSON line
    /// per window: start and end time and the top-k classes.
    #[arg(long)]
    pub timeline: bool,
    /// Timeline window length: seconds (`2s`) or frames (`16f`).
    #[arg(long, default_value = "2s", value_parser = parse_span, requires = "timeline")]
    pub window: Span,
    /// Timeline stride between window starts: seconds (`1s`) or frames (`8f`).
    #[arg(long, default_value = "1s", value_parser = parse_span, requires = "timeline")]
    pub stride: Span,
    /// Timeline: also write `timeline.csv` and `timeline.png` (strip chart) into this folder.
    #[arg(long, value_name = "DIR", requires = "timeline")]
    pub out: Option<PathBuf>,
}

/// `amflow watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What FFmpeg opens: a file, `-` (stdin), `udp://...`, `rtsp://...`, `http://...`, a
    /// device such as `/dev/video0`.
    pub source: String,
    /// The checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Window length: seconds (`2s`) or frames (`16f`).
    #[arg(long, default_value = "2s", value_parser = parse_span)]
    pub window: Span,
    /// A prediction every this long of source time: seconds (`1s`) or frames (`30f`).
    #[arg(long, default_value = "1s", value_parser = parse_span)]
    pub every: Span,
    /// Labels per prediction.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Give up with an error when the source sends no frame for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub stall_timeout: f64,
    /// After a lost, stalled or failing source, open it again up to this many times (not for
    /// stdin, `-`), waiting `--reconnect-delay` seconds before each try; the count starts
    /// anew after every prediction.
    #[arg(long, default_value_t = 0)]
    pub reconnect: u32,
    /// Seconds to wait before reconnecting.
    #[arg(long, default_value_t = 1.0)]
    pub reconnect_delay: f64,
    /// Make clips as this input contract says instead of the checkpoint's own.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

fn parse_span(s: &str) -> Result<Span, String> {
    s.parse()
        .map_err(|e: amflow_video::DataError| e.to_string())
}

/// `amflow flow`.
#[derive(Debug, Args)]
pub struct FlowArgs {
    /// A video file (or frame folder).
    pub video: PathBuf,
    /// The checkpoint (default: the untrained synthetic-small model).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// First frame of the pair (t, t+1) to draw.
    #[arg(long, default_value_t = 0)]
    pub frame: usize,
    /// Make the clip as this input contract says (TOML, `[clips]`) instead of the
    /// checkpoint's own.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// `amflow demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Model config (TOML) or preset name; default: a small random-weight model sized for the
    /// synthetic data.
    #[arg(long)]
    pub model: Option<String>,
    /// Seed of the generated clips.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Add camera motion (pan and jitter) to the generated clips.
    #[arg(long)]
    pub camera_motion: bool,
}

/// `amflow info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A config (`.toml`), a checkpoint (`.safetensors`) or a preset name.
    pub model: String,
}

/// `amflow preset`.
#[derive(Debug, Args)]
pub struct PresetArgs {
    /// The preset to print; none lists them.
    pub name: Option<String>,
}

/// `amflow init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A config (`.toml`) or a preset name to start from (default with `--backbone`: the
    /// paper's main setup, `dinov2-b14-am12-transformer`).
    #[arg(long, required_unless_present = "backbone")]
    pub config: Option<String>,
    /// A Hugging Face Hub repository (e.g. `facebook/dinov2-base`,
    /// `openai/clip-vit-base-patch16`) whose weights and `config.json` architecture replace the
    /// config's backbone; the adapter bottleneck becomes a quarter of its width.
    #[arg(long, value_name = "REPO")]
    pub backbone: Option<String>,
    /// Branch, tag or commit of `--backbone` (default `main`).
    #[arg(long, requires = "backbone")]
    pub revision: Option<String>,
    /// Where to write: a `.toml` model config (no weights loaded), or an untrained checkpoint
    /// (`.safetensors`).
    #[arg(long)]
    pub out: PathBuf,
}

/// `amflow forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A safetensors file holding the clip `(B, T, 3, H, W)`, normalised, as its only tensor
    /// or under the name `clip`.
    #[arg(long)]
    pub clip: PathBuf,
    /// Where to write the logits and the intermediates (safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

/// `amflow data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data subcommand.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// `amflow data ...`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Scan a dataset manifest and report every missing or undecodable file with its reason.
    Check(DataCheckArgs),
    /// Decode every video of a manifest once and write a prepared copy (resized frames in
    /// indexed shards) that training reads many times faster: `format = "prepared"`.
    Prepare(DataPrepareArgs),
}

/// How `amflow data prepare` stores frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecArg {
    /// JPEG (FFmpeg's mjpeg), quantiser `--qscale`.
    Jpeg,
    /// Uncompressed RGB (exact, about 10x larger).
    Raw,
}

/// `amflow data prepare`.
#[derive(Debug, Args)]
pub struct DataPrepareArgs {
    /// The dataset, as for `amflow data check`.
    pub manifest: PathBuf,
    /// Output folder (a stopped run continues in it).
    #[arg(long)]
    pub out: PathBuf,
    /// Shorter side of the stored frames (larger sources are scaled down; 0: source size).
    #[arg(long, default_value_t = 256)]
    pub short_side: usize,
    /// Keep at most this many frames per second.
    #[arg(long)]
    pub max_fps: Option<f64>,
    /// Frame storage.
    #[arg(long, value_enum, default_value_t = CodecArg::Jpeg)]
    pub codec: CodecArg,
    /// JPEG quantiser, 1 (best) to 31 (as `ffmpeg -q:v`).
    #[arg(long, default_value_t = 3)]
    pub qscale: u8,
    /// Manifest entries per shard.
    #[arg(long, default_value_t = 64)]
    pub videos_per_shard: usize,
    /// Videos with fewer decodable frames are left out (and reported).
    #[arg(long, default_value_t = 1)]
    pub min_frames: usize,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Prepare only part `i` of `n` (shards k with k % n == i), for a job array; all parts
    /// write into the same `--out`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Stop after writing this many shards (a later run continues).
    #[arg(long)]
    pub max_shards: Option<usize>,
}

/// `amflow data check`.
#[derive(Debug, Args)]
pub struct DataCheckArgs {
    /// The dataset: a manifest spec (`.toml`, see docs/data.md), a Kinetics-400 CSV, or a
    /// `path label` list.
    pub manifest: PathBuf,
    /// Decode every frame instead of probing headers and one frame.
    #[arg(long)]
    pub full: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}
