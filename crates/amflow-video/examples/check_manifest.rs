//! What `amflow data check MANIFEST` does, as a standalone example:
//! `cargo run -p amflow-video --example check_manifest -- MANIFEST [--full]`.
//! Exits with status 1 when a file is unusable.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use amflow_video::{scan_manifest, ManifestSpec, ScanConfig, ScanDepth};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: check_manifest MANIFEST [--full]")?;
    let full = args.any(|a| a == "--full");
    let manifest = ManifestSpec::from_path(path.as_ref())?.load()?;
    let config = ScanConfig {
        depth: if full {
            ScanDepth::Full
        } else {
            ScanDepth::FirstFrame
        },
        ..ScanConfig::default()
    };
    let last = AtomicUsize::new(0);
    let report = scan_manifest(&manifest, &config, &|p| {
        // Print about every 5%.
        let step = (p.total / 20).max(1);
        if p.done == p.total || p.done / step != last.swap(p.done, Ordering::Relaxed) / step {
            eprint!("\r{}/{} checked, {} problems", p.done, p.total, p.problems);
            let _ = std::io::stderr().flush();
        }
    });
    eprintln!();
    println!("{report}");
    if !report.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}
