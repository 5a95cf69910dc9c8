//! The `amflow` command: inspect AM Flow models, run them on clips, check datasets.
//!
//! Data goes to stdout; logs and progress go to stderr (`RUST_LOG` sets the level).

mod allocator;
mod cli;
mod commands;
mod log_file;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Freed tensor buffers stay mapped for the next op (`allocator`): 1.4x faster
    // inference on the CPU backend (docs/performance.md, v4).
    allocator::keep_freed_memory_mapped();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(|| log_file::Tee)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if cli.quiet { "warn" } else { "info" })
            }),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
