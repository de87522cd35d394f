//! Memory and CPU of real worker processes: `memory_size` enforcement (`Runtime.OutOfMemory`), the
//! `rss_mb` / `cpu_percent` status fields, and `Max Memory Used` in the REPORT line.

mod common;

use std::time::{Duration, Instant};

use common::{pyproject, Server};

const APP: &str = r#"
import os, time

def touch(mb):
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block

def handler(event, context):
    action = (event.get("pathParameters") or {}).get("action", "ok")
    if action == "hog":
        block = touch(300)
        time.sleep(5)  # long enough for the sampler to see it, short of the timeout
        return {"survived": len(block)}
    if action == "some":
        block = touch(60)
        time.sleep(0.6)
        return {"pid": os.getpid(), "held": len(block)}
    return {"pid": os.getpid()}
"#;

/// A module whose import alone passes the limit.
const FAT: &str = r#"
import time
BLOCK = bytearray(300 * 1024 * 1024)
for i in range(0, len(BLOCK), 4096):
    BLOCK[i] = 1
time.sleep(5)

def handler(event, context):
    return {"loaded": len(BLOCK)}
"#;

fn serve(extra: &str) -> Server {
    let config = pyproject(&format!(
        "[tool.smyth.handlers.mem]\nhandler_path = \"app.handler\"\nurl_path = \"/mem/{{action}}\"\n\
         memory_size = 128\ntimeout = 10\n{extra}\n"
    ));
    Server::start(&[("pyproject.toml", &config), ("app.py", APP), ("fat.py", FAT)])
}

/// The `Max Memory Used` of every REPORT line in the log, in order.
fn max_memory_used(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("REPORT RequestId:"))
        .filter_map(|line| {
            let rest = &line[line.find("Max Memory Used: ")? + "Max Memory Used: ".len()..];
            rest.split(" MB").next()?.parse().ok()
        })
        .collect()
}

#[test]
fn a_worker_past_memory_size_is_killed_with_out_of_memory_and_the_next_request_starts_cold() {
    let server = serve("");
    let started = Instant::now();
    let reply = server.get("/mem/hog");
    assert!(started.elapsed() < Duration::from_secs(4), "killed late: {:?}", started.elapsed());
    assert_eq!(reply.status, 502, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["message"], "Internal Server Error");
    assert_eq!(body["errorType"], "Runtime.OutOfMemory");
    // AWS's wording: `RequestId: <id> Error: Runtime exited with error: signal: killed`.
    let message = body["errorMessage"].as_str().unwrap();
    let id = message
        .strip_prefix("RequestId: ")
        .and_then(|m| m.strip_suffix(" Error: Runtime exited with error: signal: killed"))
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(id.len(), 36, "{message}");

    server.wait_for("the kill in the log", Duration::from_secs(5), || {
        let log = server.log();
        log.contains("mem:0 exceeded memory_size 128 MB (RSS ") && log.contains("; killing pid ")
    });
    server.wait_for("the slot to turn cold", Duration::from_secs(5), || {
        server.workers("mem")[0]["state"] == "cold"
    });
    let status = &server.workers("mem")[0];
    assert!(status["rss_mb"].is_null() && status["cpu_percent"].is_null(), "{status}");
    assert_eq!(status["restarts"], 1, "an OOM kill counts as a restart, like a crash: {status}");
    assert_eq!(status["cold_starts"], 1);
    let killed = max_memory_used(&server.log());
    assert!(killed.iter().any(|mb| *mb > 128), "the killed run's REPORT shows its peak: {killed:?}");

    // Not an init failure: no backoff, the next request is a working cold start.
    let reply = server.get("/mem/ok");
    assert_eq!(reply.status, 200, "{reply:?}");
    let status = &server.workers("mem")[0];
    assert_eq!(status["cold_starts"], 2, "{status}");
    assert_eq!(status["restarts"], 1, "{status}");
    assert_eq!(status["pid"].as_u64(), reply.json()["pid"].as_u64());
}

#[test]
fn the_invoke_api_reports_out_of_memory_as_an_unhandled_function_error() {
    let server = serve("");
    let payload = br#"{"pathParameters": {"action": "hog"}}"#;
    let reply = server.request("POST", "/2015-03-31/functions/mem/invocations", &[], Some(payload));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("X-Amz-Function-Error"), Some("Unhandled"));
    let body = reply.json();
    assert_eq!(body["errorType"], "Runtime.OutOfMemory");
    assert!(
        body["errorMessage"].as_str().unwrap().ends_with("Error: Runtime exited with error: signal: killed"),
        "{body}"
    );
}

#[test]
fn an_import_past_memory_size_fails_init_with_out_of_memory() {
    let config = pyproject(
        "[tool.smyth.handlers.fat]\nhandler_path = \"fat.handler\"\nurl_path = \"/fat\"\nmemory_size = 128\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("fat.py", FAT)]);
    let reply = server.get("/fat");
    assert_eq!(reply.status, 502, "{reply:?}");
    assert_eq!(reply.json()["errorType"], "Runtime.OutOfMemory");
    // The server's log reaches the harness through a pipe: wait for the line, do not race it.
    server.wait_for("the out-of-memory line in the log", Duration::from_secs(5), || {
        server.log().contains("fat:0 exceeded memory_size 128 MB")
    });
}

#[test]
fn live_workers_show_rss_and_cpu_and_cold_ones_null() {
    let server = serve("concurrency = 2");
    let reply = server.get("/mem/ok");
    assert_eq!(reply.status, 200, "{reply:?}");
    let pid = reply.json()["pid"].as_u64();
    server.wait_for("a memory sample of the warm worker", Duration::from_secs(5), || {
        let warm = &server.workers("mem")[0];
        warm["rss_mb"].as_f64().is_some_and(|mb| mb > 0.0) && warm["cpu_percent"].is_number()
    });
    let workers = server.workers("mem");
    assert_eq!(workers[0]["pid"].as_u64(), pid);
    let rss = workers[0]["rss_mb"].as_f64().unwrap();
    assert!(rss > 1.0 && rss < 128.0, "a Python worker's RSS: {rss} MB");
    assert!(workers[0]["cpu_percent"].as_f64().unwrap() >= 0.0);
    assert_eq!(workers[1]["state"], "cold");
    assert!(workers[1]["rss_mb"].is_null(), "{}", workers[1]);
    assert!(workers[1]["cpu_percent"].is_null(), "{}", workers[1]);

    // The first REPORT already has a `Max Memory Used` (read when init ended).
    server.wait_for("the REPORT line", Duration::from_secs(5), || !max_memory_used(&server.log()).is_empty());
    let first = max_memory_used(&server.log())[0];
    assert!(first > 1 && first < 128, "{first} MB");

    // A run that holds 60 MB for longer than a sampling interval reports its peak.
    let reply = server.get("/mem/some");
    assert_eq!(reply.status, 200, "{reply:?}");
    server.wait_for("the second REPORT line", Duration::from_secs(5), || {
        max_memory_used(&server.log()).len() == 2
    });
    let peak = max_memory_used(&server.log())[1];
    assert!((60..128).contains(&peak), "Max Memory Used after holding 60 MB: {peak} MB");
}
