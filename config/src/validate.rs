//! Raw structs → the resolved `Config`: defaults, ranges, Smyth's keys, duplicate routes, the
//! interpreter and the env file. Every problem is collected; none stops the others being found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::destination::parse_destination;
use crate::env_file;
use crate::error::Problem;
use crate::limits::*;
use crate::model::{Config, EventFormat, HandlerConfig, Runtime, Strategy};
use crate::parse::{Lines, Parsed, ParsedHandler};
use crate::python;
use crate::raw::{RawGlobal, RawHandler};
use crate::route::RoutePattern;

mod log_keys;
mod managed;
mod record_keys;
mod snap_start;
mod tenancy;
pub use log_keys::{log_format, APPLICATION_LOG_LEVELS, SYSTEM_LOG_LEVELS};

pub const LOG_LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// A log level in any case → its canonical upper-case name (for `--log-level` too).
pub fn log_level(value: &str) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    if LOG_LEVELS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!("`{value}` is not one of {}", LOG_LEVELS.join(", ")))
    }
}

/// Smyth's built-in Python paths and what they mean here.
const SMYTH_STRATEGIES: [(&str, Strategy); 2] = [
    ("smyth.runner.strategy.first_warm", Strategy::FirstWarm),
    ("smyth.runner.strategy.round_robin", Strategy::RoundRobin),
];
const SMYTH_EVENTS: [(&str, EventFormat); 2] = [
    ("smyth.event.generate_api_gw_v2_event_data", EventFormat::ApiGwV2),
    ("smyth.event.generate_lambda_invocation_event_data", EventFormat::Raw),
];
/// Smyth's default `context_data_function_path`; our bootstrap builds that context itself.
const SMYTH_CONTEXT: &str = "smyth.context.generate_context_data";

/// Collects problems with their lines while the config is resolved.
struct Check<'a> {
    lines: &'a Lines,
    problems: &'a mut Vec<Problem>,
    prefix: String,
}

impl Check<'_> {
    fn at(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            key: format!("{}{key}", self.prefix).trim_end_matches('.').to_string(),
            message: message.into(),
        });
    }

    fn bad<T>(&mut self, value: &Spanned<T>, key: &str, message: impl Into<String>) {
        let line = self.lines.line(value.span().start);
        self.at(line, key, message);
    }

    fn line<T>(&self, value: &Spanned<T>) -> usize {
        self.lines.line(value.span().start)
    }

    /// An integer within `min..=max`, or `default` (reported when out of range).
    fn int(&mut self, v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: i64) -> i64 {
        match v {
            None => default,
            Some(s) if (min..=max).contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                self.bad(s, key, format!("must be between {min} and {max}, got {}", s.get_ref()));
                default
            }
        }
    }

    /// A number of seconds above 0 and at most `max` (NaN and infinity are not numbers of seconds).
    fn seconds(&mut self, v: &Option<Spanned<f64>>, key: &str, max: f64) -> Option<Duration> {
        let s = v.as_ref()?;
        match seconds_in_range(*s.get_ref(), max) {
            Ok(d) => Some(d),
            Err(msg) => {
                self.bad(s, key, msg);
                None
            }
        }
    }

    /// A string handed to a process (argv, env): it cannot hold a NUL byte.
    fn no_nul<T>(&mut self, v: &Spanned<T>, key: &str, text: &str) {
        if text.contains('\0') {
            self.bad(v, key, "must not contain a NUL character (a process cannot receive it)");
        }
    }

    fn log_level(&mut self, v: &Option<Spanned<String>>, key: &str) -> String {
        let Some(s) = v else { return "INFO".into() };
        log_level(s.get_ref()).unwrap_or_else(|msg| {
            self.bad(s, key, msg);
            "INFO".into()
        })
    }

    fn env(&mut self, v: &Option<Spanned<BTreeMap<String, String>>>, key: &str) -> BTreeMap<String, String> {
        let Some(env) = v else { return BTreeMap::new() };
        for (name, value) in env.get_ref() {
            if name.is_empty() || name.contains(['=', '\0']) {
                self.bad(env, key, format!("`{name}` is not a valid variable name"));
            }
            self.no_nul(env, key, value);
        }
        env.get_ref().clone()
    }
}

