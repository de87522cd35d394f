//! A handler's metrics with AWS CloudWatch's meanings: counters that move by exactly one per event,
//! the durations of the last 1,000 invocations for percentiles, and a lifetime duration histogram for
//! Prometheus. The supervisor feeds it; the status shows a [`HandlerMetrics`] snapshot.

pub mod percentile;
pub mod recent;

use std::time::Duration;

use serde::Serialize;

use crate::invocation::{FailureKind, Outcome};
use percentile::nearest_rank;
use recent::Recent;

/// How many recent invocations the percentiles cover.
pub const RECENT_INVOCATIONS: usize = 1_000;
/// How many of the newest durations the status lists for the dashboard's chart.
pub const CHART_POINTS: usize = 60;
/// Upper bounds (seconds) of the duration histogram's buckets; the last is `+Inf`. Lambda's longest
/// timeout is 900 s.
const BUCKETS: [f64; 16] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, f64::MAX];

/// An invocation's failure: the AWS error type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_type: String,
    pub message: String,
}

/// How one invocation ended, as the counters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub failure: Option<Failure>,
    pub timed_out: bool,
    /// How long it ran; None when it never reached the handler (its init failed).
    pub duration: Option<Duration>,
}

impl Ended {
    /// How `outcome` ended, after running for `duration` (None if it never ran).
    pub fn of(outcome: &Outcome, duration: Option<Duration>) -> Self {
        let timed_out = matches!(outcome, Outcome::Failed { error: FailureKind::Timeout(_), .. });
        Ended { failure: Failure::of(outcome), timed_out, duration }
    }
}

impl Failure {
    /// The AWS error type and message of a failed invocation; None for a success. A handler's error
    /// body is `{"errorType", "errorMessage", ...}` as the runtime posted it.
    pub fn of(outcome: &Outcome) -> Option<Failure> {
        match outcome {
            Outcome::Success { .. } => None,
            Outcome::HandlerError { body, .. } => {
                let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let field = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
                Some(Failure {
                    error_type: field("errorType").unwrap_or_else(|| "Unhandled".into()),
                    message: field("errorMessage")
                        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
                })
            }
            Outcome::Failed { error, message, .. } => {
                Some(Failure { error_type: error.error_type().to_string(), message: message.clone() })
            }
        }
    }
}

/// The lifetime counters and recent durations of one handler.
#[derive(Debug, Clone)]
pub struct HandlerCounters {
    invocations: u64,
    errors: u64,
    throttles: u64,
    timeouts: u64,
    max_concurrent: usize,
    durations: Recent,
    init_durations: Recent,
    histogram: Histogram,
}

impl Default for HandlerCounters {
    fn default() -> Self {
        Self {
            invocations: 0,
            errors: 0,
            throttles: 0,
            timeouts: 0,
            max_concurrent: 0,
            durations: Recent::new(RECENT_INVOCATIONS),
            init_durations: Recent::new(RECENT_INVOCATIONS),
            histogram: Histogram::default(),
        }
    }
}

/// What is true of the handler right now, beside its counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Now {
    /// Invocations in flight.
    pub concurrent: usize,
    /// Provisioned slots with an invocation in flight, and provisioned slots in all.
    pub provisioned_busy: usize,
    pub provisioned: usize,
    /// Processes started by the handler's slots.
    pub cold_starts: u64,
}

impl HandlerCounters {
    /// An invocation ended: +1 invocation; +1 error if it failed; +1 timeout if it timed out.
    pub fn ended(&mut self, ended: &Ended) {
        self.invocations += 1;
        self.errors += u64::from(ended.failure.is_some());
        self.timeouts += u64::from(ended.timed_out);
        if let Some(duration) = ended.duration {
            self.durations.push(ms(duration));
            self.histogram.observe(duration.as_secs_f64());
        }
    }

    /// A request was answered 429: a throttle, and not an invocation.
    pub fn throttled(&mut self) {
        self.throttles += 1;
    }

