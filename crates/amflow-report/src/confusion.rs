//! Confusion matrices: building one from `(true, predicted)` pairs, a CSV writer
//! and a PNG heat map. Accuracy metrics live in `amflow-train` (`metrics`), not here.
//!
//! Convention (as in scikit-learn's `confusion_matrix`): `cm[i][j]` counts
//! samples whose true class is `i` and predicted class is `j`; rows are true
//! classes, columns predictions. The CSV follows RFC 4180 (comma separated,
//! fields with commas, quotes or line breaks quoted, `"` doubled), first row
//! `true\predicted` then the class names, then one row per true class. The heat
//! map colours each cell by its row-normalised value (the per-class recall
//! view, so rare classes are as visible as frequent ones) on a white-to-blue
//! scale and prints the raw count when it fits.

use std::path::Path;

use crate::error::{ReportError, Result};
use crate::font::{
    draw_text, draw_text_centered, draw_text_vertical, draw_text_vertical_centered, text_height,
    text_width, truncate, INK,
};
use crate::image::{Rgb, RgbImage};

/// Builds an `n x n` confusion matrix from `(true, predicted)` class pairs.
pub fn confusion_from_pairs(num_classes: usize, pairs: &[(usize, usize)]) -> Result<Vec<Vec<u64>>> {
    let mut cm = vec![vec![0u64; num_classes]; num_classes];
    for &(t, p) in pairs {
        if t >= num_classes || p >= num_classes {
            return Err(ReportError::invalid(format!(
                "pair ({t}, {p}) outside {num_classes} classes"
            )));
        }
        cm[t][p] += 1;
    }
    Ok(cm)
}

fn check_square(cm: &[Vec<u64>], class_names: &[String]) -> Result<usize> {
    let n = cm.len();
    if n == 0 {
        return Err(ReportError::invalid("confusion matrix is empty"));
    }
    if let Some((i, row)) = cm.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(ReportError::invalid(format!(
            "confusion matrix is not square: row {i} has {} entries, expected {n}",
            row.len()
        )));
    }
    if class_names.len() != n {
        return Err(ReportError::invalid(format!(
            "{} class names for a {n}x{n} confusion matrix",
            class_names.len()
        )));
    }
    Ok(n)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The confusion matrix as CSV text (see the module docs for the layout).
pub fn confusion_csv(cm: &[Vec<u64>], class_names: &[String]) -> Result<String> {
    check_square(cm, class_names)?;
    let mut out = String::from("true\\predicted");
    for name in class_names {
        out.push(',');
        out.push_str(&csv_field(name));
    }
    out.push('\n');
    for (name, row) in class_names.iter().zip(cm) {
        out.push_str(&csv_field(name));
        for c in row {
            out.push(',');
            out.push_str(&c.to_string());
        }
        out.push('\n');
    }
    Ok(out)
}

/// Writes the confusion matrix as a CSV file at `path`.
pub fn write_confusion_csv(
    path: impl AsRef<Path>,
    cm: &[Vec<u64>],
    class_names: &[String],
) -> Result<()> {
    crate::write_file(path.as_ref(), confusion_csv(cm, class_names)?.as_bytes())
}

/// Heat-map colour for `v` in 0..=1: white to dark blue.
pub fn heat_color(v: f64) -> Rgb {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lo = [247.0, 251.0, 255.0];
    let hi = [8.0, 48.0, 107.0];
    let mix = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    [mix(lo[0], hi[0]), mix(lo[1], hi[1]), mix(lo[2], hi[2])]
}

/// Width in pixels of the colour scale drawn below the grid.
const SCALE_W: usize = 120;
/// Caption printed right of the colour scale.
const SCALE_CAPTION: &str = "0..1 of row (numbers: counts)";

/// Longest class name drawn, in characters; longer names end in `.`.
pub const MAX_LABEL_CHARS: usize = 14;

