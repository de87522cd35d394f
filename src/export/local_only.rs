//! The settings that shape only the local server or pool, which Lambda has no setting for: each
//! one that differs from its default is reported, so nothing is dropped in silence.

use smyth_config::{Config, Runtime, Strategy};

use super::sam::{env_problem, lambda_python, Function, Options};

/// The handler's settings of the local pool that Lambda has no setting for.
pub(super) fn handler(f: &mut Function) {
    let h = f.handler;
    if h.reserved_concurrency.is_none() && h.concurrency != 1 {
        f.cannot(format!(
            "concurrency = {} (Lambda scales out instead of queueing; reserved_concurrency caps it)",
            h.concurrency
        ));
    }
    if h.queue_size != 1000 {
        f.cannot(format!("queue_size = {} (Lambda does not queue synchronous requests)", h.queue_size));
    }
    if h.strategy != Strategy::FirstWarm {
        f.cannot(format!(
            "strategy = \"{}\" (Lambda picks execution environments itself)",
            h.strategy.as_str()
        ));
    }
    if let Some(idle) = h.idle_timeout {
        f.cannot(format!(
            "idle_timeout = {} (Lambda decides when to stop idle environments)",
            idle.as_secs_f64()
        ));
    }
    if h.init_timeout.as_secs_f64() != 10.0 {
        f.cannot(format!("init_timeout = {} (Lambda's init phase is 10 s)", h.init_timeout.as_secs_f64()));
    }
    if h.check_state {
        f.cannot(format!(
            "check_state = true, check_state_every = {} (smyth's state-leak detector)",
            h.check_state_every
        ));
    }
    if let Some(port) = h.debugpy_port {
        f.cannot(format!("debugpy_port = {port} (local debugging only)"));
    }
    if h.log_level != "INFO" && h.logging.application_log_level.is_none() {
        f.cannot(format!(
            "log_level = \"{}\" (Lambda's ApplicationLogLevel needs log_format = \"JSON\"; not set)",
            h.log_level
        ));
    }
}

/// The global keys that shape only the local server, when they differ from their defaults.
pub(super) fn globals(config: &Config, options: &Options) -> Vec<String> {
    let mut out = Vec::new();
    let python = config.handlers.iter().any(|h| !matches!(h.runtime, Runtime::Command(_)));
    if let (true, (_, Some(note))) = (python, lambda_python(config.python_version.as_deref())) {
        out.push(note);
    }
    let from_env_file = if options.include_env_file { &config.env_file_vars } else { &Default::default() };
    for key in config.env.keys().chain(from_env_file.keys()) {
        if let Some(problem) = env_problem(key) {
            out.push(format!("env `{key}` {problem}"));
        }
    }
    if !options.include_env_file && !config.env_file_vars.is_empty() {
        out.push(format!(
            "the {} env_file variables are left out (--include-env-file puts them in)",
            config.env_file_vars.len()
        ));
    }
    let mut differs = |key: &str, value: String, default: &str, why: &str| {
        if value != default {
            out.push(format!("{key} = {value} ({why})"));
        }
    };
    differs(
        "account_concurrency",
        config.account_concurrency.to_string(),
        "1000",
        "an account-wide AWS quota",
    );
    differs(
        "async_queue_size",
        config.async_queue_size.to_string(),
        "10000",
        "Lambda's own queue has no size",
    );
    differs("log_level", format!("{:?}", config.log_level), "\"INFO\"", "local server only");
    differs("log_format", format!("{:?}", config.log_format.as_str()), "\"text\"", "local server only");
    differs("host", format!("{:?}", config.host), "\"127.0.0.1\"", "local server only");
    differs("port", config.port.to_string(), "8080", "local server only");
    differs(
        "smyth_path_prefix",
        format!("{:?}", config.smyth_path_prefix),
        "\"/_smyth\"",
        "local server only",
    );
    differs("reload", config.reload.to_string(), "true", "local server only");
    differs("allowed_hosts", format!("{:?}", config.allowed_hosts), "[]", "local server only");
    differs("record", config.record.enabled.to_string(), "true", "local server only");
    let default_path = config.root.join(".smyth/invocations.db");
    let path = if config.record.path == default_path {
        String::new()
    } else {
        config.record.path.display().to_string()
    };
    differs("record_path", path, "", "local server only");
    differs("record_keep", config.record.keep.to_string(), "10000", "local server only");
    let chaos = config.chaos;
    let rates = [chaos.kill_idle, chaos.kill_busy, chaos.cold_start, chaos.throttle];
    let chaotic = rates.iter().any(|r| *r > 0.0) || chaos.latency_ms > 0;
    differs(
        "chaos",
        if chaotic { "{ … }" } else { "" }.to_string(),
        "",
        "local server only: smyth run --chaos",
    );
    out
}