    pub fn init_done(&mut self, duration: Duration) {
        self.init_durations.push(ms(duration));
    }

    /// Invocations now in flight, after one more was dispatched.
    pub fn concurrency(&mut self, now: usize) {
        self.max_concurrent = self.max_concurrent.max(now);
    }

    pub fn snapshot(&self, now: Now) -> HandlerMetrics {
        let durations = self.durations.sorted();
        let inits = self.init_durations.sorted();
        let utilization = (now.provisioned > 0).then(|| now.provisioned_busy as f64 / now.provisioned as f64);
        HandlerMetrics {
            invocations: self.invocations,
            errors: self.errors,
            throttles: self.throttles,
            timeouts: self.timeouts,
            cold_starts: now.cold_starts,
            concurrent_executions: now.concurrent,
            max_concurrent_executions: self.max_concurrent.max(now.concurrent),
            provisioned_concurrency_utilization: utilization,
            duration_ms: DurationSummary {
                p50: nearest_rank(&durations, 50.0),
                p90: nearest_rank(&durations, 90.0),
                p99: nearest_rank(&durations, 99.0),
                max: durations.last().copied(),
            },
            init_duration_ms: InitSummary { p50: nearest_rank(&inits, 50.0), max: inits.last().copied() },
            async_events: AsyncEvents::default(),
            recent_durations_ms: self.durations.last(CHART_POINTS),
            duration_seconds: self.histogram.clone(),
        }
    }
}

/// Milliseconds to the microsecond.
pub fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A handler's `metrics` in the status.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerMetrics {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub timeouts: u64,
    pub cold_starts: u64,
    pub concurrent_executions: usize,
    pub max_concurrent_executions: usize,
    /// Busy provisioned slots / provisioned slots; null without provisioned concurrency.
    pub provisioned_concurrency_utilization: Option<f64>,
    pub duration_ms: DurationSummary,
    pub init_duration_ms: InitSummary,
    pub async_events: AsyncEvents,
    /// The newest durations, oldest first, for the dashboard's chart.
    pub recent_durations_ms: Vec<f64>,
    /// Every duration since the server started, for Prometheus.
    #[serde(skip)]
    pub duration_seconds: Histogram,
}

/// Percentiles over the last 1,000 invocations that ran; null before the first.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DurationSummary {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct InitSummary {
    pub p50: Option<f64>,
    pub max: Option<f64>,
}

/// Asynchronous events: waiting now, retries after a function error, and dropped for good (retries
/// used up or too old).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AsyncEvents {
    pub queued: u64,
    pub retried: u64,
    pub dropped: u64,
}

/// A duration histogram: observations per bucket (not cumulative), their count and sum.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub sum: f64,
    pub count: u64,
    counts: [u64; BUCKETS.len()],
}

impl Default for Histogram {
    fn default() -> Self {
        Self { sum: 0.0, count: 0, counts: [0; BUCKETS.len()] }
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let bucket = BUCKETS.iter().position(|upper| seconds <= *upper).unwrap_or(BUCKETS.len() - 1);
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += seconds;
    }

