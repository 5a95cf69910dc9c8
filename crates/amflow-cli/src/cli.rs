//! Command-line arguments (clap). Raw flags live here; each command validates them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// AM Flow: adapters for temporal processing in action recognition.
#[derive(Debug, Parser)]
#[command(name = "amflow", version, about, long_about = None)]
pub struct Cli {
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Compute device: `flex` (CPU, default), `cuda[:N]`, `vulkan`, `wgpu` (GPU backends need
    /// the cargo feature of the same name).
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
    /// A config (`.toml`) or a preset name.
    #[arg(long)]
    pub config: String,
    /// Where to write the checkpoint.
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
}

/// `amflow data check`.
#[derive(Debug, Args)]
pub struct DataCheckArgs {
    /// A manifest config (TOML) describing the dataset, see docs/data.md.
    pub manifest: PathBuf,
    /// Decode every frame instead of probing headers and one frame.
    #[arg(long)]
    pub full: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}
