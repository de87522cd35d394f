//! `GET {prefix}/metrics`: the status's numbers in the OpenMetrics text format (which Prometheus
//! scrapes), written by `prometheus-client` from one snapshot of the status per scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use smyth_actors::metrics::Histogram;
use smyth_actors::state::StateKind;
use smyth_actors::status::{account, HandlerStatus, WorkerStatus};

/// The content type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition of `handlers` (each with its `async_events` filled in).
pub fn render(handlers: Vec<HandlerStatus>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(handlers)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

#[derive(Debug)]
struct Snapshot(Vec<HandlerStatus>);

type Labels = Vec<(&'static str, String)>;

/// Label values escaped as the text format wants them (`prometheus-client` writes them as given).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: a descriptor and one sample per label set. Counters get `_total` appended.
fn family<M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, sample) in samples {
        sample.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: usize,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value as i64);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// A histogram read from the status rather than observed here.
#[derive(Debug)]
struct ConstHistogram<'a>(&'a Histogram);

impl TypedMetric for ConstHistogram<'_> {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.0.sum, self.0.count, &self.0.buckets(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let handlers = &self.0;
        let by_handler = |h: &HandlerStatus| vec![("handler", label(&h.name))];
        let counter = |value: fn(&HandlerStatus) -> u64| {
            handlers.iter().map(move |h| (by_handler(h), ConstCounter::new(value(h))))
        };
        let gauge = |value: fn(&HandlerStatus) -> i64| {
            handlers.iter().map(move |h| (by_handler(h), ConstGauge::new(value(h))))
        };
        let o = &mut out;
        family(
            o,
            "smyth_invocations",
            "Invocations (CloudWatch Invocations).",
            counter(|h| h.metrics.invocations),
        )?;
        family(
            o,
            "smyth_errors",
            "Invocations that failed (CloudWatch Errors).",
            counter(|h| h.metrics.errors),
        )?;
        family(
            o,
            "smyth_throttles",
            "Requests answered 429 (CloudWatch Throttles).",
            counter(|h| h.metrics.throttles),
        )?;
        family(o, "smyth_timeouts", "Invocations that timed out.", counter(|h| h.metrics.timeouts))?;
        family(
            o,
            "smyth_cold_starts",
            "Processes started by the handler's slots.",
            counter(|h| h.metrics.cold_starts),
        )?;
        let durations = handlers.iter().map(|h| (by_handler(h), ConstHistogram(&h.metrics.duration_seconds)));
        family(o, "smyth_duration_seconds", "Invocation durations since the server started.", durations)?;
        let concurrent = |h: &HandlerStatus| h.metrics.concurrent_executions as i64;
        family(o, "smyth_concurrent_executions", "Invocations in flight now.", gauge(concurrent))?;
        let max = |h: &HandlerStatus| h.metrics.max_concurrent_executions as i64;
        family(o, "smyth_max_concurrent_executions", "The most invocations in flight at once.", gauge(max))?;
        let utilization = handlers.iter().filter_map(|h| {
            h.metrics.provisioned_concurrency_utilization.map(|u| (by_handler(h), ConstGauge::new(u)))
        });
        family(
            o,
            "smyth_provisioned_concurrency_utilization",
            "Busy provisioned slots / provisioned.",
            utilization,
        )?;
        let queued = |h: &HandlerStatus| h.metrics.async_events.queued as i64;
        family(o, "smyth_async_events_queued", "Asynchronous events waiting now.", gauge(queued))?;
        let retried = |h: &HandlerStatus| h.metrics.async_events.retried;
        family(
            o,
            "smyth_async_events_retried",
            "Asynchronous events retried after an error.",
            counter(retried),
        )?;
        let dropped = |h: &HandlerStatus| h.metrics.async_events.dropped;
        family(o, "smyth_async_events_dropped", "Asynchronous events dropped for good.", counter(dropped))?;
        family(o, "smyth_queued_requests", "Requests waiting for a worker.", gauge(|h| h.queued as i64))?;
        family(o, "smyth_concurrency", "Worker slots in each pool.", gauge(|h| h.concurrency as i64))?;
        let states = handlers.iter().flat_map(|h| {
            StateKind::SHOWN.iter().map(move |state| {
                let count = h.workers.iter().filter(|w| w.state == *state).count() as i64;
                (
                    vec![("handler", label(&h.name)), ("state", state.as_str().to_string())],
                    ConstGauge::new(count),
                )
            })
        });
        family(o, "smyth_workers", "Worker slots by state.", states)?;
        self.workers(o)?;
        let account = account(handlers, handlers.first().map_or(0, |h| h.account_limit));
        let all = account.concurrent_executions;
        single(o, "smyth_account_concurrent_executions", "Invocations in flight, all handlers.", all)?;
        let unreserved = account.unreserved_concurrent_executions;
        let help = "Invocations in flight, handlers without reserved concurrency.";
        single(o, "smyth_account_unreserved_concurrent_executions", help, unreserved)?;
        single(o, "smyth_account_concurrency_limit", "account_concurrency.", account.limit)
    }
}

