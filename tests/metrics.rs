//! The status's metrics against real requests: each counter moves by exactly one per event with
//! CloudWatch's meanings, durations give ordered percentiles, an import failure shows as `backoff` with
//! its error, concurrency and the account section follow invocations in flight, async events are
//! counted, and the Prometheus exposition parses with a real parser and says what the status says.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{pyproject, Server};
use serde_json::Value;

const APP: &str = r#"
import os, time

def ok(event, context):
    ms = int((event.get("queryStringParameters") or {}).get("ms", "0"))
    time.sleep(ms / 1000)
    return {"ok": True}

def boom(event, context):
    raise ValueError("boom <b>&amp;</b>")

def slow(event, context):
    time.sleep(30)

def hold(event, context):
    while not os.path.exists("release"):
        time.sleep(0.01)
    return {"released": True}
"#;

const HANDLERS: &str = r#"
[tool.smyth.handlers.ok]
handler_path = "app.ok"
url_path = "/ok"

[tool.smyth.handlers.boom]
handler_path = "app.boom"
url_path = "/boom"
maximum_retry_attempts = 1
retry_delay = 0.1

[tool.smyth.handlers.slow]
handler_path = "app.slow"
url_path = "/slow"
timeout = 0.5

[tool.smyth.handlers.zero]
handler_path = "app.ok"
url_path = "/zero"
reserved_concurrency = 0

[tool.smyth.handlers.hold]
handler_path = "app.hold"
url_path = "/hold"
concurrency = 2
provisioned_concurrency = 2
timeout = 30

[tool.smyth.handlers.broken]
handler_path = "missing_module.handler"
url_path = "/broken"
"#;

fn serve() -> Server {
    Server::start(&[("pyproject.toml", &pyproject(HANDLERS)), ("app.py", APP)])
}

fn metrics(server: &Server, handler: &str) -> Value {
    server.status()["handlers"][handler]["metrics"].clone()
}

/// `(invocations, errors, timeouts, throttles)` of a handler.
fn counts(server: &Server, handler: &str) -> (u64, u64, u64, u64) {
    let m = metrics(server, handler);
    let n = |key: &str| m[key].as_u64().unwrap_or_else(|| panic!("no {key} in {m}"));
    (n("invocations"), n("errors"), n("timeouts"), n("throttles"))
}

#[test]
fn each_counter_moves_by_one_per_event() {
    let server = serve();
    assert_eq!(counts(&server, "ok"), (0, 0, 0, 0));

    assert_eq!(server.get("/ok").status, 200);
    assert_eq!(counts(&server, "ok"), (1, 0, 0, 0), "one success");

    assert_eq!(server.get("/boom").status, 502);
    assert_eq!(counts(&server, "boom"), (1, 1, 0, 0), "one raise: one invocation, one error");
    let worker = &server.workers("boom")[0];
    assert_eq!(worker["last_error"]["type"], "ValueError", "{worker}");
    assert_eq!(worker["last_error"]["message"], "boom <b>&amp;</b>", "{worker}");
    assert!(worker["last_error"]["at"].as_u64().is_some_and(|at| at > 1_600_000_000_000), "{worker}");

    assert_eq!(server.get("/slow").status, 504);
    assert_eq!(counts(&server, "slow"), (1, 1, 1, 0), "one timeout: invocation, error and timeout");
    assert_eq!(server.workers("slow")[0]["last_error"]["type"], "Sandbox.Timedout");

    for _ in 0..2 {
        assert_eq!(server.get("/zero").status, 429);
    }
    assert_eq!(counts(&server, "zero"), (0, 0, 0, 2), "throttles are not invocations");
    assert_eq!(server.status()["handlers"]["zero"]["throttled"], 2);

    // Nothing else moved.
    assert_eq!(counts(&server, "ok"), (1, 0, 0, 0));
    assert_eq!(counts(&server, "boom"), (1, 1, 0, 0));
}

