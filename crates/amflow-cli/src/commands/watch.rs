//! `amflow watch SOURCE`: a live source classified every `--every` of source time on its
//! latest `--window` ([`amflow_video::live::LiveWindows`]: decoded on a thread, only the
//! latest window kept, so a slow model drops windows instead of falling behind). One JSON line
//! per prediction on stdout: the window's source times, the lag (`lag_s`: from the decode of
//! the window's last frame to the line), how far behind real time (`behind_s`: wall time since
//! frame 0 was decoded minus the source time of the window's last frame; for a real-time
//! source it stays near `lag_s` when nothing falls behind), the windows dropped so far, the
//! top-k classes, and which connection (0, then 1, 2, ... after reconnects) it came from. Ctrl-C
//! ends it cleanly (exit 0); a source that sends no frame for `--stall-timeout` seconds, or
//! fails, is an error, unless `--reconnect N` opens it again (up to `N` times in a row).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amflow_train::checkpoint;
use amflow_video::live::LiveWindows;
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use super::timeline::classify;
use super::video_input::contract;
use crate::cli::WatchArgs;

/// Runs `amflow watch`.
pub fn run(args: &WatchArgs, device: &Device) -> Result<ExitCode> {
    if !(args.stall_timeout.is_finite() && args.stall_timeout > 0.0) {
        bail!("--stall-timeout must be a positive number of seconds");
    }
    if !(args.reconnect_delay.is_finite() && args.reconnect_delay >= 0.0) {
        bail!("--reconnect-delay must be a number of seconds");
    }
    if args.reconnect > 0 && args.source == "-" {
        bail!("--reconnect cannot reopen stdin (`-`)");
    }
    let trained = checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let input = contract(&trained, args.input.as_deref(), &args.checkpoint)?;
    let mut clips = input.clips.clone();
    clips.split = amflow_video::Split::Test;
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())
        .context("installing the Ctrl-C handler")?;
    let open = || {
        LiveWindows::start(
            &args.source,
            args.window,
            args.every,
            &clips,
            Duration::from_secs_f64(args.stall_timeout),
        )
    };
    let mut live = open();
    let stop = || interrupted.load(Ordering::Relaxed);
    let mut predictions = 0usize;
    let mut dropped = 0usize;
    let (mut connection, mut failures) = (0u32, 0u32);
    let mut frames = 0usize;
    loop {
        let w = match live.next(&stop) {
            Ok(Some(w)) => w,
            Ok(None) => break,
            Err(e) if failures < args.reconnect && !stop() => {
                failures += 1;
                connection += 1;
                tracing::warn!(
                    "{}: {e}; reconnecting in {:.1} s ({failures} of {})",
                    args.source,
                    args.reconnect_delay,
                    args.reconnect
                );
                frames += live.frames();
                std::thread::sleep(Duration::from_secs_f64(args.reconnect_delay));
                live = open();
                continue;
            }
            Err(e) if failures > 0 => {
                return Err(e)
                    .with_context(|| format!("{} after {failures} reconnects", args.source))
            }
            Err(e) => return Err(e.into()),
        };
        failures = 0;
        let top = classify(&trained.model, &w.clips, args.top_k, device)?;
        let items: Vec<serde_json::Value> = top
            .iter()
            .map(|&(k, p)| serde_json::json!({ "label": trained.classes[k], "probability": p }))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "source": args.source,
                "window": w.clips.index,
                "source_start_s": w.clips.start_s,
                "source_end_s": w.clips.end_s,
                "lag_s": w.arrived.elapsed().as_secs_f64(),
                "behind_s": w.first_frame.elapsed().as_secs_f64() - w.last_frame_s,
                "dropped": w.dropped,
                "connection": connection,
                "top": items,
            })
        );
        predictions += 1;
        dropped = w.dropped;
    }
    tracing::info!(
        "{}: {} frames, {predictions} predictions, {dropped} windows dropped, {connection} \
         reconnects{}",
        args.source,
        frames + live.frames(),
        if stop() { " (interrupted)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
