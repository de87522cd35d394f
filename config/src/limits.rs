//! The range of every number in the config, in one place: each bound keeps later arithmetic
//! (`Instant + timeout`, `delay * attempt`) from overflowing and keeps counts from making the server
//! bind or allocate absurdly. README.md states the same ranges.

/// AWS's maximum function timeout; also the most an init may take.
pub const MAX_TIMEOUT_SECS: f64 = 900.0;
/// A day: an idle worker kept longer is as good as never stopped.
pub const MAX_IDLE_TIMEOUT_SECS: f64 = 86_400.0;
/// AWS's maximum event age: a retry later than that could never run.
pub const MAX_RETRY_DELAY_SECS: f64 = 21_600.0;
/// Workers in one pool: each slot binds a loopback port.
pub const MAX_CONCURRENCY: i64 = 1_000;
/// Invocations one managed-instances environment serves at once (`max_concurrency`): each is a
/// process of its own; AWS allows up to 64 per vCPU.
pub const MAX_MANAGED_CONCURRENCY: i64 = 64;
/// Worker slots across all handlers (ports bound by one server).
pub const MAX_TOTAL_SLOTS: usize = 10_000;
pub const MAX_ACCOUNT_CONCURRENCY: i64 = 100_000;
/// `check_state_every`: one check in a million invocations is as good as none.
pub const MAX_CHECK_STATE_EVERY: i64 = 1_000_000;
pub const MAX_QUEUE_SIZE: i64 = 1_000_000;
pub const MAX_ASYNC_QUEUE_SIZE: i64 = 1_000_000;
/// Invocations kept in the recording database.
pub const MAX_RECORD_KEEP: i64 = 10_000_000;
/// Chaos mode's delay before every dispatch: at most a minute.
pub const MAX_CHAOS_LATENCY_MS: i64 = 60_000;
/// AWS's MaximumEventAgeInSeconds range.
pub const EVENT_AGE_SECS: (i64, i64) = (60, 21_600);

/// The config file itself (`pyproject.toml` / `smyth.toml`).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// `env_file` (and the default `.env`).
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;
/// What `${VAR}` substitution in the env file may expand to, all values together.
pub const MAX_ENV_EXPANSION_BYTES: u64 = 4 * 1024 * 1024;
/// A venv's `pyvenv.cfg`, read for the Python version.
pub const MAX_PYVENV_CFG_BYTES: u64 = 64 * 1024;
