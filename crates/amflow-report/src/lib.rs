//! `amflow-report`: the files people look at after training and evaluation.
//!
//! This crate owns every human-facing output of amflow runs and deliberately
//! depends on neither burn nor the model and training crates (only on
//! `amflow-rng`, the project's one generator): plain Rust values go in, files
//! come out.
//!
//! * [`tfevents`]: TensorBoard event files (`events.out.tfevents.<time>.<host>`),
//!   TFRecord framing with masked CRC32C and hand-encoded `Event` protobufs.
//! * [`plot`]: PNG line plots of training curves, single panel or a grid of panels.
//! * [`confusion`]: confusion-matrix CSV and PNG heat map (accuracy metrics live in
//!   `amflow-train`).
//! * [`flow`]: AM flow pictures (PCA of token channels to RGB, as in Figure 5 of
//!   the AM Flow paper) and the frames-plus-blocks grid layout.
//! * [`image`]: the tiny [`RgbImage`] raster type, drawing primitives and PNG I/O.
//! * [`font`]: an embedded 5x7 bitmap font for ASCII 32..=126.
//! * [`crc32c`]: CRC-32C (Castagnoli) and TFRecord's masked variant.
//!
//! See `docs/report.md` for the formats and how to open the results, and for
//! why the plots use this crate's own raster and font rather than a plotting
//! library (measured).

pub mod confusion;
pub mod crc32c;
pub mod error;
pub mod flow;
pub mod font;
pub mod image;
pub mod plot;
pub mod tfevents;

pub use confusion::{
    confusion_csv, confusion_from_pairs, render_confusion, save_confusion_png, write_confusion_csv,
};
pub use error::{ReportError, Result};
pub use flow::{compose_grid, compose_grid_with, fit_image, pca, pca_rgb, Pca};
pub use image::{resize_nearest, upscale_nearest, Rgb, RgbImage};
pub use plot::{plot_curves, plot_panels, render_panel, render_panels, Panel, Series};
pub use tfevents::{read_scalars, EventWriter, ScalarEvent};

/// Writes `bytes` to `path`, creating its parent folders first.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ReportError::io(parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| ReportError::io(path, e))
}