/// Resolves the parsed file. `root` is the project root; `env` is the server's environment
/// (for `VIRTUAL_ENV` and `PATH`).
pub fn resolve(
    parsed: Parsed,
    text: &str,
    source: &Path,
    root: &Path,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> Config {
    let lines = Lines::new(text);
    let mut check = Check { lines: &lines, problems, prefix: String::new() };
    let g: &RawGlobal = &parsed.global;

    let host = match &g.host {
        Some(h) if h.get_ref().trim().is_empty() => {
            check.bad(h, "host", "must not be empty");
            "127.0.0.1".to_string()
        }
        Some(h) => h.get_ref().clone(),
        None => "127.0.0.1".into(),
    };
    let port = check.int(&g.port, "port", 0, 65535, 8080) as u16;
    let log_level = check.log_level(&g.log_level, "log_level");
    let log_format = check.server_log_format(&g.log_format);
    let smyth_path_prefix = match &g.smyth_path_prefix {
        None => "/_smyth".to_string(),
        Some(p) => {
            let trimmed = p.get_ref().trim_end_matches('/');
            if !trimmed.starts_with('/') || trimmed.len() < 2 {
                check.bad(p, "smyth_path_prefix", "must start with `/` and name a path, e.g. \"/_smyth\"");
            } else if !trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)) {
                // Braces would be route parameters to actix, quotes would break the dashboard's script.
                check.bad(p, "smyth_path_prefix", "may hold only letters, digits and `/ - . _ ~`");
            }
            trimmed.to_string()
        }
    };
    let global_env = check.env(&g.env, "env");
    let (env_file, env_file_vars) = env_file(&mut check, &g.env_file, root);
    let python = match &g.python {
        Some(p) if p.get_ref().trim().is_empty() => {
            check.bad(p, "python", "must not be empty");
            "python3".to_string()
        }
        Some(p) => {
            check.no_nul(p, "python", p.get_ref());
            python::explicit(p.get_ref(), root)
        }
        None => python::default(root, env),
    };
    let python_version = python::version(&python, env);
    let python_path = g
        .python_path
        .as_ref()
        .map(|p| p.get_ref().iter().map(|d| root.join(d)).collect())
        .unwrap_or_default();
    let reload = g.reload.as_ref().is_none_or(|r| *r.get_ref());
    let zygote = g.zygote.as_ref().is_none_or(|z| *z.get_ref());
    let account_concurrency =
        check.int(&g.account_concurrency, "account_concurrency", 1, MAX_ACCOUNT_CONCURRENCY, 1000) as usize;
    let allowed_hosts = g.allowed_hosts.as_ref().map(|h| h.get_ref().clone()).unwrap_or_default();
    if let Some(h) = &g.allowed_hosts {
        if h.get_ref().iter().any(|name| name.trim().is_empty()) {
            check.bad(h, "allowed_hosts", "names must not be empty (use \"*\" to accept any Host)");
        }
    }
    let async_queue_size =
        check.int(&g.async_queue_size, "async_queue_size", 1, MAX_ASYNC_QUEUE_SIZE, 10_000) as usize;

    let record = record_keys::record(&mut check, g, root);
    let chaos = record_keys::chaos(&mut check, g);

    let mut handlers: Vec<HandlerConfig> = Vec::new();
    let mut routes: Vec<(String, usize)> = Vec::new();
    let mut slots = 0usize;
    for h in &parsed.handlers {
        check.prefix = format!("handlers.{}.", h.name);
        if let Some((handler, line)) = handler(&mut check, h) {
            // Each slot binds a loopback port: bound the total, not only each pool.
            slots += handler.concurrency;
            if slots > MAX_TOTAL_SLOTS && slots - handler.concurrency <= MAX_TOTAL_SLOTS {
                let line = h.raw.concurrency.as_ref().or(h.raw.reserved_concurrency.as_ref());
                let line = line.map_or(h.line, |c| check.line(c));
                check.at(
                    line,
                    if h.raw.concurrency.is_some() { "concurrency" } else { "reserved_concurrency" },
                    format!(
                        "the handlers up to this one have {slots} worker slots; at most {MAX_TOTAL_SLOTS} \
                         worker slots in all (each binds a loopback port)"
                    ),
                );
            }
            // Same shape = same set of paths (`{id}` vs `{key:str}`): the second could never match.
            let shape = handler.route.shape().to_string();
            if let Some((other, other_line)) = routes
                .iter()
                .zip(&handlers)
                .find(|((s, _), _)| *s == shape)
                .map(|((_, l), o)| (o.name.clone(), *l))
            {
                check.at(
                    line,
                    "url_path",
                    format!(
                        "`{}` is the same route as handler `{other}` (line {other_line})",
                        handler.url_path
                    ),
                );
            }
            routes.push((shape, line));
            handlers.push(handler);
        }
    }
    check.prefix.clear();
    destinations(&mut check, &parsed, root, &mut handlers);

    Config {
        source: source.to_path_buf(),
        root: root.to_path_buf(),
        host,
        port,
        log_level,
        log_format,
        smyth_path_prefix,
        env: global_env,
        env_file,
        env_file_vars,
        python,
        python_version,
        python_path,
        reload,
        zygote,
        debug: false,
        check_state: false,
        record,
        chaos,
        account_concurrency,
        allowed_hosts,
        async_queue_size,
        handlers,
    }
}

