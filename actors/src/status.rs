//! What `/_smyth/status` shows: handlers, their workers, states and counters, their CloudWatch-style
//! metrics, and the account's concurrency.

use serde::ser::SerializeStruct;
use serde::Serialize;

pub use crate::metrics::{AsyncEvents, HandlerMetrics};
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
    /// Resident memory of the worker's main process at the last sample.
    #[serde(flatten)]
    pub rss: Rss,
    /// CPU use of the worker's main process at the last sample, percent of one CPU; null like `rss_mb`.
    #[serde(serialize_with = "one_decimal")]
    pub cpu_percent: Option<f32>,
    /// Milliseconds since the current process started; null without one.
    pub uptime_ms: Option<u64>,
    /// The last invocation's duration, and the current process's init duration, in ms.
    pub last_duration_ms: Option<f64>,
    pub last_init_ms: Option<f64>,
    /// The most recent failed invocation or init of this slot.
    pub last_error: Option<LastError>,
    /// In `backoff`: epoch milliseconds of the next start (a provisioned slot starts by itself then;
    /// an on-demand one with the next request after it).
    pub retry_at: Option<u64>,
    /// With tenant isolation: the tenant this worker serves (null until its first invocation).
    pub tenant: Option<String>,
}

impl WorkerStatus {
    /// A slot's status with no counts, samples, timings, failure or tenant yet: each caller sets
    /// what it knows over this.
    pub fn new(id: String, state: StateKind, pid: Option<u32>) -> Self {
        WorkerStatus {
            id,
            state,
            pid,
            invocations: 0,
            cold_starts: 0,
            restarts: 0,
            last_used: None,
            rss: Rss(None),
            cpu_percent: None,
            uptime_ms: None,
            last_duration_ms: None,
            last_init_ms: None,
            last_error: None,
            retry_at: None,
            tenant: None,
        }
    }
}

/// Resident memory in bytes, shown as `rss_bytes` and as `rss_mb` (MB to one decimal); both null
/// while there is no process or no sample yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss(pub Option<u64>);

impl Serialize for Rss {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        let mb = self.0.map(|b| (b as f64 / crate::sampler::MIB as f64 * 10.0).round() / 10.0);
        let mut fields = out.serialize_struct("Rss", 2)?;
        fields.serialize_field("rss_bytes", &self.0)?;
        fields.serialize_field("rss_mb", &mb)?;
        fields.end()
    }
}

/// A failure as the status shows it: `{"type", "message", "at"}` (`at` in epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    pub at: u64,
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
    /// Requests answered 429 (the same number as `metrics.throttles`, kept for older readers).
    pub throttled: u64,
    pub metrics: HandlerMetrics,
    /// Invocations the state-leak detector (`smyth run --check-state`) ran again on a fresh
    /// environment; those whose warm result differed (a leak), and the last leak.
    pub state_checks: u64,
    pub state_leaks: u64,
    pub last_state_leak: Option<crate::shadow::StateLeak>,
    /// Chaos mode's injected faults, a count per kind; absent when chaos mode is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<crate::chaos::ChaosCounts>,
    /// `account_concurrency`, for the account section.
    #[serde(skip)]
    pub account_limit: usize,
    /// Managed instances: `managed_instances` (max_concurrency, capacity) and `environments`.
    #[serde(flatten)]
    pub managed: Option<crate::managed::status::ManagedStatus>,
}

/// The `account` section: executions in flight now across every handler, those of handlers without
/// reserved concurrency (CloudWatch's `UnreservedConcurrentExecutions`), and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub concurrent_executions: usize,
    pub unreserved_concurrent_executions: usize,
    pub limit: usize,
}

pub fn account(handlers: &[HandlerStatus], limit: usize) -> AccountStatus {
    let now = |h: &&HandlerStatus| h.metrics.concurrent_executions;
    AccountStatus {
        concurrent_executions: handlers.iter().map(|h| now(&h)).sum(),
        unreserved_concurrent_executions: handlers
            .iter()
            .filter(|h| h.reserved_concurrency.is_none())
            .map(|h| now(&h))
            .sum(),
        limit,
    }
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
            cold_starts: 1,
            rss: Rss(rss_bytes),
            cpu_percent,
            ..WorkerStatus::new("noop:0".into(), StateKind::Warm, Some(7))
        };
        serde_json::to_value(status).unwrap()
    }

    #[test]
    fn usage_is_shown_in_mb_and_percent_with_one_decimal() {
        let json = worker(Some(9 * 1024 * 1024 + 400 * 1024), Some(12.345));
        assert_eq!(json["rss_mb"], 9.4);
        assert_eq!(json["rss_bytes"], 9 * 1024 * 1024 + 400 * 1024);
        assert_eq!(json["cpu_percent"], 12.3);
        assert!(json["last_error"].is_null() && json["retry_at"].is_null(), "{json}");
        let cold = worker(None, None);
        assert!(cold["rss_mb"].is_null() && cold["rss_bytes"].is_null(), "{cold}");
        assert!(cold["cpu_percent"].is_null(), "{cold}");
    }

    #[test]
    fn a_last_error_has_type_message_and_time() {
        let error = LastError { error_type: "ValueError".into(), message: "boom".into(), at: 42 };
        let json = serde_json::to_value(error).unwrap();
        assert_eq!(json, serde_json::json!({"type": "ValueError", "message": "boom", "at": 42}));
    }

    fn handler(reserved: Option<usize>, concurrent: usize) -> HandlerStatus {
        let mut metrics = crate::metrics::HandlerCounters::default()
            .snapshot(crate::metrics::Now { concurrent, ..Default::default() });
        metrics.concurrent_executions = concurrent;
        HandlerStatus {
            name: "h".into(),
            url_path: "/h".into(),
            concurrency: 4,
            reserved_concurrency: reserved,
            provisioned_concurrency: 0,
            strategy: "first_warm",
            workers: vec![],
            queued: 0,
            throttled: 0,
            metrics,
            state_checks: 0,
            state_leaks: 0,
            last_state_leak: None,
            chaos: None,
            account_limit: 10,
            managed: None,
        }
    }

    #[test]
    fn the_account_counts_every_handler_and_the_unreserved_ones() {
        // (handlers as (reserved, in flight), all in flight, unreserved in flight)
        type Handlers<'a> = &'a [(Option<usize>, usize)];
        let cases: [(Handlers, usize, usize); 4] = [
            (&[], 0, 0),
            (&[(None, 2)], 2, 2),
            (&[(Some(3), 2)], 2, 0),
            (&[(None, 1), (Some(4), 3), (None, 2)], 6, 3),
        ];
        for (handlers, all, unreserved) in cases {
            let handlers: Vec<_> = handlers.iter().map(|(r, c)| handler(*r, *c)).collect();
            let got = account(&handlers, 10);
            let expected = AccountStatus {
                concurrent_executions: all,
                unreserved_concurrent_executions: unreserved,
                limit: 10,
            };
            assert_eq!(got, expected);
        }
    }
}
