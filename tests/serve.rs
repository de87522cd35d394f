//! Serving handlers: warm reuse, strategies, provisioned workers, pools under parallel load, status,
//! routing and init errors, against real Python workers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{pyproject, Server};

const COUNTER: &str = r#"
import os, time
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "pid": os.getpid()}

def slow(event, context):
    time.sleep(0.3)
    return {"pid": os.getpid()}

def chatty(event, context):
    for i in range(5000):
        print("line", i, "x" * 100)
    return {"done": True, "size": len("y" * 100000), "blob": "y" * 100000}
"#;

fn counter_project(extra: &str) -> Server {
    let config = pyproject(&format!(
        "[tool.smyth.handlers.counter]\nhandler_path = \"app.handler\"\nurl_path = \"/counter\"\n{extra}\n"
    ));
    Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER)])
}

fn count_and_pid(server: &Server, path: &str) -> (u64, u64) {
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    (body["count"].as_u64().unwrap(), body["pid"].as_u64().unwrap())
}

#[test]
fn warm_reuse_keeps_globals_in_the_same_process() {
    let server = counter_project("");
    let (first, pid1) = count_and_pid(&server, "/counter");
    let (second, pid2) = count_and_pid(&server, "/counter");
    assert_eq!((first, second), (1, 2));
    assert_eq!(pid1, pid2);
    let worker = &server.workers("counter")[0];
    assert_eq!(worker["invocations"], 2);
    assert_eq!(worker["cold_starts"], 1);
    assert_eq!(worker["state"], "warm");
    assert_eq!(worker["pid"].as_u64(), Some(pid1));
}

