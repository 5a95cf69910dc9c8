//! The subcommands, one module each, and the dispatch.

mod ablate;
mod data;
mod demo;
mod eval;
mod flow;
mod forward;
mod info;
mod init;
mod model_source;
mod predict;
mod preset;
mod pretrain;
mod timeline;
mod train;
mod video_input;
mod watch;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, DataCommand};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Info(args) => info::run(&args),
        Command::Preset(args) => preset::run(&args),
        Command::Init(args) => init::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Forward(args) => forward::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Train(args) => train::run(&args, &amflow_train::device::parse_many(&cli.device)?),
        Command::Eval(args) => eval::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Predict(args) => predict::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Watch(args) => watch::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Ablate(args) => ablate::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::PretrainImage(args) => {
            pretrain::run(&args, &amflow_train::device::parse(&cli.device)?)
        }
        Command::Flow(args) => flow::run(&args, &amflow_train::device::parse(&cli.device)?),
        Command::Data(args) => match args.command {
            DataCommand::Check(check) => data::check(&check),
            DataCommand::Prepare(prepare) => data::prepare(&prepare),
        },
    }
}
