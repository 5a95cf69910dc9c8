//! Curve plots render to PNG files of the expected size, with every series'
//! colour present, and survive degenerate input.

mod common;

use amflow_report::plot::series_color;
use amflow_report::{plot_curves, plot_panels, Panel, Series};
use common::{count_color, decode_png};

fn curves() -> Vec<Series> {
    let train: Vec<(f64, f64)> = (0..200)
        .map(|s| (s as f64, 2.3 * (-(s as f64) / 40.0).exp() + 0.05))
        .collect();
    let val: Vec<(f64, f64)> = (0..20)
        .map(|e| ((e * 10) as f64, 2.4 * (-(e as f64) / 4.5).exp() + 0.2))
        .collect();
    vec![
        Series::new("train loss", train),
        Series::new("val loss", val),
    ]
}

#[test]
fn single_panel_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    plot_curves(&path, "Loss", &curves(), "step", "loss").unwrap();
    let (w, h, data) = decode_png(&path);
    assert_eq!((w, h), (800, 500));
    for i in 0..2 {
        assert!(
            count_color(&data, series_color(i)) > 200,
            "series {i} not drawn"
        );
    }
    // Text (dark grey) is present: title, ticks, labels, legend.
    assert!(count_color(&data, [30, 30, 30]) > 500);
}

#[test]
fn loss_and_accuracy_panels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.png");
    let acc = vec![
        Series::from_values("train top-1", &[0.1, 0.3, 0.5, 0.62, 0.7, 0.74]),
        Series::from_values("val top-1", &[0.12, 0.28, 0.44, 0.5, 0.55, 0.56]),
        Series::from_values("val mean class", &[0.1, 0.25, 0.4, 0.47, 0.52, 0.53]),
    ];
    let panels = vec![
        Panel::new("Loss", "step", "cross-entropy", curves()),
        Panel::new("Accuracy", "epoch", "accuracy", acc),
    ];
    plot_panels(&path, &panels, 2).unwrap();
    let (w, h, data) = decode_png(&path);
    assert_eq!((w, h), (1600, 500));
    assert!(count_color(&data, series_color(2)) > 50);

    let path3 = dir.path().join("grid.png");
    let three = vec![panels[0].clone(), panels[1].clone(), panels[0].clone()];
    plot_panels(&path3, &three, 2).unwrap();
    assert_eq!(decode_png(&path3).0, 1600);
    assert_eq!(decode_png(&path3).1, 1000);
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.png");
    // No series at all, empty series, constant, single point, NaN/inf, huge values.
    plot_curves(&p, "", &[], "", "").unwrap();
    plot_curves(&p, "empty", &[Series::new("e", vec![])], "x", "y").unwrap();
    plot_curves(
        &p,
        "const",
        &[Series::from_values("c", &[1.0; 10])],
        "x",
        "y",
    )
    .unwrap();
    plot_curves(&p, "one", &[Series::new("p", vec![(3.0, 4.0)])], "x", "y").unwrap();
    let weird = Series::new(
        "nan",
        vec![
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, f64::INFINITY),
            (3.0, 2.0),
            (4.0, 1e300),
        ],
    );
    plot_curves(&p, "weird", &[weird], "x", "y").unwrap();
    let extreme = Series::new(
        "extreme",
        vec![
            (-f64::MAX, -f64::MAX),
            (0.0, 0.0),
            (f64::MAX, f64::MAX),
            (1e-320, 5e-324),
        ],
    );
    plot_curves(&p, "extreme", &[extreme], "x", "y").unwrap();
    let tiny = Series::new("tiny", vec![(0.0, 1e-12), (1.0, 2e-12), (2.0, 1.5e-12)]);
    plot_curves(&p, "tiny", &[tiny], "x", "y").unwrap();
    assert!(amflow_report::plot::render_panel(&Panel::default(), 10, 10).is_err());
    let long = "a very long title that certainly does not fit into the panel width at all, not even close, no way at all";
    let many: Vec<Series> = (0..25)
        .map(|i| {
            Series::from_values(
                format!("series number {i} with a long name"),
                &[i as f64, 1.0],
            )
        })
        .collect();
    plot_curves(&p, long, &many, long, long).unwrap();
    assert!(plot_panels(&p, &[], 2).is_err());
    assert_eq!(decode_png(&p).0, 800);
}
