//! The resolved configuration: what the rest of smyth consumes after parsing and validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::destination::Destination;
use crate::route::RoutePattern;

/// The whole resolved `[tool.smyth]` table.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the config came from (`pyproject.toml` or `smyth.toml`).
    pub source: PathBuf,
    /// The project root: the config file's folder; workers' working directory.
    pub root: PathBuf,
    pub host: String,
    pub port: u16,
    pub log_level: String,
    /// How the server writes its own log: text lines or one JSON object per line.
    pub log_format: LogFormat,
    pub smyth_path_prefix: String,
    /// Global env for every handler.
    pub env: BTreeMap<String, String>,
    /// The dotenv file loaded into every handler's env, when present.
    pub env_file: Option<PathBuf>,
    /// The variables read from `env_file` at load time (so building a worker's env reads no file).
    pub env_file_vars: BTreeMap<String, String>,
    /// The resolved interpreter.
    pub python: String,
    /// The interpreter's `major.minor` (`"3.12"`) when it could be read without running it.
    pub python_version: Option<String>,
    /// Extra import roots, absolute (resolved against `root`).
    pub python_path: Vec<PathBuf>,
    pub reload: bool,
    /// Ordinary cold starts of the bundled runtime fork from a pre-started interpreter.
    pub zygote: bool,
    pub account_concurrency: usize,
    /// Extra `Host` names the HTTP surface accepts beside the loopback names and the bind address;
    /// `"*"` turns the check off.
    pub allowed_hosts: Vec<String>,
    /// Asynchronous (`Event`) invocations that may wait, across all handlers, before `Event` gets 429.
    pub async_queue_size: usize,
    /// Where every invocation is recorded (`record`, `record_path`, `record_keep`).
    pub record: crate::recording::RecordConfig,
    /// `[tool.smyth.chaos]`, on under `smyth run --chaos`.
    pub chaos: crate::recording::ChaosConfig,
    /// `smyth run --debug` (not a file key): see [`Config::for_debugging`].
    pub debug: bool,
    /// `smyth run --check-state` (not a file key): the state-leak detector checks the handlers that
    /// set `check_state = true`.
    pub check_state: bool,
    /// Handlers in file order (routes are matched in this order).
    pub handlers: Vec<HandlerConfig>,
}

#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub name: String,
    pub handler_path: String,
    pub url_path: String,
    pub route: RoutePattern,
    pub timeout: Duration,
    /// How long init may run before the process is killed (then retried once inside the invocation).
    pub init_timeout: Duration,
    /// Worker processes in the pool (equals `reserved_concurrency` when that is set).
    pub concurrency: usize,
    /// AWS reserved concurrency: throttle (429) instead of queueing when all workers are busy.
    pub reserved_concurrency: Option<usize>,
    pub provisioned_concurrency: usize,
    pub strategy: Strategy,
    pub memory_size: u32,
    pub idle_timeout: Option<Duration>,
    /// Under `smyth run --debug`, the worker's debugpy listens on this loopback port before the handler
    /// is imported, for an IDE to attach.
    pub debugpy_port: Option<u16>,
    /// Safe to run twice: under `smyth run --check-state`, every `check_state_every`th invocation is
    /// repeated on a throwaway environment and the results compared (the state-leak detector).
    pub check_state: bool,
    pub check_state_every: u32,
    /// SnapStart: the first environment initialises once as a template (the snapshot); every
    /// environment is restored from it and runs the after-restore hooks.
    pub snap_start: bool,
    pub event_format: EventFormat,
    pub runtime: Runtime,
    pub log_level: String,
    /// AWS's advanced logging controls for the runtime.
    pub logging: FunctionLogging,
    /// Lambda Managed Instances: each of the `concurrency` environments serves this many invocations
    /// at once (`max_concurrency`); None for an ordinary (one at a time) handler.
    pub managed_instances: Option<ManagedInstances>,
    /// Requests that may wait for a worker before the handler answers 429.
    pub queue_size: usize,
    /// Retries of a failed asynchronous (`Event`) invocation, as AWS's MaximumRetryAttempts (0 to 2).
    pub maximum_retry_attempts: u32,
    /// Pause before the first retry of a failed `Event` invocation; the second waits twice as long.
    pub retry_delay: Duration,
    /// An asynchronous event older than this is dropped (AWS's MaximumEventAgeInSeconds, 60 to 21600).
    pub maximum_event_age: Duration,
    /// Where a successful asynchronous invocation's record goes (AWS's OnSuccess destination).
    pub on_success: Option<Destination>,
    /// Where a failed-for-good or too-old asynchronous event's record goes (AWS's OnFailure).
    pub on_failure: Option<Destination>,
    /// AWS's tenant isolation (`TenancyConfig: PER_TENANT`): the request header that carries the tenant
    /// id on `url_path` routes (lower case) when it is on; None when it is off.
    pub tenant_id_header: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// A log format: the server's (`text` / `json`) or a function's (AWS's `Text` / `JSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// As the server's `log_format` key spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    /// As AWS spells it, in `AWS_LAMBDA_LOG_FORMAT` and a handler's `log_format`.
    pub fn as_aws(self) -> &'static str {
        match self {
            LogFormat::Text => "Text",
            LogFormat::Json => "JSON",
        }
    }
}

/// A Lambda Managed Instances handler's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedInstances {
    /// Invocations one environment serves at once (`AWS_LAMBDA_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
}

impl HandlerConfig {
    /// Invocations the handler serves at once: `concurrency`, times `max_concurrency` when managed.
    pub fn capacity(&self) -> usize {
        self.concurrency * self.managed_instances.map_or(1, |m| m.max_concurrency)
    }
}

/// A handler's AWS logging config (`LoggingConfig`); unset keys leave the runtime's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionLogging {
    pub format: Option<LogFormat>,
    /// `TRACE` … `FATAL`: the runtime drops application log lines below it (JSON only).
    pub application_log_level: Option<String>,
    /// `DEBUG`, `INFO`, `WARN`: smyth's own per-invocation lines (`REPORT`) are INFO.
    pub system_log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    FirstWarm,
    RoundRobin,
    Random,
    LeastRecentlyUsed,
    AlwaysCold,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::FirstWarm,
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::LeastRecentlyUsed,
        Strategy::AlwaysCold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::FirstWarm => "first_warm",
            Strategy::RoundRobin => "round_robin",
            Strategy::Random => "random",
            Strategy::LeastRecentlyUsed => "least_recently_used",
            Strategy::AlwaysCold => "always_cold",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    ApiGwV2,
    ApiGwV1,
    /// An HTTP API with payload format 1.0: the REST API's shape, the HTTP API's base64 rule.
    ApiGwHttpV1,
    Alb,
    Raw,
    /// A Lambda function URL: the 2.0 payload as a function URL sends it.
    FunctionUrl,
}

impl EventFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::ApiGwV2 => "apigw-v2",
            EventFormat::ApiGwV1 => "apigw-v1",
            EventFormat::ApiGwHttpV1 => "apigw-http-v1",
            EventFormat::Alb => "alb",
            EventFormat::Raw => "raw",
            EventFormat::FunctionUrl => "function-url",
        }
    }
}

/// How a worker process is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// The bootstrap bundled in the binary.
    Python,
    /// `python -m awslambdaric <handler_path>`.
    Awslambdaric,
    /// Any Runtime API client: argv.
    Command(Vec<String>),
}

impl Runtime {
    pub fn as_str(&self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Awslambdaric => "awslambdaric",
            Runtime::Command(_) => "command",
        }
    }
}
