//! Renders sample outputs into a folder: `cargo run -p amflow-report --example gallery -- DIR`.

use amflow_report::{plot_panels, Panel, Series};

fn main() -> amflow_report::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "gallery".into()));
    let train: Vec<(f64, f64)> = (0..200)
        .map(|s| {
            (
                s as f64,
                2.3 * (-(s as f64) / 40.0).exp() + 0.05 + 0.05 * ((s * 7919 % 13) as f64 / 13.0),
            )
        })
        .collect();
    let val: Vec<(f64, f64)> = (0..20)
        .map(|e| ((e * 10) as f64, 2.4 * (-(e as f64) / 4.5).exp() + 0.2))
        .collect();
    let acc = vec![
        Series::from_values("train top-1", &[0.1, 0.3, 0.5, 0.62, 0.7, 0.74]),
        Series::from_values("val top-1", &[0.12, 0.28, 0.44, 0.5, 0.55, 0.56]),
    ];
    let panels = vec![
        Panel::new(
            "Loss",
            "step",
            "cross-entropy",
            vec![Series::new("train", train), Series::new("val", val)],
        ),
        Panel::new("Accuracy", "epoch", "accuracy", acc),
    ];
    plot_panels(dir.join("curves.png"), &panels, 2)?;
    let names: Vec<String> = [
        "walking",
        "running",
        "jumping_jacks_outdoor",
        "push",
        "pull",
        "wave",
        "clap",
        "sit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let n = names.len();
    let cm: Vec<Vec<u64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        40 + 7 * i as u64
                    } else {
                        ((i * 3 + j * 5) % 7) as u64
                    }
                })
                .collect()
        })
        .collect();
    amflow_report::save_confusion_png(dir.join("confusion.png"), &cm, &names, "Confusion (val)")?;
    amflow_report::write_confusion_csv(dir.join("confusion.csv"), &cm, &names)?;
    println!("wrote {}", dir.display());
    Ok(())
}