/// Renders the confusion matrix as a heat map with class names on both axes.
///
/// Cells are between 3 and 48 pixels, chosen so the grid is about 700 pixels
/// wide; names are drawn when cells are at least 8 pixels, counts when they fit
/// inside the cell.
pub fn render_confusion(cm: &[Vec<u64>], class_names: &[String], title: &str) -> Result<RgbImage> {
    let n = check_square(cm, class_names)?;
    let cell = (700 / n).clamp(3, 48);
    let grid = cell * n;
    let th = text_height(1);
    let show_names = cell > th;
    let names: Vec<String> = class_names
        .iter()
        .map(|s| truncate(s, MAX_LABEL_CHARS))
        .collect();
    let name_w = if show_names {
        names.iter().map(|s| text_width(s, 1)).max().unwrap_or(0)
    } else {
        0
    };
    let title_s = 2;
    let title_h = if title.is_empty() {
        0
    } else {
        text_height(title_s) + 10
    };
    let left = 10 + th + 8 + name_w + 6;
    let top = 10 + title_h + th + 8 + name_w + 6;
    let legend_h = 40;
    // Wide enough for the grid and for the colour scale with its caption.
    let scale_w = SCALE_W + 8 + text_width(SCALE_CAPTION, 1) + 10;
    let width = (left + grid + 20).max(left + scale_w).max(260);
    let height = top + grid + legend_h;
    let mut img = RgbImage::filled(width, height, [255, 255, 255]);

    let t = truncate(title, width / (6 * title_s));
    draw_text_centered(&mut img, 0, width, 10, &t, INK, title_s);
    // Axis captions.
    let cap_y = 10 + title_h;
    draw_text_centered(&mut img, left, grid, cap_y, "predicted", INK, 1);
    draw_text_vertical_centered(&mut img, 10, top, grid, "true", INK, 1);

    // Cells.
    for (i, row) in cm.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (j, &c) in row.iter().enumerate() {
            let v = if total > 0 {
                c as f64 / total as f64
            } else {
                0.0
            };
            let color = heat_color(v);
            let (x, y) = ((left + j * cell) as i64, (top + i * cell) as i64);
            img.fill_rect(x, y, cell, cell, color);
            let label = c.to_string();
            let lw = text_width(&label, 1);
            if cell >= th + 3 && lw + 2 <= cell {
                let ink = if v > 0.5 { [255, 255, 255] } else { INK };
                draw_text(
                    &mut img,
                    x + ((cell - lw) / 2) as i64,
                    y + ((cell - th) / 2) as i64,
                    &label,
                    ink,
                    1,
                );
            }
        }
    }
    img.stroke_rect(
        left as i64 - 1,
        top as i64 - 1,
        grid + 2,
        grid + 2,
        [120, 120, 120],
    );

    // Class names: rows on the left (right-aligned), columns on top (vertical).
    if show_names {
        for (k, name) in names.iter().enumerate() {
            let w = text_width(name, 1) as i64;
            let c = (k * cell + (cell - th) / 2) as i64;
            draw_text(&mut img, left as i64 - 6 - w, top as i64 + c, name, INK, 1);
            draw_text_vertical(&mut img, left as i64 + c, top as i64 - 6 - w, name, INK, 1);
        }
    }

    // Colour scale.
    let ly = (top + grid + 14) as i64;
    let lx = left as i64;
    let bar_w = SCALE_W;
    for k in 0..bar_w {
        img.fill_rect(
            lx + k as i64,
            ly,
            1,
            10,
            heat_color(k as f64 / (bar_w - 1) as f64),
        );
    }
    img.stroke_rect(lx - 1, ly - 1, bar_w + 2, 12, [120, 120, 120]);
    draw_text(
        &mut img,
        lx + bar_w as i64 + 8,
        ly + 2,
        SCALE_CAPTION,
        INK,
        1,
    );
    Ok(img)
}

/// Renders the heat map (see [`render_confusion`]) and saves it as PNG.
pub fn save_confusion_png(
    path: impl AsRef<Path>,
    cm: &[Vec<u64>],
    class_names: &[String],
    title: &str,
) -> Result<()> {
    render_confusion(cm, class_names, title)?.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("class_{i}")).collect()
    }

    #[test]
    fn pairs_count_into_true_row_predicted_column() {
        let cm = confusion_from_pairs(3, &[(0, 0), (0, 1), (2, 2), (2, 2)]).unwrap();
        assert_eq!(cm, vec![vec![1, 1, 0], vec![0, 0, 0], vec![0, 0, 2]]);
        // (true 1, predicted 0) lands in row 1, not row 0: the axes are not swapped.
        assert_eq!(
            confusion_from_pairs(2, &[(1, 0)]).unwrap(),
            vec![vec![0, 0], vec![1, 0]]
        );
        assert!(confusion_from_pairs(2, &[(0, 2)]).is_err());
        assert!(confusion_from_pairs(2, &[(2, 0)]).is_err());
    }

    #[test]
    fn csv_layout_and_quoting() {
        let cm = vec![vec![3, 1], vec![0, 4]];
        let names = vec!["walk".to_string(), "push, \"hard\"".to_string()];
        let csv = confusion_csv(&cm, &names).unwrap();
        assert_eq!(
            csv,
            "true\\predicted,walk,\"push, \"\"hard\"\"\"\nwalk,3,1\n\"push, \"\"hard\"\"\",0,4\n"
        );
        assert!(confusion_csv(&[vec![1, 2]], &names).is_err());
        assert!(confusion_csv(&cm, &names[..1]).is_err());
        assert!(confusion_csv(&[], &[]).is_err());
    }

    #[test]
    fn heat_map_cells_follow_the_size_rule() {
        for n in [1, 2, 5, 30, 174, 400] {
            // A perfect classifier: every diagonal cell is 1 of its row (darkest).
            let cm: Vec<Vec<u64>> = (0..n)
                .map(|i| (0..n).map(|j| u64::from(i == j) * 7).collect())
                .collect();
            let img = render_confusion(&cm, &names(n), "test").unwrap();
            assert_eq!(img.data.len(), img.width * img.height * 3);
            let cell = (700 / n).clamp(3, 48);
            assert!(img.width > n * cell && img.height > n * cell);
            let dark = img
                .data
                .chunks_exact(3)
                .filter(|p| *p == heat_color(1.0))
                .count();
            // All diagonal cells, less the white count digits, plus the scale's dark end.
            let cells = n * cell * cell;
            assert!(
                dark >= cells * 6 / 10 && dark <= cells + 60,
                "{n} classes: {dark} dark pixels for {n} cells of {cell} px"
            );
        }
        assert!(render_confusion(&[vec![1]], &names(2), "").is_err());
        assert!(render_confusion(&[vec![1, 0]], &names(1), "").is_err());
    }

    #[test]
    fn heat_colour_runs_from_white_to_dark_blue() {
        assert_eq!(heat_color(0.0), [247, 251, 255]);
        assert_eq!(heat_color(1.0), [8, 48, 107]);
        assert_eq!(heat_color(2.0), heat_color(1.0));
        assert_eq!(heat_color(f64::NAN), heat_color(0.0));
        let mid = heat_color(0.5);
        assert_eq!(mid, [128, 150, 181]);
    }
}
