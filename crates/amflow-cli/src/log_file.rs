//! Logs go to stderr and, once a run directory is known, also to its `train.log`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

static FILE: OnceLock<Mutex<Option<File>>> = OnceLock::new();

fn slot() -> &'static Mutex<Option<File>> {
    FILE.get_or_init(|| Mutex::new(None))
}

/// From now on, also append the logs to `path`.
pub fn tee_to(path: &Path) {
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => {
            if let Ok(mut s) = slot().lock() {
                *s = Some(f);
            }
        }
        Err(e) => eprintln!("warning: cannot write {}: {e}", path.display()),
    }
}

/// A writer for `tracing_subscriber`: stderr plus the log file when set.
pub struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut s) = slot().lock() {
            if let Some(f) = s.as_mut() {
                let _ = f.write_all(buf);
            }
        }
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
