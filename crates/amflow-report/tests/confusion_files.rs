//! Confusion-matrix CSV and PNG files written to disk and read back: the CSV
//! text exactly, and in the decoded heat map every cell's colour (row
//! normalised), the counts printed in the cells, the class names on both axes
//! (long ones cut), the captions and the colour scale.

mod common;

use amflow_report::confusion::{heat_color, MAX_LABEL_CHARS};
use amflow_report::font::{text_height, text_width, truncate, INK};
use amflow_report::{save_confusion_png, write_confusion_csv, RgbImage};
use common::{find_text, find_text_once, load_png, pixels_of, rotate_cw};

const BORDER: [u8; 3] = [120, 120, 120];
const WHITE: [u8; 3] = [255, 255, 255];

fn names() -> Vec<String> {
    [
        "walk",
        "a_very_long_class_name_that_is_cut",
        "sit, then \"stand\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn write_png(cm: &[Vec<u64>], names: &[String], title: &str) -> RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval/confusion.png");
    save_confusion_png(&path, cm, names, title).unwrap();
    load_png(&path)
}

/// Top-left pixel of the cell grid, found from its grey outline (one pixel
/// outside the grid): the first row holding at least `grid + 2` outline pixels.
fn grid_origin(img: &RgbImage, grid: usize) -> (usize, usize) {
    let border = pixels_of(img, BORDER);
    let row = (0..img.height)
        .find(|&y| border.iter().filter(|p| p.1 == y).count() >= grid + 2)
        .expect("grid outline");
    let x = border
        .iter()
        .filter(|p| p.1 == row)
        .map(|p| p.0)
        .min()
        .unwrap();
    (x + 1, row + 1)
}

#[test]
fn csv_file_is_the_matrix_with_quoted_names() {
    let dir = tempfile::tempdir().unwrap();
    let cm = vec![vec![5, 0, 1], vec![2, 7, 0], vec![0, 0, 0]];
    let path = dir.path().join("eval/confusion.csv");
    write_confusion_csv(&path, &cm, &names()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "true\\predicted,walk,a_very_long_class_name_that_is_cut,\"sit, then \"\"stand\"\"\"\n\
         walk,5,0,1\n\
         a_very_long_class_name_that_is_cut,2,7,0\n\
         \"sit, then \"\"stand\"\"\",0,0,0\n"
    );
    assert!(write_confusion_csv(&path, &cm, &names()[..2]).is_err());
    assert!(write_confusion_csv(&path, &[vec![1, 2]], &names()[..1]).is_err());
}

#[test]
fn heat_map_cells_counts_names_and_captions() {
    let cm = vec![vec![5, 0, 1], vec![2, 7, 0], vec![0, 0, 0]];
    let names = names();
    let img = write_png(&cm, &names, "val");
    let cell = 48; // 700 / 3, capped at 48
    let (left, top) = grid_origin(&img, 3 * cell);
    let th = text_height(1);

    for (i, row) in cm.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (j, &c) in row.iter().enumerate() {
            // Rows are true classes, normalised by the row's total.
            let v = if total > 0 {
                c as f64 / total as f64
            } else {
                0.0
            };
            let (x, y) = (left + j * cell, top + i * cell);
            for (dx, dy) in [(1, 1), (cell - 2, 1), (1, cell - 2), (cell - 2, cell - 2)] {
                assert_eq!(
                    img.get(x + dx, y + dy),
                    Some(heat_color(v)),
                    "cell ({i}, {j})"
                );
            }
            // The count, centred, white on dark cells.
            let label = c.to_string();
            let ink = if v > 0.5 { WHITE } else { INK };
            let at = (x + (cell - text_width(&label, 1)) / 2, y + (cell - th) / 2);
            assert!(
                find_text(&img, &label, ink, 1).contains(&at),
                "count {label} of cell ({i}, {j}) not at {at:?}"
            );
        }
    }

    // Row names right-aligned left of the grid; column names vertical above it.
    let turned = rotate_cw(&img);
    for (k, name) in names.iter().enumerate() {
        let shown = truncate(name, MAX_LABEL_CHARS);
        let c = k * cell + (cell - th) / 2;
        let at = (left - 6 - text_width(&shown, 1), top + c);
        assert!(
            find_text(&img, &shown, INK, 1).contains(&at),
            "row name {shown}"
        );
        let at_turned = (img.height - top + 6, left + c);
        assert!(
            find_text(&turned, &shown, INK, 1).contains(&at_turned),
            "column name {shown}"
        );
    }
    assert_eq!(truncate(&names[1], MAX_LABEL_CHARS), "a_very_long_c.");
    assert!(find_text(&img, "a_very_long_cl", INK, 1).is_empty());

    let (tx, ty) = find_text_once(&img, "val", INK, 2);
    assert_eq!((tx, ty), ((img.width - text_width("val", 2)) / 2, 10));
    let (px, _) = find_text_once(&img, "predicted", INK, 1);
    assert_eq!(px, left + (3 * cell - text_width("predicted", 1)) / 2);
    let (_, tx) = find_text_once(&turned, "true", INK, 1);
    assert_eq!(tx, 10);

    // Colour scale below the grid: 120 px from white (0) to dark blue (1).
    let ly = top + 3 * cell + 14;
    assert_eq!(img.get(left, ly), Some(heat_color(0.0)));
    assert_eq!(img.get(left + 119, ly), Some(heat_color(1.0)));
    let shade = |x: usize| {
        img.get(x, ly)
            .unwrap()
            .iter()
            .map(|&c| c as u32)
            .sum::<u32>()
    };
    assert!((left..left + 119).all(|x| shade(x) >= shade(x + 1)));
    find_text_once(&img, "0..1 of row (numbers: counts)", INK, 1);
}

#[test]
fn transposed_matrix_gives_the_transposed_cells() {
    let cm = vec![vec![9, 1], vec![0, 3]];
    let cmt = vec![vec![9, 0], vec![1, 3]];
    let names: Vec<String> = vec!["a".into(), "b".into()];
    let (img, imgt) = (write_png(&cm, &names, ""), write_png(&cmt, &names, ""));
    assert_ne!(img, imgt);
    let cell = 48;
    let (l, t) = grid_origin(&img, 2 * cell);
    let (lt, tt) = grid_origin(&imgt, 2 * cell);
    assert_eq!(img.get(l + cell + 2, t + 2), Some(heat_color(0.1)));
    assert_eq!(imgt.get(lt + 2, tt + cell + 2), Some(heat_color(0.25)));
    // Without a title the grid moves up.
    let titled = write_png(&cm, &names, "title");
    assert!(grid_origin(&titled, 2 * cell).1 > t);
}

#[test]
fn many_classes_give_small_cells_without_names() {
    let n = 174;
    let cm: Vec<Vec<u64>> = (0..n)
        .map(|i| (0..n).map(|j| u64::from(i == j) * (1 + i as u64)).collect())
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("class_{i}")).collect();
    let img = write_png(&cm, &names, "");
    let cell = 700 / n; // 4 px: too small for names or counts
    let (left, top) = grid_origin(&img, n * cell);
    for i in 0..n {
        for j in [0, i, n - 1] {
            let expected = heat_color(if i == j { 1.0 } else { 0.0 });
            let (x, y) = (left + j * cell + 1, top + i * cell + 1);
            assert_eq!(img.get(x, y), Some(expected), "cell ({i}, {j})");
        }
    }
    assert!(find_text(&img, "class_0", INK, 1).is_empty());
    assert!(find_text(&rotate_cw(&img), "class_0", INK, 1).is_empty());
}