    /// `(upper bound, observations in this bucket)`, the last bound `f64::MAX` for `+Inf`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS.iter().copied().zip(self.counts).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(failure: Option<&str>, timed_out: bool, ms: Option<u64>) -> Ended {
        Ended {
            failure: failure.map(|t| Failure { error_type: t.into(), message: "boom".into() }),
            timed_out,
            duration: ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn each_event_moves_its_counters_by_one() {
        // (event, invocations, errors, timeouts, throttles)
        let cases: [(&str, u64, u64, u64, u64); 5] = [
            ("success", 1, 0, 0, 0),
            ("raise", 1, 1, 0, 0),
            ("timeout", 1, 1, 1, 0),
            ("init failure", 1, 1, 0, 0),
            ("throttle", 0, 0, 0, 1),
        ];
        for (event, invocations, errors, timeouts, throttles) in cases {
            let mut counters = HandlerCounters::default();
            match event {
                "success" => counters.ended(&ended(None, false, Some(5))),
                "raise" => counters.ended(&ended(Some("ValueError"), false, Some(5))),
                "timeout" => counters.ended(&ended(Some("Sandbox.Timedout"), true, Some(1000))),
                "init failure" => counters.ended(&ended(Some("Runtime.ImportModuleError"), false, None)),
                _ => counters.throttled(),
            }
            let m = counters.snapshot(Now::default());
            assert_eq!(
                (m.invocations, m.errors, m.timeouts, m.throttles),
                (invocations, errors, timeouts, throttles),
                "{event}"
            );
        }
    }

    #[test]
    fn outcomes_give_their_failure() {
        let body = |text: &str| bytes::Bytes::from(text.to_string());
        let rid = String::new();
        let cases = [
            (Outcome::Success { request_id: rid.clone(), body: body("{}") }, None, false),
            (
                Outcome::HandlerError {
                    request_id: rid.clone(),
                    body: body(r#"{"errorType":"ValueError","errorMessage":"bad"}"#),
                },
                Some(("ValueError", "bad")),
                false,
            ),
            (
                Outcome::HandlerError { request_id: rid.clone(), body: body("oops") },
                Some(("Unhandled", "oops")),
                false,
            ),
            (
                Outcome::Failed {
                    request_id: rid.clone(),
                    error: FailureKind::Timeout(Duration::from_secs(1)),
                    message: "late".into(),
                },
                Some(("Sandbox.Timedout", "late")),
                true,
            ),
            (
                Outcome::Failed { request_id: rid, error: FailureKind::Exited, message: "gone".into() },
                Some(("Runtime.ExitError", "gone")),
                false,
            ),
        ];
        for (outcome, failure, timed_out) in cases {
            let ended = Ended::of(&outcome, None);
            let got = ended.failure.as_ref().map(|f| (f.error_type.as_str(), f.message.as_str()));
            assert_eq!((got, ended.timed_out), (failure, timed_out), "{outcome:?}");
        }
    }

    #[test]
    fn durations_give_percentiles_and_a_histogram() {
        let mut counters = HandlerCounters::default();
        for ms in 1..=100 {
            counters.ended(&ended(None, false, Some(ms)));
        }
        counters.ended(&ended(Some("Runtime.ImportModuleError"), false, None));
        let m = counters.snapshot(Now::default());
        assert_eq!((m.duration_ms.p50, m.duration_ms.p90), (Some(50.0), Some(90.0)));
        assert_eq!((m.duration_ms.p99, m.duration_ms.max), (Some(99.0), Some(100.0)));
        assert_eq!(m.duration_seconds.count, 100, "a run that never started has no duration");
        let buckets = m.duration_seconds.buckets();
        let le = |bound: f64| buckets.iter().take_while(|(b, _)| *b <= bound).map(|(_, n)| n).sum::<u64>();
        assert_eq!((le(0.005), le(0.01), le(0.1), le(f64::MAX)), (5, 10, 100, 100));
        assert_eq!(m.recent_durations_ms.len(), CHART_POINTS);
        assert_eq!(m.recent_durations_ms.last(), Some(&100.0));
    }

    #[test]
    fn concurrency_and_provisioned_utilization() {
        let mut counters = HandlerCounters::default();
        counters.concurrency(3);
        counters.concurrency(1);
        let now = Now { concurrent: 1, provisioned_busy: 1, provisioned: 4, cold_starts: 2 };
        let m = counters.snapshot(now);
        assert_eq!((m.concurrent_executions, m.max_concurrent_executions, m.cold_starts), (1, 3, 2));
        assert_eq!(m.provisioned_concurrency_utilization, Some(0.25));
        assert_eq!(counters.snapshot(Now::default()).provisioned_concurrency_utilization, None);
        let empty = HandlerCounters::default().snapshot(Now::default());
        assert!(empty.duration_ms.p50.is_none() && empty.init_duration_ms.max.is_none());
    }
}
