//! Writes a small TensorBoard event file: `cargo run -p amflow-report --example write_events -- DIR`.

fn main() -> amflow_report::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/example".into());
    let mut w = amflow_report::EventWriter::create(&dir)?;
    for step in 0..50i64 {
        let loss = 2.3 * (-(step as f32) / 15.0).exp() + 0.1;
        w.add_scalar("train/loss", loss, step)?;
        w.add_scalar("val/top1", 1.0 - loss / 2.4, step)?;
    }
    w.add_scalar("neg", -3.25, -5)?;
    w.flush()?;
    println!("{}", w.path().display());
    Ok(())
}
