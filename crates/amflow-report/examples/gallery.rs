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
    // AM flow figure: two synthetic frames, 12 blocks of 14x14 tokens x 64 channels.
    let frame = |shift: usize| {
        let mut f = amflow_report::RgbImage::filled(224, 224, [40, 70, 110]);
        f.fill_rect(40 + shift as i64, 80, 60, 60, [230, 200, 60]);
        f
    };
    let flows: Vec<amflow_report::RgbImage> = (0..12)
        .map(|b| {
            let (h, w, d) = (14usize, 14usize, 64usize);
            let mut vals = Vec::with_capacity(h * w * d);
            for y in 0..h {
                for x in 0..w {
                    let r = (((x as f64 - 5.0).powi(2) + (y as f64 - 7.0).powi(2)).sqrt()
                        - b as f64 * 0.3)
                        .cos();
                    for c in 0..d {
                        let c = c as f64;
                        vals.push(
                            (r * (c * 0.1).sin()
                                + (x as f64 / 14.0) * (c * 0.37).cos()
                                + (y as f64 / 14.0) * (c * 0.73 + b as f64).sin())
                                as f32,
                        );
                    }
                }
            }
            amflow_report::pca_rgb(&vals, h, w, d)
        })
        .collect::<amflow_report::Result<_>>()?;
    amflow_report::compose_grid(&[frame(0), frame(30)], &flows, &[])?
        .save_png(dir.join("amflow.png"))?;
    println!("wrote {}", dir.display());
    Ok(())
}