#[test]
fn durations_give_ordered_percentiles_and_worker_timings() {
    let server = serve();
    for ms in [0, 5, 10, 20, 40, 0, 5, 10, 20, 40] {
        assert_eq!(server.get(&format!("/ok?ms={ms}")).status, 200);
    }
    let m = metrics(&server, "ok");
    let d = &m["duration_ms"];
    let p = |key: &str| d[key].as_f64().unwrap_or_else(|| panic!("no {key} in {m}"));
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("max"), "{m}");
    assert!(p("max") >= 40.0, "the 40 ms sleep is the longest: {m}");
    assert!(m["init_duration_ms"]["p50"].as_f64().is_some_and(|v| v > 0.0), "{m}");
    assert_eq!(m["cold_starts"], 1, "{m}");
    assert_eq!(m["recent_durations_ms"].as_array().map(Vec::len), Some(10), "{m}");
    let worker = &server.workers("ok")[0];
    assert!(worker["last_duration_ms"].as_f64().is_some_and(|v| v > 0.0), "{worker}");
    assert!(worker["last_init_ms"].as_f64().is_some_and(|v| v > 0.0), "{worker}");
    assert!(worker["uptime_ms"].as_u64().is_some(), "{worker}");
    assert!(worker["last_error"].is_null(), "{worker}");
    server.wait_for("an RSS sample in bytes and MB", Duration::from_secs(5), || {
        let worker = &server.workers("ok")[0];
        worker["rss_bytes"].as_u64().is_some_and(|b| b > 1_000_000) && worker["rss_mb"].is_number()
    });
}

#[test]
fn an_import_failure_shows_backoff_with_its_error() {
    let server = serve();
    let reply = server.get("/broken");
    assert_eq!(reply.status, 502, "{reply:?}");
    let worker = &server.workers("broken")[0];
    assert_eq!(worker["state"], "backoff", "{worker}");
    assert!(worker["retry_at"].as_u64().is_some(), "{worker}");
    assert_eq!(worker["last_error"]["type"], "Runtime.ImportModuleError", "{worker}");
    assert!(worker["last_error"]["message"].as_str().unwrap().contains("missing_module"), "{worker}");
    assert_eq!(counts(&server, "broken"), (1, 1, 0, 0));
    // A healthy slot shows no retry time.
    assert!(server.workers("ok")[0]["retry_at"].is_null());
}

#[test]
fn concurrency_follows_invocations_in_flight() {
    let server = serve();
    server.wait_for("two provisioned workers warm", Duration::from_secs(20), || {
        server.workers("hold").iter().all(|w| w["state"] == "warm")
    });
    let m = metrics(&server, "hold");
    assert_eq!(m["provisioned_concurrency_utilization"], 0.0, "{m}");
    assert!(metrics(&server, "ok")["provisioned_concurrency_utilization"].is_null());
    let url = server.url("/hold");
    let held = std::thread::spawn(move || ureq::get(&url).call().map(|r| r.status().as_u16()));
    server.wait_for("one invocation in flight", Duration::from_secs(10), || {
        metrics(&server, "hold")["concurrent_executions"] == 1
    });
    let status = server.status();
    let m = &status["handlers"]["hold"]["metrics"];
    assert_eq!(m["provisioned_concurrency_utilization"], 0.5, "{m}");
    assert_eq!(m["max_concurrent_executions"], 1, "{m}");
    let account = &status["account"];
    assert_eq!(account["concurrent_executions"], 1, "{account}");
    assert_eq!(account["unreserved_concurrent_executions"], 1, "{account}");
    assert_eq!(account["limit"], 1000, "{account}");
    std::fs::write(server.path().join("release"), "").unwrap();
    assert_eq!(held.join().unwrap().unwrap(), 200);
    server.wait_for("nothing in flight", Duration::from_secs(10), || {
        server.status()["account"]["concurrent_executions"] == 0
    });
    assert_eq!(metrics(&server, "hold")["max_concurrent_executions"], 1);
}

