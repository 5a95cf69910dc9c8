//! `amflow train`: run (or resume) training in a run directory, with progress bars, logs in
//! `train.log`, TensorBoard event files, `curves.png`, and for the embedded default the
//! frame-only baseline trained the same way for comparison.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use amflow_report::{EventWriter, Panel, Series};
use amflow_train::trainer::{self, EpochRecord, Observer, StepInfo};
use amflow_train::TrainConfig;
use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::TrainArgs;

/// Set by the first Ctrl-C (SIGINT): training stops after the current optimizer step, saves
/// its state and exits; a second Ctrl-C exits at once. `None` if no handler could be installed
/// (Ctrl-C then kills the process, and `--resume` continues from the last saved state).
fn interrupt_flag() -> Option<Arc<AtomicBool>> {
    static FLAG: OnceLock<Option<Arc<AtomicBool>>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let sigint = signal_hook::consts::SIGINT;
        let installed = signal_hook::flag::register_conditional_shutdown(sigint, 130, flag.clone())
            .and_then(|_| signal_hook::flag::register(sigint, flag.clone()));
        match installed {
            Ok(_) => Some(flag),
            Err(e) => {
                tracing::warn!("no Ctrl-C handler: {e}");
                None
            }
        }
    })
    .clone()
}

/// Progress bars, TensorBoard scalars and the curves plot of one run.
struct CliObserver {
    bar: Option<ProgressBar>,
    events: Option<EventWriter>,
    history: Vec<EpochRecord>,
    run_dir: PathBuf,
    epochs: u64,
    interrupt: Option<Arc<AtomicBool>>,
}

impl CliObserver {
    fn new(run_dir: &Path, epochs: u64) -> Self {
        let events = match EventWriter::create(run_dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("no TensorBoard events: {e}");
                None
            }
        };
        Self {
            bar: None,
            events,
            history: vec![],
            run_dir: run_dir.to_path_buf(),
            epochs,
            interrupt: interrupt_flag(),
        }
    }

    fn bar(&mut self, len: usize, prefix: String) {
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(prefix);
        self.bar = Some(bar);
    }

    fn plot(&self) {
        let points = |f: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
            self.history
                .iter()
                .map(|r| ((r.epoch + 1) as f64, f(r)))
                .collect()
        };
        let panels = [
            Panel {
                title: "loss".into(),
                x_label: "epoch".into(),
                y_label: "cross-entropy".into(),
                series: vec![Series::new("train loss", points(|r| r.train_loss))],
            },
            Panel {
                title: "accuracy".into(),
                x_label: "epoch".into(),
                y_label: "accuracy".into(),
                series: vec![
                    Series::new("train top-1", points(|r| r.train_top1)),
                    Series::new("val top-1", points(|r| r.val_top1)),
                    Series::new("val mean class", points(|r| r.val_mean_class_accuracy)),
                ],
            },
        ];
        if let Err(e) = amflow_report::plot_panels(self.run_dir.join("curves.png"), &panels, 2) {
            tracing::warn!("could not draw curves.png: {e}");
        }
    }
}

impl Observer for CliObserver {
    fn should_stop(&mut self) -> bool {
        let stop = self
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        if stop {
            if let Some(bar) = self.bar.take() {
                bar.abandon();
            }
            tracing::warn!(
                "interrupted: saving the state of this step in {}",
                self.run_dir.display()
            );
        }
        stop
    }

    fn epoch_start(&mut self, epoch: u64, batches: usize) {
        self.bar(batches, format!("epoch {}/{}", epoch + 1, self.epochs));
    }

    fn step(&mut self, info: &StepInfo) {
        if let Some(bar) = &self.bar {
            bar.set_position(info.batch as u64);
            if let Some(loss) = info.loss {
                bar.set_message(format!("loss {loss:.4} lr {:.2e}", info.lr));
            }
        }
        if let Some(ev) = &mut self.events {
            let step = info.step as i64;
            let mut scalars = vec![
                ("train/lr", info.lr as f32),
                ("train/grad_norm", info.grad_norm as f32),
            ];
            // The loss is read from the device at logging steps only (`log_every`).
            if let Some(loss) = info.loss {
                scalars.push(("train/loss", loss as f32));
            }
            let _ = ev.add_scalars(&scalars, step);
        }
    }

    fn eval_start(&mut self, batches: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.bar(batches, "validation".into());
    }

    fn eval_batch(&mut self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "epoch {}/{}: train loss {:.4} top-1 {:.3} | val top-1 {:.3} top-5 {:.3} mean class {:.3} | {:.1}s",
            r.epoch + 1,
            self.epochs,
            r.train_loss,
            r.train_top1,
            r.val_top1,
            r.val_top5,
            r.val_mean_class_accuracy,
            r.seconds
        );
        if let Some(ev) = &mut self.events {
            let step = r.step as i64;
            let _ = ev.add_scalars(
                &[
                    ("epoch/train_loss", r.train_loss as f32),
                    ("epoch/train_top1", r.train_top1 as f32),
                    ("epoch/val_top1", r.val_top1 as f32),
                    ("epoch/val_top5", r.val_top5 as f32),
                    (
                        "epoch/val_mean_class_accuracy",
                        r.val_mean_class_accuracy as f32,
                    ),
                ],
                step,
            );
            let _ = ev.flush();
        }
        self.history.push(r.clone());
        self.plot();
    }
}

fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    PathBuf::from("runs").join(format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

fn run_one(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    devices: &[Device],
) -> Result<Vec<EpochRecord>> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    Ok(train_observed(config, run_dir, resume, devices)?)
}

/// Trains (or resumes) one run in `run_dir` with progress bars, `train.log`, TensorBoard
/// events, `curves.png` and the Ctrl-C handler; returns its history.
pub(crate) fn train_observed(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    devices: &[Device],
) -> amflow_train::Result<Vec<EpochRecord>> {
    std::fs::create_dir_all(run_dir).map_err(|e| amflow_train::TrainError::io(run_dir, e))?;
    crate::log_file::tee_to(&run_dir.join("train.log"));
    let mut observer = CliObserver::new(run_dir, config.optim.epochs);
    if resume {
        if let Ok(text) = std::fs::read_to_string(run_dir.join(trainer::files::METRICS)) {
            observer.history = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
        }
    }
    if devices.len() > 1 {
        tracing::info!("data parallel over {} devices", devices.len());
    }
    let outcome = trainer::train_data_parallel(config, run_dir, resume, devices, &mut observer)?;
    Ok(outcome.history)
}

/// Runs `amflow train`.
pub fn run(args: &TrainArgs, device: &[Device]) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(dir) = &args.resume {
        let config = TrainConfig::from_file(&dir.join(trainer::files::CONFIG), &args.overrides)?;
        let history = run_one(&config, dir, true, device)?;
        print_summary("AM Flow", &history);
        return Ok(ExitCode::SUCCESS);
    }
    let embedded = args.config.is_none();
    let config = match &args.config {
        Some(path) => TrainConfig::from_file(path, &args.overrides)?,
        None => {
            TrainConfig::from_toml(&TrainConfig::embedded_default().to_toml(), &args.overrides)?
        }
    };
    if args.plan {
        return print_plan(&config, device);
    }
    let run_dir = args.run_dir.clone().unwrap_or_else(default_run_dir);
    tracing::info!("run directory {}", run_dir.display());
    let history = run_one(&config, &run_dir, false, device)?;
    let mut report = vec![("AM Flow", history)];
    if embedded && !args.no_baseline {
        tracing::info!(
            "training the frame-only baseline (same backbone, no AM flow, no temporal units)"
        );
        let baseline = config.frame_only_baseline()?;
        let history = run_one(
            &baseline,
            &run_dir.join("frame-only-baseline"),
            false,
            device,
        )?;
        report.push(("frame-only baseline", history));
    }
    for (name, history) in &report {
        print_summary(name, history);
    }
    tracing::info!(
        "done in {:.1}s; results in {}",
        started.elapsed().as_secs_f64(),
        run_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Clips of each split decoded by `--plan`.
const PLAN_PROBES: usize = 4;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// `--plan`: the dry run's report, a summary on stderr and JSON on stdout.
fn print_plan(config: &TrainConfig, device: &[Device]) -> Result<ExitCode> {
    let first = device.first().context("no device")?;
    let p = amflow_train::plan::plan(config, first, PLAN_PROBES)?;
    for (name, split) in [("train", &p.train), ("validation", &p.val)] {
        eprintln!(
            "{name}: {} clips, {} classes; {} of {} probed clips decoded",
            split.clips,
            split.classes.len(),
            split.probed - split.probe_errors.len(),
            split.probed
        );
        for e in &split.probe_errors {
            eprintln!("  {e}");
        }
    }
    eprintln!(
        "model: {} trainable + {} frozen parameters, {:.2} GFLOPs per clip ({} x {}x{})",
        p.trainable_params,
        p.frozen_params,
        p.flops_per_clip as f64 / 1e9,
        p.model.num_frames,
        p.model.image_size[0],
        p.model.image_size[1]
    );
    eprintln!(
        "schedule: {} steps per epoch x {} epochs, micro-batch {}",
        p.steps_per_epoch, p.epochs, p.batch_size
    );
    eprintln!(
        "memory per device (estimate): {:.0} MiB = weights {:.0} + gradients and AdamW {:.0} + \
         activations {:.0}",
        mib(p.memory.total()),
        mib(p.memory.weights),
        mib(p.memory.optimizer),
        mib(p.memory.activations)
    );
    let mut json = serde_json::to_value(&p)?;
    json["model"] = toml::from_str::<toml::Value>(&p.model.to_toml())
        .map(|v| serde_json::to_value(v).unwrap_or_default())
        .unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&json)?);
    let failed = p.train.probe_errors.len() + p.val.probe_errors.len();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(name: &str, history: &[EpochRecord]) {
    let best = history.iter().map(|r| r.val_top1).fold(0.0, f64::max);
    if let Some(last) = history.last() {
        println!(
            "{name:<20} val top-1 {:.3} (best {best:.3})  top-5 {:.3}  mean class {:.3}  after {} epochs",
            last.val_top1,
            last.val_top5,
            last.val_mean_class_accuracy,
            history.len()
        );
    }
}
