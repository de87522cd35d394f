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
    /// Resident memory of the worker's main process at the last sample; shown as `rss_mb` (MB to
    /// one decimal), null while there is no process or no sample yet.
    #[serde(rename = "rss_mb", serialize_with = "as_mb")]
    pub rss_bytes: Option<u64>,
    /// CPU use of the worker's main process at the last sample, percent of one CPU; null like `rss_mb`.
    #[serde(serialize_with = "one_decimal")]
    pub cpu_percent: Option<f32>,
}

fn as_mb<S: serde::Serializer>(bytes: &Option<u64>, out: S) -> Result<S::Ok, S::Error> {
    let mb = bytes.map(|b| (b as f64 / crate::sampler::MIB as f64 * 10.0).round() / 10.0);
    mb.serialize(out)
}

fn one_decimal<S: serde::Serializer>(value: &Option<f32>, out: S) -> Result<S::Ok, S::Error> {
    value.map(|v| (f64::from(v) * 10.0).round() / 10.0).serialize(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(rss_bytes: Option<u64>, cpu_percent: Option<f32>) -> serde_json::Value {
        let status = WorkerStatus {
            id: "noop:0".into(),
            state: StateKind::Warm,
            pid: Some(7),
            invocations: 0,
            cold_starts: 1,
            restarts: 0,
            last_used: None,
            rss_bytes,
            cpu_percent,
        };
        serde_json::to_value(status).unwrap()
    }

    #[test]
    fn usage_is_shown_in_mb_and_percent_with_one_decimal() {
        let json = worker(Some(9 * 1024 * 1024 + 400 * 1024), Some(12.345));
        assert_eq!(json["rss_mb"], 9.4);
        assert_eq!(json["cpu_percent"], 12.3);
        assert!(json.get("rss_bytes").is_none());
        let cold = worker(None, None);
        assert!(cold["rss_mb"].is_null() && cold["cpu_percent"].is_null(), "{cold}");
    }
}
