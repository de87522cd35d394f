//! `GET {prefix}/metrics`: the status in Prometheus text format.

use std::fmt::Write;

use smyth_actors::state::StateKind;
use smyth_actors::status::HandlerStatus;

/// One metric family: its help, its type and one sample per label set.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Label values escaped as the text format wants them.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(handlers: &[HandlerStatus]) -> String {
    let mut out = String::new();
    let per_worker = |field: fn(&smyth_actors::status::WorkerStatus) -> u64| {
        handlers
            .iter()
            .flat_map(move |h| {
                h.workers.iter().map(move |w| {
                    (format!("handler=\"{}\",worker=\"{}\"", label(&h.name), label(&w.id)), field(w))
                })
            })
            .collect::<Vec<_>>()
    };
    // Cold workers have no process: their gauge is absent rather than 0.
    let rss = handlers.iter().flat_map(|h| {
        h.workers.iter().filter_map(move |w| {
            let labels = format!("handler=\"{}\",worker=\"{}\"", label(&h.name), label(&w.id));
            w.rss_bytes.map(|bytes| (labels, bytes))
        })
    });
    let per_handler = |field: fn(&HandlerStatus) -> u64| {
        handlers.iter().map(|h| (format!("handler=\"{}\"", label(&h.name)), field(h))).collect::<Vec<_>>()
    };
    family(
        &mut out,
        "smyth_invocations_total",
        "counter",
        "Invocations run by each worker.",
        per_worker(|w| w.invocations),
    );
    family(
        &mut out,
        "smyth_cold_starts_total",
        "counter",
        "Processes started by each worker slot.",
        per_worker(|w| w.cold_starts),
    );
    family(
        &mut out,
        "smyth_restarts_total",
        "counter",
        "Worker processes that died unexpectedly.",
        per_worker(|w| w.restarts),
    );
    family(
        &mut out,
        "smyth_worker_rss_bytes",
        "gauge",
        "Resident memory of each live worker's main process, sampled every 250 ms.",
        rss.collect::<Vec<_>>(),
    );
    let states = handlers.iter().flat_map(|h| {
        StateKind::ALL.iter().map(move |state| {
            let count = h.workers.iter().filter(|w| w.state == *state).count() as u64;
            (format!("handler=\"{}\",state=\"{}\"", label(&h.name), state.as_str()), count)
        })
    });
    family(&mut out, "smyth_workers", "gauge", "Worker slots by state.", states.collect::<Vec<_>>());
    family(
        &mut out,
        "smyth_queued_requests",
        "gauge",
        "Requests waiting for a worker.",
        per_handler(|h| h.queued as u64),
    );
    family(
        &mut out,
        "smyth_throttled_total",
        "counter",
        "Requests answered 429.",
        per_handler(|h| h.throttled),
    );
    family(
        &mut out,
        "smyth_concurrency",
        "gauge",
        "Worker slots in each pool.",
        per_handler(|h| h.concurrency as u64),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smyth_actors::status::WorkerStatus;

    fn worker(id: &str, state: StateKind, invocations: u64) -> WorkerStatus {
        let live = state != StateKind::Cold;
        WorkerStatus {
            id: id.into(),
            state,
            pid: live.then_some(4242),
            invocations,
            cold_starts: 1,
            restarts: 0,
            last_used: None,
            rss_bytes: live.then_some(9_437_184),
            cpu_percent: live.then_some(0.5),
        }
    }

    #[test]
    fn renders_prometheus_text() {
        let handlers = vec![HandlerStatus {
            name: "orders".into(),
            url_path: "/orders".into(),
            concurrency: 2,
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            strategy: "first_warm",
            workers: vec![worker("orders:0", StateKind::Warm, 5), worker("orders:1", StateKind::Cold, 0)],
            queued: 3,
            throttled: 1,
        }];
        let text = render(&handlers);
        for line in [
            "# TYPE smyth_invocations_total counter",
            "smyth_invocations_total{handler=\"orders\",worker=\"orders:0\"} 5",
            "smyth_workers{handler=\"orders\",state=\"warm\"} 1",
            "smyth_workers{handler=\"orders\",state=\"busy\"} 0",
            "smyth_queued_requests{handler=\"orders\"} 3",
            "smyth_throttled_total{handler=\"orders\"} 1",
            "# TYPE smyth_worker_rss_bytes gauge",
            "smyth_worker_rss_bytes{handler=\"orders\",worker=\"orders:0\"} 9437184",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        assert!(
            !text.contains("smyth_worker_rss_bytes{handler=\"orders\",worker=\"orders:1\"}"),
            "a cold worker has no RSS sample:\n{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