impl Snapshot {
    /// The per-worker families.
    fn workers(&self, o: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let workers = || {
            self.0.iter().flat_map(|h| {
                h.workers
                    .iter()
                    .map(move |w| (vec![("handler", label(&h.name)), ("worker", label(&w.id))], w))
            })
        };
        let counter =
            |value: fn(&WorkerStatus) -> u64| workers().map(move |(l, w)| (l, ConstCounter::new(value(w))));
        family(o, "smyth_worker_invocations", "Invocations run by each worker.", counter(|w| w.invocations))?;
        family(
            o,
            "smyth_worker_cold_starts",
            "Processes started by each worker slot.",
            counter(|w| w.cold_starts),
        )?;
        family(
            o,
            "smyth_worker_restarts",
            "Worker processes that died unexpectedly.",
            counter(|w| w.restarts),
        )?;
        // Cold workers have no process: their gauge is absent rather than 0.
        let rss = workers().filter_map(|(l, w)| w.rss.0.map(|bytes| (l, ConstGauge::new(bytes as i64))));
        family(o, "smyth_worker_rss_bytes", "Resident memory of each live worker's main process.", rss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smyth_actors::metrics::{HandlerCounters, Now};
    use smyth_actors::status::Rss;

    fn worker(id: &str, state: StateKind, invocations: u64) -> WorkerStatus {
        let live = state != StateKind::Cold;
        WorkerStatus {
            invocations,
            cold_starts: 1,
            rss: Rss(live.then_some(9_437_184)),
            cpu_percent: live.then_some(0.5),
            ..WorkerStatus::new(id.into(), state, live.then_some(4242))
        }
    }

    #[test]
    fn renders_openmetrics_text() {
        let counters = HandlerCounters::default();
        let handlers = vec![HandlerStatus {
            name: "or\"ders".into(),
            url_path: "/orders".into(),
            concurrency: 2,
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            strategy: "first_warm",
            workers: vec![worker("orders:0", StateKind::Warm, 5), worker("orders:1", StateKind::Cold, 0)],
            queued: 3,
            throttled: 1,
            metrics: counters.snapshot(Now { concurrent: 1, ..Now::default() }),
            state_checks: 0,
            state_leaks: 0,
            last_state_leak: None,
            chaos: None,
            account_limit: 1000,
            managed: None,
        }];
        let text = render(handlers);
        for line in [
            "# TYPE smyth_invocations counter",
            "smyth_invocations_total{handler=\"or\\\"ders\"} 0",
            "# TYPE smyth_duration_seconds histogram",
            "smyth_duration_seconds_bucket{le=\"+Inf\",handler=\"or\\\"ders\"} 0",
            "smyth_worker_invocations_total{handler=\"or\\\"ders\",worker=\"orders:0\"} 5",
            "smyth_workers{handler=\"or\\\"ders\",state=\"warm\"} 1",
            "smyth_workers{handler=\"or\\\"ders\",state=\"backoff\"} 0",
            "smyth_queued_requests{handler=\"or\\\"ders\"} 3",
            "smyth_worker_rss_bytes{handler=\"or\\\"ders\",worker=\"orders:0\"} 9437184",
            "smyth_account_concurrent_executions 1",
            "smyth_account_concurrency_limit 1000",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        assert!(!text.contains("worker=\"orders:1\"} 9437184"), "a cold worker has no RSS sample:\n{text}");
        assert!(
            !text.contains("smyth_provisioned_concurrency_utilization{"),
            "no provisioned slots:\n{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