#[test]
fn first_warm_reuses_one_worker_for_sequential_requests() {
    let server = counter_project("concurrency = 3");
    let pids: HashSet<u64> = (0..4).map(|_| count_and_pid(&server, "/counter").1).collect();
    assert_eq!(pids.len(), 1, "sequential requests should all go to the first warm worker");
    let cold: Vec<_> =
        server.workers("counter").iter().map(|w| w["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(cold, ["warm", "cold", "cold"]);
}

#[test]
fn round_robin_alternates_workers() {
    let server = counter_project("concurrency = 2\nstrategy = \"round_robin\"");
    let runs: Vec<(u64, u64)> = (0..4).map(|_| count_and_pid(&server, "/counter")).collect();
    let counts: Vec<u64> = runs.iter().map(|r| r.0).collect();
    assert_eq!(counts, [1, 1, 2, 2]);
    assert_ne!(runs[0].1, runs[1].1);
    assert_eq!(runs[0].1, runs[2].1);
    assert_eq!(runs[1].1, runs[3].1);
}

#[test]
fn smyth_strategy_path_selects_round_robin() {
    let server =
        counter_project("concurrency = 2\nstrategy_function_path = \"smyth.runner.strategy.round_robin\"");
    let counts: Vec<u64> = (0..4).map(|_| count_and_pid(&server, "/counter").0).collect();
    assert_eq!(counts, [1, 1, 2, 2]);
}

#[test]
fn always_cold_starts_a_fresh_process_every_time() {
    let server = counter_project("strategy = \"always_cold\"");
    let runs: Vec<(u64, u64)> = (0..3).map(|_| count_and_pid(&server, "/counter")).collect();
    assert!(runs.iter().all(|r| r.0 == 1), "globals must not survive: {runs:?}");
    let pids: HashSet<u64> = runs.iter().map(|r| r.1).collect();
    assert_eq!(pids.len(), 3, "{runs:?}");
}

#[test]
fn provisioned_workers_are_warm_before_the_first_request() {
    let server = counter_project("concurrency = 3\nprovisioned_concurrency = 2");
    server.wait_for("two provisioned workers warm", Duration::from_secs(15), || {
        let states: Vec<_> = server.workers("counter").iter().map(|w| w["state"].clone()).collect();
        states == ["warm", "warm", "cold"]
    });
    let (_, pid) = count_and_pid(&server, "/counter");
    let workers = server.workers("counter");
    assert!(workers[..2].iter().any(|w| w["pid"].as_u64() == Some(pid)), "served by a provisioned worker");
    let cold_starts: u64 = workers.iter().map(|w| w["cold_starts"].as_u64().unwrap()).sum();
    assert_eq!(cold_starts, 2, "the request must not pay a cold start");
}

#[test]
fn parallel_requests_queue_on_a_pool_of_two() {
    let config = pyproject(
        "[tool.smyth.handlers.slow]\nhandler_path = \"app.slow\"\nurl_path = \"/slow\"\nconcurrency = 2\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER)]);
    let pids: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let reply = server.get("/slow");
                    assert_eq!(reply.status, 200, "{reply:?}");
                    reply.json()["pid"].as_u64().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(pids.len(), 6);
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 2, "exactly two processes: {pids:?}");
}

#[test]
fn status_shows_busy_during_an_invocation() {
    let config = pyproject("[tool.smyth.handlers.slow]\nhandler_path = \"app.slow\"\nurl_path = \"/slow\"\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER)]);
    std::thread::scope(|scope| {
        let request = scope.spawn(|| server.get("/slow"));
        server.wait_for("worker busy", Duration::from_secs(10), || {
            server.workers("slow")[0]["state"] == "busy"
        });
        assert_eq!(request.join().unwrap().status, 200);
    });
    server.wait_for("worker warm again", Duration::from_secs(5), || {
        server.workers("slow")[0]["state"] == "warm"
    });
    let status = server.status();
    let slow = &status["handlers"]["slow"];
    assert_eq!(slow["url_path"], "/slow");
    assert_eq!(slow["concurrency"], 1);
    assert_eq!(slow["strategy"], "first_warm");
    assert_eq!(slow["queued"], 0);
    assert!(slow["workers"][0]["last_used"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(server.get("/_smyth/api/status").json(), server.status());
}

#[test]
fn unknown_routes_and_converter_mismatches_are_404() {
    let config = pyproject(
        "[tool.smyth.handlers.item]\nhandler_path = \"app.handler\"\nurl_path = \"/items/{id:int}\"\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER)]);
    for path in ["/nothing", "/items/abc", "/items/", "/items/1/2"] {
        let reply = server.get(path);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.json(), serde_json::json!({"message": "Not Found"}));
    }
    assert_eq!(server.get("/items/42").status, 200);
    assert_eq!(server.workers("item")[0]["invocations"], 1, "404s must not reach a worker");
}

#[test]
fn init_failures_report_their_runtime_error_types() {
    let config = pyproject(
        r#"
[tool.smyth.handlers.missing_module]
handler_path = "nowhere.handler"
url_path = "/missing-module"

[tool.smyth.handlers.missing_function]
handler_path = "app.not_there"
url_path = "/missing-function"

[tool.smyth.handlers.syntax]
handler_path = "broken.handler"
url_path = "/syntax"
"#,
    );
    let server =
        Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER), ("broken.py", "def handler(:\n")]);
    for (path, error_type) in [
        ("/missing-module", "Runtime.ImportModuleError"),
        ("/missing-function", "Runtime.HandlerNotFound"),
        ("/syntax", "Runtime.UserCodeSyntaxError"),
    ] {
        let reply = server.get(path);
        assert_eq!(reply.status, 502, "{path}: {reply:?}");
        let body = reply.json();
        assert_eq!(body["errorType"], error_type, "{path}: {body}");
        assert_eq!(body["message"], "Internal Server Error");
    }
    assert!(server.log().contains("No module named 'nowhere'"), "{}", server.log());
}

#[test]
fn a_handler_printing_a_lot_still_returns_its_result_intact() {
    let config =
        pyproject("[tool.smyth.handlers.chatty]\nhandler_path = \"app.chatty\"\nurl_path = \"/chatty\"\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", COUNTER)]);
    let reply = server.get("/chatty");
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["done"], true);
    assert_eq!(body["blob"].as_str().unwrap().len(), 100_000);
    server.wait_for("worker output in the log", Duration::from_secs(10), || {
        server.log().contains("chatty:0 | line 4999")
    });
}
