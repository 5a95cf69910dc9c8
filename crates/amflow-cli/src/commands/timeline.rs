//! `amflow predict --timeline`: a clip window slid over one whole video
//! ([`amflow_video::timeline::read_windows`]: one straight decode, at most a window of frames
//! held), each window's clips made as the checkpoint's input contract says and classified like
//! `amflow predict` (softmax averaged over the test views). One JSON line per window on stdout
//! as soon as it is classified; with `--out`, `timeline.csv` (one row per window) and
//! `timeline.png` (the top classes' probabilities over time).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use amflow::{AmFlowModel, HostTensor};
use amflow_report::{Panel, Series};
use amflow_train::checkpoint::{InputContract, Trained};
use amflow_video::timeline::{read_windows, TimelineSummary, WindowClips};
use amflow_video::DataError;
use anyhow::{bail, Context, Result};
use burn::prelude::*;

use super::predict::scores;
use crate::cli::PredictArgs;

/// Classes drawn in the chart at most (those reaching the highest probabilities).
const MAX_CHART_CLASSES: usize = 8;

/// One classified window: its time span and top-k `(class, probability)`.
struct Row {
    index: usize,
    start_s: f64,
    end_s: f64,
    top: Vec<(usize, f32)>,
}

/// Runs the timeline of `video`.
pub fn run(
    args: &PredictArgs,
    trained: &Trained,
    input: &InputContract,
    video: &Path,
    device: &Device,
) -> Result<()> {
    if video.is_dir() {
        bail!(
            "{}: a timeline needs a video file (a frame folder has no frame rate)",
            video.display()
        );
    }
    let mut clips_config = input.clips.clone();
    clips_config.split = amflow_video::Split::Test;
    let model = &trained.model;
    let mut rows: Vec<Row> = Vec::new();
    // The model's error, when it stopped the decode.
    let mut failure: Option<anyhow::Error> = None;
    let started = Instant::now();
    let summary = read_windows(
        video,
        args.window,
        args.stride,
        &clips_config,
        &mut |w: WindowClips| match classify(model, &w, args.top_k, device) {
            Ok(top) => {
                let row = Row {
                    index: w.index,
                    start_s: w.start_s,
                    end_s: w.end_s,
                    top,
                };
                println!("{}", json_line(video, &row, &trained.classes));
                rows.push(row);
                Ok(())
            }
            Err(e) => {
                failure = Some(e);
                Err(DataError::Config("stopped by the model".into()))
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let summary: TimelineSummary = summary?;
    let wall = started.elapsed().as_secs_f64();
    let video_s = if summary.fps > 0.0 {
        summary.frames as f64 / summary.fps
    } else {
        0.0
    };
    tracing::info!(
        "{}: {} windows of {} frames every {} ({} frames, {video_s:.1} s of video) in {wall:.1} s: \
         {:.2} video-seconds per second",
        video.display(),
        summary.windows,
        summary.plan.window,
        summary.plan.stride,
        summary.frames,
        video_s / wall.max(1e-9),
    );
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let csv = out.join("timeline.csv");
        std::fs::write(&csv, csv_text(&rows, &trained.classes, args.top_k))
            .with_context(|| format!("writing {}", csv.display()))?;
        let title = video.file_name().map_or_else(
            || video.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let png = out.join("timeline.png");
        chart(&rows, &trained.classes, &title)?
            .save_png(&png)
            .with_context(|| format!("writing {}", png.display()))?;
    }
    Ok(())
}

/// The top-k classes of one window.
pub(super) fn classify(
    model: &AmFlowModel,
    window: &WindowClips,
    top_k: usize,
    device: &Device,
) -> Result<Vec<(usize, f32)>> {
    let mut views = Vec::with_capacity(window.clips.len());
    for clip in &window.clips {
        let [t, c, h, w] = clip.shape;
        let cfg = &model.config;
        if [h, w] != cfg.image_size || t != cfg.num_frames {
            bail!(
                "the input contract makes clips of {t} frames of {h}x{w}, the model takes {} of \
                 {}x{}",
                cfg.num_frames,
                cfg.image_size[0],
                cfg.image_size[1]
            );
        }
        views.push(HostTensor::new(vec![1, t, c, h, w], clip.normalized())?);
    }
    let probs = scores(model, &views, device)?;
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    Ok(order
        .into_iter()
        .take(top_k)
        .map(|k| (k, probs[k]))
        .collect())
}

fn json_line(video: &Path, row: &Row, classes: &[String]) -> serde_json::Value {
    let top: Vec<serde_json::Value> = row
        .top
        .iter()
        .map(|&(k, p)| serde_json::json!({ "label": classes[k], "probability": p }))
        .collect();
    serde_json::json!({
        "video": video.display().to_string(),
        "window": row.index,
        "start_s": row.start_s,
        "end_s": row.end_s,
        "top": top,
    })
}

/// `window,start_s,end_s,label_1,probability_1,...`: one row per window.
fn csv_text(rows: &[Row], classes: &[String], top_k: usize) -> String {
    let mut text = String::from("window,start_s,end_s");
    let k = top_k.min(classes.len());
    for r in 1..=k {
        let _ = write!(text, ",label_{r},probability_{r}");
    }
    text.push('\n');
    for row in rows {
        let _ = write!(text, "{},{:.4},{:.4}", row.index, row.start_s, row.end_s);
        for &(c, p) in &row.top {
            let _ = write!(text, ",{},{p:.6}", csv_field(&classes[c]));
        }
        text.push('\n');
    }
    text
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The strip chart: per class in some window's top-k (at most [`MAX_CHART_CLASSES`], those
/// reaching the highest probabilities), its probability at each window's centre; a window
/// where the class is not in the top-k breaks its line (the chart shows what the CSV holds).
fn chart(rows: &[Row], classes: &[String], title: &str) -> Result<amflow_report::RgbImage> {
    let mut best: Vec<(usize, f32)> = Vec::new();
    for &(c, p) in rows.iter().flat_map(|r| r.top.iter()) {
        match best.iter_mut().find(|(k, _)| *k == c) {
            Some(b) => b.1 = b.1.max(p),
            None => best.push((c, p)),
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    best.truncate(MAX_CHART_CLASSES);
    let series = best
        .iter()
        .map(|&(c, _)| {
            let points = rows
                .iter()
                .map(|r| {
                    let p = r
                        .top
                        .iter()
                        .find(|(k, _)| *k == c)
                        .map_or(f64::NAN, |&(_, p)| p as f64);
                    ((r.start_s + r.end_s) / 2.0, p)
                })
                .collect();
            Series::new(classes[c].clone(), points)
        })
        .collect();
    let panel = Panel::new(
        format!("{title}: top classes over time"),
        "time (s, window centre)",
        "probability",
        series,
    );
    Ok(amflow_report::render_panel(&panel, 1200, 420)?)
}
