//! `smyth`: a local AWS Lambda development server.

mod apigw;
mod cli;
mod commands;
mod edge;
mod endpoints;
mod export;
mod guard;
mod header_case;
mod http;
mod import_check;
mod invoke_api;
mod lambda_api;
mod logging;
mod metrics;
mod runtime_api;
mod runtime_listener;
mod server;
mod spool;

use std::process::ExitCode;

use clap::Parser;

use cli::{CheckArgs, Cli, Command, ExportCommand, InvokeArgs, RunArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(args),
        Command::Run(args) => run(args),
        Command::Invoke(args) => invoke(args),
        Command::Status(args) => match load(args.config.config.as_deref()) {
            Ok(config) => commands::status(&config, args.address.host.as_deref(), args.address.port),
            Err(code) => code,
        },
        Command::Export(ExportCommand::Sam(args)) => match load(args.config.config.as_deref()) {
            Ok(config) => export::sam(&config, args.output.as_deref(), args.include_env_file),
            Err(code) => code,
        },
    }
}

fn load(explicit: Option<&std::path::Path>) -> Result<smyth_config::Config, ExitCode> {
    let cwd = std::env::current_dir().map_err(|err| {
        eprintln!("error: cannot read the current directory: {err}");
        ExitCode::from(2)
    })?;
    smyth_config::load(explicit, &cwd).map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(2)
    })
}

/// Validates the config and prints it; then imports every handler as `run` would start it.
fn check(args: CheckArgs) -> ExitCode {
    let config = match load(args.config.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    print!("{}", config.describe());
    if args.no_import {
        return ExitCode::SUCCESS;
    }
    let results = match actix_rt::System::new().block_on(import_check::import_all(&config)) {
        Ok(results) => results,
        Err(err) => {
            eprintln!("error: cannot import the handlers: {err}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for ((name, result), handler) in results.iter().zip(&config.handlers) {
        match import_check::problem(name, &handler.handler_path, result) {
            Some(line) => {
                eprintln!("{line}");
                failed = true;
            }
            None => {
                if let import_check::InitResult::Ready(took) = result {
                    println!("import   {name}: ok, init took {} ms", took.as_millis());
                }
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn invoke(args: InvokeArgs) -> ExitCode {
    let config = match load(args.config.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let event = match commands::read_event(args.event.as_deref()) {
        Ok(event) => event,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log_level, config.log_format);
    match actix_rt::System::new().block_on(commands::invoke(config, &args.name, event)) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let mut config = match load(args.config.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Some(host) = args.address.host {
        config.host = host;
    }
    if let Some(port) = args.address.port {
        config.port = port;
    }
    if let Some(level) = args.log_level {
        match smyth_config::log_level(&level) {
            Ok(level) => config.log_level = level,
            Err(err) => {
                eprintln!("error: --log-level: {err}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(format) = args.log_format {
        match smyth_config::log_format(&format) {
            Ok(format) => config.log_format = format,
            Err(err) => {
                eprintln!("error: --log-format: {err}");
                return ExitCode::from(2);
            }
        }
    }
    if args.no_reload {
        config.reload = false;
    }
    if args.debug {
        config = config.for_debugging();
    }
    logging::init(&config.log_level, config.log_format);
    let system = actix_rt::System::new();
    match system.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        // A taken port is a setting to change, like a config error.
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
        // So is an open-file limit too low for the workers started at start-up.
        Err(err) if err.get_ref().is_some_and(|e| e.is::<smyth_actors::fd_limit::OpenFileLimit>()) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}
