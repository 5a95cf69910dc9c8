//! PNG line plots of training curves: [`plot_curves`] for one panel,
//! [`plot_panels`] for a grid of panels (e.g. loss next to accuracy).
//!
//! Layout follows the usual matplotlib-style line chart: a title above the
//! plot area, a framed plot area with light grid lines at "nice" tick values
//! (1, 2, 5 x 10^k steps, as in Heckbert's "Nice numbers for graph labels",
//! Graphics Gems, 1990), numeric tick labels, axis labels (the y label drawn
//! vertically), and a legend placed in the corner of the plot area that hides
//! the fewest data points. Series colours are the ten-colour "category10"
//! palette, cycled (and darkened) for more than ten series. Text uses the
//! embedded 5x7 font of [`crate::font`].
//!
//! Non-finite points are skipped (the line is broken there). A panel without
//! any finite point is drawn with empty axes and a "no data" note.

use std::path::Path;

use crate::error::{ReportError, Result};
use crate::font::{
    draw_text, draw_text_centered, draw_text_vertical_centered, text_height, text_width, truncate,
    INK as TEXT,
};
use crate::image::{Rgb, RgbImage};

/// Default size of one panel in pixels.
pub const PANEL_W: usize = 800;
/// Default height of one panel in pixels.
pub const PANEL_H: usize = 500;

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
/// Colour of the "no data" note.
pub const NO_DATA: Rgb = [150, 150, 150];
/// Colour of the legend's outline.
pub const LEGEND_BORDER: Rgb = [160, 160, 160];

/// Category10 palette.
const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Colour used for the `i`-th series: the palette, darkened on each wrap-around.
pub fn series_color(i: usize) -> Rgb {
    let base = PALETTE[i % PALETTE.len()];
    let round = (i / PALETTE.len()) as u32;
    let f = |c: u8| (c as u32 * 10 / (10 + 3 * round)) as u8;
    if round == 0 {
        base
    } else {
        [f(base[0]), f(base[1]), f(base[2])]
    }
}

/// One named curve: `(x, y)` points drawn in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in drawing order (usually increasing x, e.g. step or epoch).
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A named series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }

    /// A series from y values at x = 0, 1, 2, ...
    pub fn from_values(name: impl Into<String>, ys: &[f64]) -> Self {
        Series::new(
            name,
            ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect(),
        )
    }
}

/// One chart of a figure: title, axis labels and its curves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    /// Title drawn above the plot area.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Curves, one legend entry each.
    pub series: Vec<Series>,
}

impl Panel {
    /// A panel with the given title, axis labels and curves.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        }
    }
}

/// Renders one panel of `series` and saves it as an 800x500 PNG at `path`.
pub fn plot_curves(
    path: impl AsRef<Path>,
    title: &str,
    series: &[Series],
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    let panel = Panel::new(title, x_label, y_label, series.to_vec());
    render_panel(&panel, PANEL_W, PANEL_H)?.save_png(path)
}

/// Renders `panels` in a grid of `cols` columns (0 means all in one row),
/// each panel 800x500, and saves the figure as a PNG at `path`.
pub fn plot_panels(path: impl AsRef<Path>, panels: &[Panel], cols: usize) -> Result<()> {
    render_panels(panels, cols, PANEL_W, PANEL_H)?.save_png(path)
}

/// Renders `panels` row by row in a grid of `cols` columns (0 means one row)
/// of `panel_w x panel_h` cells. Unused cells of the last row stay white.
pub fn render_panels(
    panels: &[Panel],
    cols: usize,
    panel_w: usize,
    panel_h: usize,
) -> Result<RgbImage> {
    if panels.is_empty() {
        return Err(ReportError::invalid("plot needs at least one panel"));
    }
    let cols = if cols == 0 {
        panels.len()
    } else {
        cols.min(panels.len())
    };
    let rows = panels.len().div_ceil(cols);
    let mut fig = RgbImage::filled(cols * panel_w, rows * panel_h, WHITE);
    for (i, p) in panels.iter().enumerate() {
        let img = render_panel(p, panel_w, panel_h)?;
        fig.blit(
            &img,
            ((i % cols) * panel_w) as i64,
            ((i / cols) * panel_h) as i64,
        );
    }
    Ok(fig)
}

/// Whether both coordinates of a point are finite (only those are drawn).
fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// Pixel-space segments between consecutive finite points of `points`; a
/// non-finite point breaks the line.
fn segments<'a>(
    points: &'a [(f64, f64)],
    to_pixel: impl Fn((f64, f64)) -> (f64, f64) + 'a,
) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + 'a {
    points
        .windows(2)
        .filter(|w| finite(&w[0]) && finite(&w[1]))
        .map(move |w| (to_pixel(w[0]), to_pixel(w[1])))
}

