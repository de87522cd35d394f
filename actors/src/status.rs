//! What `/_smyth/status` shows: handlers, their workers, states and counters.

use serde::Serialize;

use crate::state::StateKind;

#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// `handler:slot`, e.g. `orders:0`.
    pub id: String,
    pub state: StateKind,
    pub pid: Option<u32>,
    pub invocations: u64,
    pub cold_starts: u64,
    pub restarts: u64,
    /// Epoch milliseconds of the last invocation's start.
    pub last_used: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandlerStatus {
    #[serde(skip)]
    pub name: String,
    pub url_path: String,
    pub concurrency: usize,
    pub reserved_concurrency: Option<usize>,
    pub provisioned_concurrency: usize,
    pub strategy: &'static str,
    pub workers: Vec<WorkerStatus>,
    /// Requests waiting for a worker.
    pub queued: usize,
    /// Requests answered 429.
    pub throttled: u64,
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