/// The explicit `env_file` (must exist) or `.env` in the root when present, read now so that
/// building a worker's env later touches no file. Either must be a small regular file.
fn env_file(
    check: &mut Check<'_>,
    explicit: &Option<Spanned<String>>,
    root: &Path,
) -> (Option<PathBuf>, BTreeMap<String, String>) {
    let (path, line) = match explicit {
        Some(p) => (root.join(p.get_ref()), check.line(p)),
        None => {
            let default = root.join(".env");
            // Present in any form (a directory, a FIFO …) is worth a problem; absent is fine.
            if std::fs::symlink_metadata(&default).is_err() {
                return (None, BTreeMap::new());
            }
            (default, 1)
        }
    };
    match env_file::read(&path) {
        Ok(vars) => {
            for value in vars.values().filter(|v| v.contains('\0')) {
                check.at(
                    line,
                    "env_file",
                    format!("{}: a value holds a NUL character: {value:?}", path.display()),
                );
            }
            (Some(path), vars)
        }
        Err(why) => {
            check.at(line, "env_file", format!("{}: {why}", path.display()));
            (None, BTreeMap::new())
        }
    }
}

/// One handler, or None when a required key is missing or unusable (already reported).
fn handler(check: &mut Check<'_>, h: &ParsedHandler) -> Option<(HandlerConfig, usize)> {
    let r: &RawHandler = &h.raw;
    if h.name.is_empty()
        || h.name.len() > 64
        || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        check.at(
            h.line,
            "",
            format!(
                "handler name `{}` must be 1-64 letters, digits, `-` or `_` (an AWS function name)",
                h.name
            ),
        );
    }

    let handler_path = match &r.handler_path {
        None => {
            check.at(h.line, "handler_path", "required (e.g. \"app.handlers.order_handler\")");
            None
        }
        Some(p) => {
            let ok = p.get_ref().rsplit_once('.').is_some_and(|(module, func)| {
                !module.is_empty() && !module.ends_with('/') && is_identifier(func)
            });
            if !ok {
                let msg = format!(
                    "`{}` is not `module.function` (e.g. \"app.handlers.order_handler\")",
                    p.get_ref()
                );
                check.bad(p, "handler_path", msg);
            }
            Some(p.get_ref().clone())
        }
    };
    let route = match &r.url_path {
        None => {
            check.at(h.line, "url_path", "required (e.g. \"/orders/{path:path}\")");
            None
        }
        Some(u) => match RoutePattern::parse(u.get_ref()) {
            Ok(route) => Some((route, check.line(u))),
            Err(why) => {
                check.bad(u, "url_path", why);
                None
            }
        },
    };

    let timeout = check.seconds(&r.timeout, "timeout", MAX_TIMEOUT_SECS).unwrap_or(Duration::from_secs(3));
    let idle_timeout = check.seconds(&r.idle_timeout, "idle_timeout", MAX_IDLE_TIMEOUT_SECS);
    let debugpy_port =
        r.debugpy_port.as_ref().map(|_| check.int(&r.debugpy_port, "debugpy_port", 1, 65535, 5678) as u16);
    let check_state = r.check_state.as_ref().is_some_and(|c| *c.get_ref());
    let check_state_every =
        check.int(&r.check_state_every, "check_state_every", 1, MAX_CHECK_STATE_EVERY, 10) as u32;
    let explicit_concurrency = r.concurrency.as_ref().map(|c| {
        let n = check.int(&r.concurrency, "concurrency", 1, MAX_CONCURRENCY, 1);
        (n, c)
    });
    let reserved = r
        .reserved_concurrency
        .as_ref()
        .map(|_| check.int(&r.reserved_concurrency, "reserved_concurrency", 0, MAX_CONCURRENCY, 0) as usize);
    let concurrency = match (reserved, explicit_concurrency) {
        (Some(res), Some((n, c))) if n as usize != res && *c.get_ref() >= 1 => {
            check.bad(
                c,
                "concurrency",
                format!(
                    "conflicts with reserved_concurrency = {res}: reserved_concurrency sets the pool size \
                     and throttles when it is busy; drop one of the two (queueing or throttling)"
                ),
            );
            res
        }
        (Some(res), _) => res,
        (None, Some((n, _))) => n as usize,
        (None, None) => 1,
    };
    let provisioned =
        check.int(&r.provisioned_concurrency, "provisioned_concurrency", 0, MAX_CONCURRENCY, 0) as usize;
    if let Some(p) = &r.provisioned_concurrency {
        if provisioned > concurrency {
            check.bad(
                p,
                "provisioned_concurrency",
                format!("{provisioned} is more than the pool's concurrency ({concurrency})"),
            );
        }
    }
    let queue_size = check.int(&r.queue_size, "queue_size", 1, MAX_QUEUE_SIZE, 1000) as usize;
    let maximum_retry_attempts =
        check.int(&r.maximum_retry_attempts, "maximum_retry_attempts", 0, 2, 2) as u32;
    let retry_delay =
        check.seconds(&r.retry_delay, "retry_delay", MAX_RETRY_DELAY_SECS).unwrap_or(Duration::from_secs(60));
    let (min_age, max_age) = EVENT_AGE_SECS;
    let maximum_event_age =
        Duration::from_secs(
            check.int(&r.maximum_event_age, "maximum_event_age", min_age, max_age, max_age) as u64
        );
    let init_timeout =
        check.seconds(&r.init_timeout, "init_timeout", MAX_TIMEOUT_SECS).unwrap_or(Duration::from_secs(10));
    let memory_size = check.int(&r.memory_size, "memory_size", 128, 10240, 128) as u32;
    let log_level = check.log_level(&r.log_level, "log_level");
    let logging = check.function_logging(&r.log_format, &r.application_log_level, &r.system_log_level);
    let env = check.env(&r.env, "env");

    let strategy = strategy(check, r);
    let event_format = event_format(check, r);
    if let Some(c) = &r.context_data_function_path {
        if c.get_ref() != SMYTH_CONTEXT {
            let msg = format!(
                "custom context functions are not supported; accepted: \"{SMYTH_CONTEXT}\" (the context is built by smyth's bootstrap)"
            );
            check.bad(c, "context_data_function_path", msg);
        }
    }
    let runtime = runtime(check, r, h.line);
    let tenant_id_header = check.tenancy(r, provisioned, event_format);
    let managed_instances = managed::managed_instances(check, r, strategy, provisioned, logging.format);
    let snap_start = snap_start::snap_start(check, r, provisioned);

    let (route, route_line) = route?;
    Some((
        HandlerConfig {
            name: h.name.clone(),
            handler_path: handler_path?,
            url_path: route.as_str().to_string(),
            route,
            timeout,
            init_timeout,
            concurrency,
            reserved_concurrency: reserved,
            provisioned_concurrency: provisioned,
            strategy,
            memory_size,
            idle_timeout,
            debugpy_port,
            check_state,
            check_state_every,
            snap_start,
            event_format,
            runtime,
            log_level,
            logging,
            managed_instances,
            queue_size,
            maximum_retry_attempts,
            retry_delay,
            maximum_event_age,
            on_success: None,
            on_failure: None,
            tenant_id_header,
            env,
        },
        route_line,
    ))
}

