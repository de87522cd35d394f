//! The `[tool.smyth]` table as written: serde structs whose fields keep their source span, so that
//! validation can say on which line a bad value sits. Every field is optional here; defaults and
//! required keys are decided in `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// Global keys (`[tool.smyth]`, or the top level of `smyth.toml`). `handlers` is split off and
/// read per handler, so that one bad handler does not hide the problems of the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub log_level: Option<Spanned<String>>,
    pub smyth_path_prefix: Option<Spanned<String>>,
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    pub env_file: Option<Spanned<String>>,
    pub python: Option<Spanned<String>>,
    pub python_path: Option<Spanned<Vec<String>>>,
    pub reload: Option<Spanned<bool>>,
    pub zygote: Option<Spanned<bool>>,
    pub account_concurrency: Option<Spanned<i64>>,
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    pub async_queue_size: Option<Spanned<i64>>,
    pub log_format: Option<Spanned<String>>,
    pub record: Option<Spanned<bool>>,
    pub record_path: Option<Spanned<String>>,
    pub record_keep: Option<Spanned<i64>>,
    pub chaos: Option<Spanned<RawChaos>>,
}

/// `[tool.smyth.chaos]`: probabilities from 0 to 1, a delay, and the seed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChaos {
    pub kill_idle: Option<Spanned<f64>>,
    pub kill_busy: Option<Spanned<f64>>,
    pub cold_start: Option<Spanned<f64>>,
    pub throttle: Option<Spanned<f64>>,
    pub latency_ms: Option<Spanned<i64>>,
    pub seed: Option<Spanned<i64>>,
}

impl RawGlobal {
    /// Every key accepted in the global table, `handlers` included (checked against the struct by a test).
    pub const KEYS: &'static [&'static str] = &[
        "host",
        "port",
        "log_level",
        "smyth_path_prefix",
        "env",
        "env_file",
        "python",
        "python_path",
        "reload",
        "zygote",
        "account_concurrency",
        "allowed_hosts",
        "async_queue_size",
        "log_format",
        "record",
        "record_path",
        "record_keep",
        "chaos",
        "handlers",
    ];
}

/// One `[tool.smyth.handlers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHandler {
    pub handler_path: Option<Spanned<String>>,
    pub url_path: Option<Spanned<String>>,
    /// Seconds; serde reads a TOML integer as a float too.
    pub timeout: Option<Spanned<f64>>,
    /// Seconds the runtime may spend initialising before it is killed (AWS: 10 s on demand).
    pub init_timeout: Option<Spanned<f64>>,
    pub concurrency: Option<Spanned<i64>>,
    pub reserved_concurrency: Option<Spanned<i64>>,
    pub provisioned_concurrency: Option<Spanned<i64>>,
    pub queue_size: Option<Spanned<i64>>,
    pub maximum_retry_attempts: Option<Spanned<i64>>,
    pub retry_delay: Option<Spanned<f64>>,
    pub maximum_event_age: Option<Spanned<i64>>,
    pub strategy: Option<Spanned<String>>,
    pub memory_size: Option<Spanned<i64>>,
    pub idle_timeout: Option<Spanned<f64>>,
    pub debugpy_port: Option<Spanned<i64>>,
    /// The handler is safe to run twice: `smyth run --check-state` may repeat an invocation on a
    /// throwaway environment to find state leaking between invocations.
    pub check_state: Option<Spanned<bool>>,
    pub check_state_every: Option<Spanned<i64>>,
    /// SnapStart: environments are restored (forked) from one initialised template.
    pub snap_start: Option<Spanned<bool>>,
    pub event_format: Option<Spanned<String>>,
    pub runtime: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub log_level: Option<Spanned<String>>,
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    /// Async destinations: `handler:NAME` or `file:PATH`.
    pub on_success: Option<Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
    /// AWS's tenant isolation mode (`PER_TENANT`), and the request header that carries the tenant id
    /// on `url_path` routes.
    pub tenant_isolation: Option<Spanned<bool>>,
    pub tenant_id_header: Option<Spanned<String>>,
    // AWS's advanced logging controls.
    pub log_format: Option<Spanned<String>>,
    pub application_log_level: Option<Spanned<String>>,
    pub system_log_level: Option<Spanned<String>>,
    /// Lambda Managed Instances: one environment serves `max_concurrency` invocations at once.
    pub managed_instances: Option<Spanned<bool>>,
    pub max_concurrency: Option<Spanned<i64>>,
    // Smyth's (the Python tool's) own keys.
    pub strategy_generator_path: Option<Spanned<String>>,
    pub strategy_function_path: Option<Spanned<String>>,
    pub event_data_function_path: Option<Spanned<String>>,
    pub context_data_function_path: Option<Spanned<String>>,
    /// Smyth slept to imitate a cold start; ours are real, so it is accepted and ignored.
    #[allow(dead_code)]
    pub fake_coldstart: Option<Spanned<bool>>,
}

impl RawHandler {
    /// Every key accepted in a handler table (checked against the struct by a test).
    pub const KEYS: &'static [&'static str] = &[
        "handler_path",
        "url_path",
        "timeout",
        "init_timeout",
        "concurrency",
        "reserved_concurrency",
        "provisioned_concurrency",
        "queue_size",
        "maximum_retry_attempts",
        "retry_delay",
        "maximum_event_age",
        "strategy",
        "memory_size",
        "idle_timeout",
        "debugpy_port",
        "check_state",
        "check_state_every",
        "snap_start",
        "event_format",
        "runtime",
        "command",
        "log_level",
        "env",
        "on_success",
        "on_failure",
        "tenant_isolation",
        "tenant_id_header",
        "log_format",
        "application_log_level",
        "system_log_level",
        "managed_instances",
        "max_concurrency",
        "strategy_generator_path",
        "strategy_function_path",
        "event_data_function_path",
        "context_data_function_path",
        "fake_coldstart",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields serde knows, read from its "unknown field" message, so KEYS cannot drift.
    fn serde_fields<T: for<'de> Deserialize<'de> + std::fmt::Debug>() -> Vec<String> {
        let err = toml::from_str::<T>("zz_probe = 1").unwrap_err().to_string();
        let list = err.split("expected one of").nth(1).expect(&err);
        let list = list.lines().next().unwrap();
        list.split(',').map(|f| f.trim().trim_matches('`').to_string()).collect()
    }

    #[test]
    fn keys_match_the_structs() {
        let handler: Vec<String> = RawHandler::KEYS.iter().map(|k| k.to_string()).collect();
        assert_eq!(serde_fields::<RawHandler>(), handler);
        let global: Vec<String> =
            RawGlobal::KEYS.iter().filter(|k| **k != "handlers").map(|k| k.to_string()).collect();
        assert_eq!(serde_fields::<RawGlobal>(), global);
    }
}
