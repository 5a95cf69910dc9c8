//! Curve plots, checked on the decoded PNG: the series' pixels lie where the
//! data map (direction, axis range with its 5% y padding), tick labels and
//! grid lines sit at the tick values, title, axis labels and legend names are
//! the given strings at their places, the legend takes a free corner, NaN and
//! infinite points break the line, and panels land in their grid cells.

mod common;

use amflow_report::font::{text_height, text_width, INK};
use amflow_report::plot::{series_color, LEGEND_BORDER, NO_DATA};
use amflow_report::{plot_curves, plot_panels, Panel, RgbImage, Series};
use common::{crop, find_text, find_text_once, load_png, pixels_of, plot_frame, rotate_cw};

const GRID: [u8; 3] = [225, 225, 225];

/// Plots one panel through the PNG file and decodes it again.
fn plot(series: &[Series], x_label: &str, y_label: &str) -> RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plot.png");
    plot_curves(&path, "Loss", series, x_label, y_label).unwrap();
    let img = load_png(&path);
    assert_eq!((img.width, img.height), (800, 500));
    img
}

/// Maps data to pixels the way the plot must: x range = data range, y range =
/// data range padded by 5% of it on both sides, y growing upwards.
struct Axes {
    frame: (usize, usize, usize, usize),
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn new(img: &RgbImage, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Self {
        let pad = (y1 - y0) * 0.05;
        Axes {
            frame: plot_frame(img),
            x: (x0, x1),
            y: (y0 - pad, y1 + pad),
        }
    }
    fn px(&self, x: f64) -> f64 {
        let (l, _, r, _) = self.frame;
        l as f64 + (x - self.x.0) / (self.x.1 - self.x.0) * (r - l) as f64
    }
    fn py(&self, y: f64) -> f64 {
        let (_, t, _, b) = self.frame;
        t as f64 + (self.y.1 - y) / (self.y.1 - self.y.0) * (b - t) as f64
    }
}

/// Mean row of the pixels of `color` in column `x`, if any.
fn column_mean(img: &RgbImage, color: [u8; 3], x: usize) -> Option<f64> {
    let ys: Vec<usize> = (0..img.height)
        .filter(|&y| img.get(x, y) == Some(color))
        .collect();
    (!ys.is_empty()).then(|| ys.iter().sum::<usize>() as f64 / ys.len() as f64)
}

fn line(name: &str, f: impl Fn(f64) -> f64) -> Series {
    Series::new(name, (0..=10).map(|i| (i as f64, f(i as f64))).collect())
}

#[test]
fn rising_curve_is_drawn_where_its_points_map() {
    let img = plot(&[line("", |x| x)], "step", "loss");
    let axes = Axes::new(&img, (0.0, 10.0), (0.0, 10.0));
    let (l, t, r, b) = axes.frame;
    let c = series_color(0);
    let pixels = pixels_of(&img, c);
    // The 2-px pen reaches one pixel right of / below the mapped point.
    assert!(pixels
        .iter()
        .all(|&(x, y)| (l..=r + 1).contains(&x) && (t..=b + 1).contains(&y)));
    for x in l..=r {
        let mean = column_mean(&img, c, x).unwrap_or_else(|| panic!("column {x} has no curve"));
        let v = (x - l) as f64 / (r - l) as f64 * 10.0;
        let expected = axes.py(v) + 0.5;
        assert!(
            (mean - expected).abs() <= 2.0,
            "column {x}: curve at row {mean}, data maps to {expected}"
        );
    }
    // Higher values are higher up: the right end is near the top, the left near the bottom.
    let left = column_mean(&img, c, l + 2).unwrap();
    let right = column_mean(&img, c, r - 2).unwrap();
    assert!(left - right > 0.8 * (b - t) as f64, "{left} vs {right}");
}

#[test]
fn falling_curve_gives_a_different_picture_going_down() {
    let up = plot(&[line("", |x| x)], "step", "loss");
    let down = plot(&[line("", |x| 10.0 - x)], "step", "loss");
    assert_ne!(up, down);
    let (l, _, r, _) = plot_frame(&down);
    let c = series_color(0);
    assert!(column_mean(&down, c, l + 2).unwrap() < column_mean(&down, c, r - 2).unwrap());
}

#[test]
fn tick_labels_and_grid_lines_sit_at_nice_values() {
    // y 0..10 padded to -0.5..10.5: ticks every 2; x 0..10: ticks every 1.
    let img = plot(&[line("", |x| x)], "step", "loss");
    let axes = Axes::new(&img, (0.0, 10.0), (0.0, 10.0));
    let (l, t, r, b) = axes.frame;
    for v in [0, 2, 4, 6, 8, 10] {
        let label = v.to_string();
        let py = axes.py(v as f64).round() as usize;
        let at = (l - 8 - text_width(&label, 1), py - text_height(1) / 2);
        assert!(
            find_text(&img, &label, INK, 1).contains(&at),
            "y tick {label} not at {at:?}"
        );
        let grid = (l + 1..r).filter(|&x| img.get(x, py) == Some(GRID)).count();
        assert!(grid > (r - l) / 2, "no grid line at y = {v} (row {py})");
        assert!(
            (l - 5..l).all(|x| img.get(x, py) == Some([0, 0, 0])),
            "tick mark"
        );
    }
    // No y tick at odd values: 5 is not labelled left of the frame.
    let py5 = axes.py(5.0).round() as usize;
    assert!(!find_text(&img, "5", INK, 1).contains(&(l - 8 - 5, py5 - 3)));
    for v in 0..=10 {
        let label = v.to_string();
        let px = axes.px(v as f64).round() as usize;
        let at = (px - text_width(&label, 1) / 2, b + 9);
        assert!(
            find_text(&img, &label, INK, 1).contains(&at),
            "x tick {label} not at {at:?}"
        );
        // Grid lines at the ends are hidden under the frame.
        let grid = (t + 1..b).filter(|&y| img.get(px, y) == Some(GRID)).count();
        assert!(
            v == 0 || v == 10 || grid > (b - t) / 2,
            "no grid line at x = {v}"
        );
    }
}

#[test]
fn title_axis_labels_and_legend_are_the_given_strings() {
    let falling = [
        line("train loss", |x| 2.0 - 0.2 * x),
        line("val loss", |x| 2.2 - 0.19 * x),
    ];
    let img = plot(&falling, "step", "cross-entropy");
    let (l, t, r, b) = plot_frame(&img);
    let (tx, ty) = find_text_once(&img, "Loss", INK, 2);
    assert_eq!((tx, ty), ((800 - text_width("Loss", 2)) / 2, 12));
    let (sx, sy) = find_text_once(&img, "step", INK, 1);
    assert_eq!(sx, l + (r - l + 1 - text_width("step", 1)) / 2);
    assert!(sy > b + 9 + text_height(1), "x label below the tick labels");
    // The y label reads bottom to top at x = 10: horizontal again after a clockwise turn.
    let turned = rotate_cw(&img);
    let (_, ly) = find_text_once(&turned, "cross-entropy", INK, 1);
    assert_eq!(ly, 10);

    // Both curves fall, so the upper-right corner is free and holds the legend.
    let (nx, ny) = find_text_once(&img, "train loss", INK, 1);
    assert!(nx > (l + r) / 2 && ny < (t + b) / 2, "legend at {nx},{ny}");
    assert_eq!(find_text_once(&img, "val loss", INK, 1), (nx, ny + 13));
    for (k, y0) in [ny, ny + 13].into_iter().enumerate() {
        // An 18x3 swatch of the series' colour left of its name.
        for x in nx - 24..nx - 6 {
            for y in y0 + 2..y0 + 5 {
                assert_eq!(
                    img.get(x, y),
                    Some(series_color(k)),
                    "swatch {k} at {x},{y}"
                );
            }
        }
    }
    assert_eq!(img.get(nx - 32, ny - 6), Some(LEGEND_BORDER));

    // Rising curves leave the upper-left corner free instead.
    let rising = plot(&[line("up", |x| x)], "step", "loss");
    let (ux, uy) = find_text_once(&rising, "up", INK, 1);
    let (l, t, r, b) = plot_frame(&rising);
    assert!(ux < (l + r) / 2 && uy < (t + b) / 2, "legend at {ux},{uy}");
}

#[test]
fn unnamed_series_get_no_legend_and_names_change_only_the_legend() {
    let ink_inside = |img: &RgbImage| {
        let (l, t, r, b) = plot_frame(img);
        pixels_of(img, INK)
            .iter()
            .filter(|&&(x, y)| x > l && x < r && y > t && y < b)
            .count()
    };
    let unnamed = plot(&[line("", |x| x)], "step", "loss");
    assert_eq!(ink_inside(&unnamed), 0);
    let a = plot(&[line("alpha", |x| x)], "step", "loss");
    let b = plot(&[line("omega", |x| x)], "step", "loss");
    assert!(ink_inside(&a) > 0);
    assert_ne!(a, b);
    let (ax, ay) = find_text_once(&a, "alpha", INK, 1);
    assert_eq!(find_text_once(&b, "omega", INK, 1), (ax, ay));
    // Outside the legend box the pictures are the same.
    let (w, h) = (text_width("alpha", 1) + 40, text_height(1) + 12);
    for (x, y) in (0..800).flat_map(|x| (0..500).map(move |y| (x, y))) {
        let in_box = x + 32 >= ax && x < ax - 32 + w && y + 6 >= ay && y < ay - 6 + h;
        if !in_box {
            assert_eq!(a.get(x, y), b.get(x, y), "({x}, {y}) outside the legend");
        }
    }
}

#[test]
fn series_are_coloured_in_order_and_keep_their_own_values() {
    // Unnamed, so no legend covers part of a line.
    let img = plot(&[line("", |_| 5.0), line("", |_| 1.0)], "", "");
    let high = pixels_of(&img, series_color(0));
    let low = pixels_of(&img, series_color(1));
    let axes = Axes::new(&img, (0.0, 10.0), (1.0, 5.0));
    let (hy, ly) = (axes.py(5.0), axes.py(1.0));
    assert!(high.len() > 1000 && low.len() > 1000);
    assert!(high.iter().all(|&(_, y)| (y as f64 - hy).abs() <= 2.0));
    assert!(low.iter().all(|&(_, y)| (y as f64 - ly).abs() <= 2.0));
    // Twelve series: the palette wraps round darker, every colour distinct and drawn.
    let many: Vec<Series> = (0..12).map(|i| line("", move |x| x + i as f64)).collect();
    let img = plot(&many, "", "");
    for i in 0..12 {
        assert!(pixels_of(&img, series_color(i)).len() > 100, "series {i}");
    }
}

#[test]
fn non_finite_points_break_the_line_and_stay_out_of_the_range() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let s = Series::new(
            "",
            vec![(0.0, 0.0), (1.0, 1.0), (2.0, bad), (3.0, 3.0), (4.0, 4.0)],
        );
        let img = plot(&[s], "x", "y");
        let axes = Axes::new(&img, (0.0, 4.0), (0.0, 4.0));
        let c = series_color(0);
        let (p1, p3) = (axes.px(1.0) as usize, axes.px(3.0) as usize);
        for x in p1 + 3..p3 - 2 {
            assert_eq!(
                column_mean(&img, c, x),
                None,
                "{bad}: column {x} drawn in the gap"
            );
        }
        for v in [0.5, 3.5] {
            let x = axes.px(v).round() as usize;
            let mean = column_mean(&img, c, x).expect("segment next to the gap drawn");
            assert!((mean - axes.py(v) - 0.5).abs() <= 2.0, "{bad}: {mean}");
        }
    }
}