#[test]
fn async_events_count_retries_and_drops() {
    let server = serve();
    let event = |name: &str| {
        let path = format!("/2015-03-31/functions/{name}/invocations");
        server.request("POST", &path, &[("X-Amz-Invocation-Type", "Event")], Some(b"{}"))
    };
    assert_eq!(event("boom").status, 202);
    server.wait_for("the event retried once, then dropped", Duration::from_secs(10), || {
        metrics(&server, "boom")["async_events"]
            == serde_json::json!({"queued": 0, "retried": 1, "dropped": 1})
    });
    assert_eq!(counts(&server, "boom"), (2, 2, 0, 0), "two attempts, two errors");
    assert_eq!(server.status()["handlers"]["boom"]["async_queued"], 0);
}

/// The exposition parsed by the Python `prometheus_client` parsers (OpenMetrics, which is what is
/// served, and the classic text format): `{name: [[labels, value], ...]}` per sample name.
fn parse_exposition(text: &str) -> Option<Value> {
    let python = common::tools::python()?;
    let script = r##"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as classic
text = sys.stdin.read()
out = {}
for family in openmetrics(text):
    for s in family.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
classic_names = {s.name for f in classic(text.replace("# EOF\n", "")) for s in f.samples}
assert classic_names == set(out), sorted(classic_names ^ set(out))
print(json.dumps(out))
"##;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused it: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// The value of sample `name` with these labels (and any others).
fn sample(parsed: &Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = parsed[name].as_array().unwrap_or_else(|| panic!("no {name} in {parsed}"));
    let hit = samples.iter().find(|s| labels.iter().all(|(k, v)| s[0][k] == *v));
    hit.and_then(|s| s[1].as_f64()).unwrap_or_else(|| panic!("no {name}{labels:?} in {samples:?}"))
}

#[test]
fn prometheus_exposition_parses_and_matches_the_status() {
    let server = serve();
    for ms in [0, 10] {
        assert_eq!(server.get(&format!("/ok?ms={ms}")).status, 200);
    }
    assert_eq!(server.get("/boom").status, 502);
    assert_eq!(server.get("/zero").status, 429);
    let reply = server.get("/_smyth/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("application/openmetrics-text"), "{reply:?}");
    let Some(parsed) = parse_exposition(&reply.body) else { return };
    let status = server.status();
    for handler in ["ok", "boom", "zero", "slow"] {
        let m = &status["handlers"][handler]["metrics"];
        let h = [("handler", handler)];
        for (name, key) in [
            ("smyth_invocations_total", "invocations"),
            ("smyth_errors_total", "errors"),
            ("smyth_throttles_total", "throttles"),
            ("smyth_timeouts_total", "timeouts"),
            ("smyth_cold_starts_total", "cold_starts"),
            ("smyth_concurrent_executions", "concurrent_executions"),
        ] {
            assert_eq!(sample(&parsed, name, &h), m[key].as_f64().unwrap(), "{name} of {handler}");
        }
        let runs = m["recent_durations_ms"].as_array().unwrap().len() as f64;
        assert_eq!(sample(&parsed, "smyth_duration_seconds_count", &h), runs, "{handler}");
        assert_eq!(
            sample(&parsed, "smyth_duration_seconds_bucket", &[("handler", handler), ("le", "+Inf")]),
            runs
        );
    }
    assert_eq!(sample(&parsed, "smyth_invocations_total", &[("handler", "ok")]), 2.0);
    assert_eq!(sample(&parsed, "smyth_throttles_total", &[("handler", "zero")]), 1.0);
    let max_ms = status["handlers"]["ok"]["metrics"]["duration_ms"]["max"].as_f64().unwrap();
    let sum = sample(&parsed, "smyth_duration_seconds_sum", &[("handler", "ok")]);
    assert!(sum * 1000.0 >= max_ms, "the sum covers the longest run: {sum} s, max {max_ms} ms");
    assert_eq!(sample(&parsed, "smyth_account_concurrency_limit", &[]), 1000.0);
    assert_eq!(sample(&parsed, "smyth_worker_invocations_total", &[("worker", "ok:0")]), 2.0);
    assert_eq!(sample(&parsed, "smyth_workers", &[("handler", "ok"), ("state", "warm")]), 1.0);
}
