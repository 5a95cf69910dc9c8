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
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `outer: cause: ...`, leaving out a cause that the
/// message before it already states (library errors often print their source themselves).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