#[test]
fn panels_without_finite_data_say_no_data() {
    let msg_at = |img: &RgbImage| find_text(img, "no data", NO_DATA, 2);
    let nan = Series::new("", vec![(0.0, f64::NAN), (f64::NAN, 1.0)]);
    for series in [vec![], vec![Series::new("", vec![])], vec![nan]] {
        let img = plot(&series, "x", "y");
        let (l, t, r, b) = plot_frame(&img);
        let hits = msg_at(&img);
        assert_eq!(hits.len(), 1, "{series:?}");
        let (x, y) = hits[0];
        assert_eq!(x, l + (r - l + 1 - text_width("no data", 2)) / 2);
        assert!(y > t && y < b);
        // The empty axes span 0..1.
        assert!(!find_text(&img, "1.0", INK, 1).is_empty());
        assert!(pixels_of(&img, series_color(0)).is_empty());
    }
    assert!(msg_at(&plot(&[line("", |x| x)], "x", "y")).is_empty());
}

#[test]
fn single_points_get_markers_and_constant_series_a_middle_line() {
    let img = plot(&[Series::new("", vec![(3.0, 4.0)])], "x", "y");
    let (l, t, r, b) = plot_frame(&img);
    let (cx, cy) = ((l + r) as f64 / 2.0, (t + b) as f64 / 2.0);
    let marker = pixels_of(&img, series_color(0));
    assert_eq!(marker.len(), 25);
    assert!(marker
        .iter()
        .all(|&(x, y)| (x as f64 - cx).abs() <= 3.0 && (y as f64 - cy).abs() <= 3.0));

    let img = plot(&[Series::from_values("", &[1.0; 10])], "x", "y");
    let (l, t, r, b) = plot_frame(&img);
    let flat = pixels_of(&img, series_color(0));
    assert!(flat.len() >= 2 * (r - l));
    let mid = (t + b) as f64 / 2.0;
    assert!(flat.iter().all(|&(_, y)| (y as f64 - mid).abs() <= 2.0));
}