/// Renders a single panel into a `width x height` image (at least 160x120).
pub fn render_panel(panel: &Panel, width: usize, height: usize) -> Result<RgbImage> {
    if width < 160 || height < 120 {
        return Err(ReportError::invalid(format!(
            "panel {width}x{height} too small (minimum 160x120)"
        )));
    }
    let mut img = RgbImage::filled(width, height, WHITE);

    // Data range over finite points.
    let finite_points = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| finite(p))
    };
    let has_data = finite_points().next().is_some();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite_points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !has_data {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (x0, x1) = widen(x0, x1);
    let (y0, y1) = widen(y0, y1);
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);

    let xticks = nice_ticks(x0, x1, (width / 110).clamp(2, 10));
    let yticks = nice_ticks(y0, y1, (height / 70).clamp(2, 10));
    let xlabels: Vec<String> = xticks.iter().map(|v| format_tick(*v, &xticks)).collect();
    let ylabels: Vec<String> = yticks.iter().map(|v| format_tick(*v, &yticks)).collect();
    let ylab_w = ylabels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0);

    // Margins.
    let th = text_height(1);
    let title_scale = 2;
    let top = 12 + text_height(title_scale) + 12;
    let left = 10 + if panel.y_label.is_empty() { 0 } else { th + 10 } + ylab_w + 8;
    let bottom = 8 + th + 10 + if panel.x_label.is_empty() { 0 } else { th + 8 };
    let right = 20;
    let pw = width.saturating_sub(left + right).max(20);
    let ph = height.saturating_sub(top + bottom).max(20);
    let (l, t) = (left as f64, top as f64);
    let to_px = |x: f64| l + (x - x0) / (x1 - x0) * (pw as f64 - 1.0);
    let to_py = |y: f64| t + (y1 - y) / (y1 - y0) * (ph as f64 - 1.0);
    let to_pixel = |(x, y): (f64, f64)| (to_px(x), to_py(y));

    let title = truncate(&panel.title, width / (6 * title_scale));
    draw_text_centered(&mut img, 0, width, 12, &title, TEXT, title_scale);

    // Grid and ticks.
    for (v, label) in xticks.iter().zip(&xlabels) {
        let px = to_px(*v).round() as i64;
        img.fill_rect(px, top as i64, 1, ph, GRID);
        img.fill_rect(px, (top + ph) as i64, 1, 5, BLACK);
        let lw = text_width(label, 1) as i64;
        draw_text(&mut img, px - lw / 2, (top + ph + 8) as i64, label, TEXT, 1);
    }
    for (v, label) in yticks.iter().zip(&ylabels) {
        let py = to_py(*v).round() as i64;
        img.fill_rect(left as i64, py, pw, 1, GRID);
        img.fill_rect(left as i64 - 5, py, 5, 1, BLACK);
        let lw = text_width(label, 1) as i64;
        let (lx, ly) = (left as i64 - 8 - lw, py - th as i64 / 2);
        draw_text(&mut img, lx, ly, label, TEXT, 1);
    }
    img.stroke_rect(left as i64, top as i64, pw, ph, BLACK);

    // Axis labels.
    let x_label = truncate(&panel.x_label, pw / 6);
    draw_text_centered(&mut img, left, pw, top + ph + 8 + th + 8, &x_label, TEXT, 1);
    let y_label = truncate(&panel.y_label, ph / 6);
    draw_text_vertical_centered(&mut img, 10, top, ph, &y_label, TEXT, 1);

    if !has_data {
        draw_text_centered(&mut img, left, pw, top + ph / 2 - 7, "no data", NO_DATA, 2);
    }

    // Curves; a series without any segment (a single point) gets square markers.
    for (i, s) in panel.series.iter().enumerate() {
        let color = series_color(i);
        let mut drawn_segment = false;
        for ((ax, ay), (bx, by)) in segments(&s.points, to_pixel) {
            img.draw_line(ax, ay, bx, by, color, 2);
            drawn_segment = true;
        }
        if !drawn_segment {
            for &p in s.points.iter().filter(|p| finite(p)) {
                let (px, py) = to_pixel(p);
                img.fill_rect(px.round() as i64 - 2, py.round() as i64 - 2, 5, 5, color);
            }
        }
    }

    // Legend, in the corner of the plot area that covers the fewest curve samples.
    let entries: Vec<(String, Rgb)> = panel
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.name.is_empty())
        .map(|(i, s)| (truncate(&s.name, 32), series_color(i)))
        .collect();
    let row_h = th + 6;
    let name_w = entries.iter().map(|(n, _)| text_width(n, 1)).max();
    let (lw, lh) = (
        8 + 18 + 6 + name_w.unwrap_or(0) + 8,
        6 + entries.len() * row_h,
    );
    if entries.is_empty() || lw + 16 > pw || lh + 16 > ph {
        return Ok(img);
    }
    let corners = [
        (left + pw - lw - 8, top + 8),
        (left + 8, top + 8),
        (left + pw - lw - 8, top + ph - lh - 8),
        (left + 8, top + ph - lh - 8),
    ];
    // Sample points along every segment so lines crossing a corner count too.
    let mut samples: Vec<(f64, f64)> = Vec::new();
    for ser in &panel.series {
        for ((ax, ay), (bx, by)) in segments(&ser.points, to_pixel) {
            samples.extend((0..=16).map(|k| {
                let f = k as f64 / 16.0;
                (ax + (bx - ax) * f, ay + (by - ay) * f)
            }));
        }
        samples.extend(
            ser.points
                .iter()
                .filter(|p| finite(p))
                .map(|&p| to_pixel(p)),
        );
    }
    let hidden = |&(cx, cy): &(usize, usize)| {
        let (cx, cy) = (cx as f64 - 4.0, cy as f64 - 4.0);
        let (cw, ch) = ((lw + 8) as f64, (lh + 8) as f64);
        samples
            .iter()
            .filter(|&&(px, py)| px >= cx && px <= cx + cw && py >= cy && py <= cy + ch)
            .count()
    };
    let (lx, ly) = corners
        .iter()
        .copied()
        .min_by_key(hidden)
        .unwrap_or(corners[0]);
    img.fill_rect(lx as i64, ly as i64, lw, lh, WHITE);
    img.stroke_rect(lx as i64, ly as i64, lw, lh, LEGEND_BORDER);
    for (k, (name, color)) in entries.iter().enumerate() {
        let ey = (ly + 6 + k * row_h) as i64;
        img.fill_rect(lx as i64 + 8, ey + th as i64 / 2 - 1, 18, 3, *color);
        draw_text(&mut img, lx as i64 + 8 + 18 + 6, ey, name, TEXT, 1);
    }
    Ok(img)
}