/// `on_success` / `on_failure`, checked once every handler's name is known.
fn destinations(check: &mut Check<'_>, parsed: &Parsed, root: &Path, handlers: &mut [HandlerConfig]) {
    let names: Vec<&str> = parsed.handlers.iter().map(|h| h.name.as_str()).collect();
    for h in &parsed.handlers {
        check.prefix = format!("handlers.{}.", h.name);
        let mut parse = |value: &Option<Spanned<String>>, key: &str| {
            let value = value.as_ref()?;
            parse_destination(value.get_ref(), root, |name| names.contains(&name))
                .map_err(|why| check.bad(value, key, why))
                .ok()
        };
        let on_success = parse(&h.raw.on_success, "on_success");
        let on_failure = parse(&h.raw.on_failure, "on_failure");
        if let Some(handler) = handlers.iter_mut().find(|c| c.name == h.name) {
            handler.on_success = on_success;
            handler.on_failure = on_failure;
        }
    }
    check.prefix.clear();
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `strategy`, or Smyth's `strategy_generator_path` / `strategy_function_path`; they must agree.
fn strategy(check: &mut Check<'_>, r: &RawHandler) -> Strategy {
    let mut chosen: Option<(Strategy, &str)> = None;
    if let Some(s) = &r.strategy {
        match Strategy::ALL.into_iter().find(|k| k.as_str() == s.get_ref()) {
            Some(k) => chosen = Some((k, "strategy")),
            None => {
                let names: Vec<_> = Strategy::ALL.iter().map(|k| k.as_str()).collect();
                let msg = format!("`{}` is not one of {}", s.get_ref(), names.join(", "));
                check.bad(s, "strategy", msg);
            }
        }
    }
    for (key, value) in [
        ("strategy_generator_path", &r.strategy_generator_path),
        ("strategy_function_path", &r.strategy_function_path),
    ] {
        let Some(v) = value else { continue };
        let Some((_, k)) = SMYTH_STRATEGIES.iter().find(|(p, _)| p == v.get_ref()) else {
            let accepted: Vec<_> = SMYTH_STRATEGIES.iter().map(|(p, _)| format!("\"{p}\"")).collect();
            let msg = format!(
                "custom Python strategies are not supported; accepted: {} (or use `strategy`)",
                accepted.join(", ")
            );
            check.bad(v, key, msg);
            continue;
        };
        match chosen {
            Some((other, other_key)) if other != *k => {
                let msg = format!("means {} but `{other_key}` says {}", k.as_str(), other.as_str());
                check.bad(v, key, msg);
            }
            _ => chosen = Some((*k, key)),
        }
    }
    chosen.map_or(Strategy::FirstWarm, |(k, _)| k)
}

/// `event_format`, or Smyth's `event_data_function_path`; they must agree.
fn event_format(check: &mut Check<'_>, r: &RawHandler) -> EventFormat {
    const ALL: [EventFormat; 6] = [
        EventFormat::ApiGwV2,
        EventFormat::ApiGwV1,
        EventFormat::ApiGwHttpV1,
        EventFormat::Alb,
        EventFormat::Raw,
        EventFormat::FunctionUrl,
    ];
    let mut chosen = None;
    if let Some(s) = &r.event_format {
        match ALL.into_iter().find(|f| f.as_str() == s.get_ref()) {
            Some(f) => chosen = Some(f),
            None => {
                let names: Vec<_> = ALL.iter().map(|f| f.as_str()).collect();
                let msg = format!("`{}` is not one of {}", s.get_ref(), names.join(", "));
                check.bad(s, "event_format", msg);
            }
        }
    }
    if let Some(v) = &r.event_data_function_path {
        match SMYTH_EVENTS.iter().find(|(p, _)| p == v.get_ref()) {
            None => {
                let accepted: Vec<_> = SMYTH_EVENTS.iter().map(|(p, _)| format!("\"{p}\"")).collect();
                let msg = format!(
                    "custom Python event functions are not supported; accepted: {} (or use `event_format`)",
                    accepted.join(", ")
                );
                check.bad(v, "event_data_function_path", msg);
            }
            Some((_, f)) => match chosen {
                Some(other) if other != *f => {
                    let msg = format!("means {} but `event_format` says {}", f.as_str(), other.as_str());
                    check.bad(v, "event_data_function_path", msg);
                }
                _ => chosen = Some(*f),
            },
        }
    }
    chosen.unwrap_or(EventFormat::ApiGwV2)
}

fn runtime(check: &mut Check<'_>, r: &RawHandler, handler_line: usize) -> Runtime {
    let name = r.runtime.as_ref().map(|s| s.get_ref().as_str());
    match (name, &r.command) {
        (None | Some("python"), None) => Runtime::Python,
        (Some("awslambdaric"), None) => Runtime::Awslambdaric,
        (Some("command"), Some(c)) if !c.get_ref().is_empty() && !c.get_ref()[0].is_empty() => {
            for arg in c.get_ref() {
                check.no_nul(c, "command", arg);
            }
            Runtime::Command(c.get_ref().clone())
        }
        (Some("command"), Some(c)) => {
            check.bad(c, "command", "must be a non-empty array: the program and its arguments");
            Runtime::Python
        }
        (Some("command"), None) => {
            let line = r.runtime.as_ref().map_or(handler_line, |s| check.line(s));
            check.at(line, "command", "required when runtime = \"command\" (e.g. [\"./bootstrap\"])");
            Runtime::Python
        }
        (None | Some("python" | "awslambdaric"), Some(c)) => {
            check.bad(c, "command", "only used with runtime = \"command\"; add it or drop `command`");
            Runtime::Python
        }
        (Some(other), _) => {
            let s = r.runtime.as_ref().unwrap();
            let msg = format!("`{other}` is not one of python, awslambdaric, command");
            check.bad(s, "runtime", msg);
            Runtime::Python
        }
    }
}

/// `secs` as a Duration when it is above 0 (and not so small that it rounds to nothing) and at most `max`.
fn seconds_in_range(secs: f64, max: f64) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if secs <= max && !d.is_zero() => Ok(d),
        _ => Err(format!("must be a number of seconds above 0 and at most {max}, got {secs}")),
    }
}
