//! The resolved recording and chaos settings: where every invocation is written (`record`,
//! `record_path`, `record_keep`) and the fault rates of `smyth run --chaos` (`[tool.smyth.chaos]`).

use std::path::PathBuf;

/// The last this many invocations are kept when `record_keep` is not set.
pub const DEFAULT_RECORD_KEEP: usize = 10_000;

/// Where and whether invocations are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConfig {
    pub enabled: bool,
    /// The SQLite file, absolute (default `.smyth/invocations.db` under the project root).
    pub path: PathBuf,
    /// The newest this many invocations are kept; older ones are deleted.
    pub keep: usize,
}

/// Chaos mode: the share of requests that meet each fault, and the seed of its draws. Off unless
/// `smyth run --chaos[=SEED]` turns it on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChaosConfig {
    pub enabled: bool,
    pub kill_idle: f64,
    pub kill_busy: f64,
    pub cold_start: f64,
    pub throttle: f64,
    /// A fixed delay before every dispatch, in milliseconds.
    pub latency_ms: u64,
    /// The seed of every handler's draws; None: one is picked at start-up (and logged).
    pub seed: Option<u64>,
}