#[test]
fn panels_fill_their_grid_cells_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let acc = Panel::new(
        "Accuracy",
        "epoch",
        "top-1",
        vec![
            line("a", |x| x),
            line("b", |x| x * 0.5),
            line("c", |x| x * 0.25),
        ],
    );
    let loss = Panel::new("Loss", "step", "loss", vec![line("train", |x| 10.0 - x)]);
    plot_panels(&path, &[loss.clone(), acc, loss], 2).unwrap();
    let img = load_png(&path);
    assert_eq!((img.width, img.height), (1600, 1000));
    let cell = |col: usize, row: usize| crop(&img, col * 800, row * 500, 800, 500);
    let ((x0, _), (x1, _), (x2, y2)) = (
        find_text_once(&cell(0, 0), "Loss", INK, 2),
        find_text_once(&cell(1, 0), "Accuracy", INK, 2),
        find_text_once(&cell(0, 1), "Loss", INK, 2),
    );
    assert_eq!(x0, (800 - text_width("Loss", 2)) / 2);
    assert_eq!(x1, (800 - text_width("Accuracy", 2)) / 2);
    assert_eq!((x2, y2), (x0, 12));
    // The third series exists only in the accuracy panel (top right).
    let third = pixels_of(&img, series_color(2));
    assert!(!third.is_empty());
    assert!(third.iter().all(|&(x, y)| x >= 800 && y < 500));
    // The unused last cell stays white.
    assert!(cell(1, 1).data.iter().all(|&v| v == 255));
    // Column count 0 means one row.
    plot_panels(&path, &[line_panel(), line_panel(), line_panel()], 0).unwrap();
    assert_eq!(load_png(&path).width, 2400);
    assert!(plot_panels(&path, &[], 2).is_err());
}

