//! `smyth`: a local AWS Lambda development server.

mod apigw;
mod cli;
mod commands;
mod edge;
mod endpoints;
mod export;
mod framing;
mod guard;
mod header_case;
mod http;
mod import_check;
mod invoke_api;
mod lambda_api;
mod logging;
mod metrics;
mod recorder;
mod replay;
mod runtime_api;
mod runtime_listener;
mod server;
mod spool;

use std::process::ExitCode;

use clap::Parser;

use cli::{
    CheckArgs, Cli, Command, ExportCommand, InvocationsArgs, InvocationsCommand, InvokeArgs, ReplayArgs,
    RunArgs,
};

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
        Command::Replay(args) => replay(args),
        Command::Invocations(args) => invocations(args),
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

/// `smyth invocations [show ID]`: reads the recording database of the project's config.
fn invocations(args: InvocationsArgs) -> ExitCode {
    let explicit = match &args.show {
        Some(InvocationsCommand::Show { config, .. }) => config.config.as_deref(),
        None => args.config.config.as_deref(),
    };
    let config = match load(explicit) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = &config.record.path;
    match args.show {
        Some(InvocationsCommand::Show { id, json, .. }) => recorder::cli::show(path, &id, json),
        None => {
            let filter = smyth_actors::recorder::query::Filter {
                handler: args.handler,
                failed: args.failed,
                limit: args.limit,
            };
            recorder::cli::list(path, &filter, args.json)
        }
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
    match actix_rt::System::new().block_on(commands::invoke(config, &args.name, event, args.tenant_id)) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// A seed for `--chaos` without one: from the clock, small enough to type back in.
fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::from(nanos.subsec_nanos()) % 1_000_000
}

fn run(args: RunArgs) -> ExitCode {
    // Before anything else is on the heap: the containment's watchdog is a fork of this process.
    let containment = smyth_actors::containment::contain();
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
    config.check_state = args.check_state;
    logging::init(&config.log_level, config.log_format);
    if config.check_state {
        announce_state_checks(&config);
    }
    if let Some(seed) = args.chaos {
        config.chaos.enabled = true;
        config.chaos.seed = Some(seed.or(config.chaos.seed).unwrap_or_else(rand_seed));
        let chaos = &config.chaos;
        tracing::info!(
            seed = chaos.seed,
            "chaos: on, seed {} (kill_idle {}, kill_busy {}, cold_start {}, throttle {}, latency_ms {})",
            chaos.seed.unwrap_or_default(),
            chaos.kill_idle,
            chaos.kill_busy,
            chaos.cold_start,
            chaos.throttle,
            chaos.latency_ms
        );
    }
    let system = actix_rt::System::new();
    match system.block_on(server::run(config, containment)) {
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

fn replay(args: ReplayArgs) -> ExitCode {
    let config = match load(args.config.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let since = match args.since.as_deref().map(replay::command::parse_since).transpose() {
        Ok(since) => since,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log_level, config.log_format);
    let request = replay::command::Request {
        id: args.id,
        mode: if args.warm { replay::Mode::Warm } else { replay::Mode::Fresh },
        handler: args.handler,
        failed: args.failed.then_some(since),
        host: args.address.host,
        port: args.address.port,
    };
    replay::command::replay(config, request)
}

/// `--check-state` checks only the handlers marked safe to run twice: say which, or that none is.
fn announce_state_checks(config: &smyth_config::Config) {
    let checked: Vec<_> = config.handlers.iter().filter(|h| h.check_state).collect();
    if checked.is_empty() {
        tracing::warn!(
            "--check-state: no handler sets `check_state = true`, so none is checked (a handler with side \
             effects must not run twice: mark the ones that are safe to repeat)"
        );
    }
    for handler in checked {
        tracing::info!(
            handler = %handler.name,
            "state-leak check: every {} invocation(s) also run on a fresh environment",
            handler.check_state_every
        );
    }
}
