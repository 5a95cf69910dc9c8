//! Confusion-matrix CSV and PNG files written to disk and read back.

mod common;

use amflow_report::{save_confusion_png, write_confusion_csv};
use common::{count_color, decode_png};

#[test]
fn csv_and_png_files() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["a", "a_very_long_class_name_that_is_cut", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cm = vec![vec![5, 0, 1], vec![2, 7, 0], vec![0, 0, 0]];

    let csv_path = dir.path().join("eval/confusion.csv");
    write_confusion_csv(&csv_path, &cm, &names).unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0][1..],
        ["a", "a_very_long_class_name_that_is_cut", "c"]
    );
    assert_eq!(
        rows[2],
        ["a_very_long_class_name_that_is_cut", "2", "7", "0"]
    );

    let png_path = dir.path().join("eval/confusion.png");
    save_confusion_png(&png_path, &cm, &names, "val").unwrap();
    let (w, h, data) = decode_png(&png_path);
    assert!(w >= 3 * 48 && h >= 3 * 48);
    assert_eq!(data.len(), w * h * 3);
    // A full row-normalised diagonal cell (class 1: 7/9 > 0.5) is dark blue with white text.
    assert!(count_color(&data, [255, 255, 255]) > 0);
    assert!(count_color(&data, amflow_report::confusion::heat_color(0.0)) > 48 * 48);
}