fn line_panel() -> Panel {
    Panel::new("p", "x", "y", vec![line("s", |x| x)])
}

#[test]
fn degenerate_inputs_give_a_framed_picture_not_a_panic() {
    let extreme = Series::new(
        "extreme",
        vec![
            (-f64::MAX, -f64::MAX),
            (0.0, 0.0),
            (f64::MAX, f64::MAX),
            (1e-320, 5e-324),
        ],
    );
    let tiny = Series::new("tiny", vec![(0.0, 1e-12), (1.0, 2e-12), (2.0, 1.5e-12)]);
    let huge = Series::new("huge", vec![(0.0, 1.0), (1.0, 1e300)]);
    for s in [extreme, tiny, huge] {
        let img = plot(std::slice::from_ref(&s), "x", "y");
        plot_frame(&img);
        assert!(
            !find_text(&img, &s.name, INK, 1).is_empty(),
            "{} legend",
            s.name
        );
    }
    // Too many entries for the plot area: the legend is left out, not cut.
    let long = "a very long title that certainly does not fit into the panel width at all";
    let many: Vec<Series> = (0..40)
        .map(|i| Series::from_values(format!("series number {i}"), &[i as f64, 1.0]))
        .collect();
    let img = plot(&many, long, long);
    assert!(find_text(&img, "series number 0", INK, 1).is_empty());
    assert!(pixels_of(&img, series_color(39)).len() > 10);
    assert!(amflow_report::plot::render_panel(&Panel::default(), 159, 400).is_err());
    assert!(amflow_report::plot::render_panel(&Panel::default(), 400, 119).is_err());
    assert!(amflow_report::plot::render_panel(&Panel::default(), 160, 120).is_ok());
}