/// Makes a degenerate range usable: equal ends are widened around the value.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let d = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        (lo - d, hi + d)
    }
}

/// "Nice" step (1, 2 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let f = raw / base;
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * base
}

/// Tick values inside `[lo, hi]` at a nice step giving about `target` ticks.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let step = nice_step((hi - lo) / target.max(1) as f64);
    if !(step.is_finite() && step > 0.0) {
        return Vec::new();
    }
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    let n = (last - first).clamp(0.0, 100.0) as usize;
    (0..=n)
        .map(|k| {
            let v = (first + k as f64) * step;
            // Snap values like 0.30000000000000004 and -0.0.
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v
            }
        })
        .filter(|v| *v >= lo - step * 1e-9 && *v <= hi + step * 1e-9)
        .collect()
}

/// Formats tick `v` with as many decimals as the tick spacing needs;
/// very large or very small magnitudes use scientific notation.
pub fn format_tick(v: f64, ticks: &[f64]) -> String {
    let step = if ticks.len() >= 2 {
        (ticks[1] - ticks[0]).abs()
    } else {
        v.abs().max(1.0)
    };
    let mag = ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
    if mag >= 1e6 || (step < 1e-4 && step > 0.0) {
        let s = format!("{v:.1e}");
        return s;
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = nice_ticks(0.0, 1000.0, 5);
        assert_eq!(t, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let t = nice_ticks(-3.2, 7.9, 5);
        assert_eq!(t.first(), Some(&-2.0));
        assert_eq!(t.last(), Some(&6.0));
        assert!(nice_ticks(1.0, 1.0, 5).is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn tick_labels() {
        let t = nice_ticks(0.0, 1.0, 5);
        let l: Vec<String> = t.iter().map(|v| format_tick(*v, &t)).collect();
        assert_eq!(l, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t = nice_ticks(0.0, 5000.0, 5);
        assert_eq!(format_tick(t[1], &t), "1000");
        let t = nice_ticks(0.0, 3e7, 3);
        assert!(format_tick(t[1], &t).contains('e'));
    }

    #[test]
    fn palette_distinct() {
        let cols: Vec<Rgb> = (0..20).map(series_color).collect();
        for i in 0..cols.len() {
            for j in 0..i {
                assert_ne!(cols[i], cols[j]);
            }
        }
    }
}
