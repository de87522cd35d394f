//! Chaos mode (`smyth run --chaos[=SEED]`, `[tool.smyth.chaos]`): each fault kind at rate 1.0 —
//! logged with `chaos:`, counted in the status, recorded with the invocation — and two runs with the
//! same seed injecting the same faults.

mod common;

use std::time::{Duration, Instant};

use common::{pyproject, Server};
use serde_json::Value;

const APP: &str = r#"
import os

def pid(event, context):
    return {"statusCode": 200, "body": str(os.getpid())}
"#;

fn serve(chaos: &str, seed: &str) -> Server {
    let handlers = "[tool.smyth.handlers.pid]\nhandler_path = \"app.pid\"\nurl_path = \"/pid\"\n";
    let config = format!("{}\n[tool.smyth.chaos]\n{chaos}\n", pyproject(handlers));
    Server::start_with_args(&[("pyproject.toml", &config), ("app.py", APP)], &[&format!("--chaos={seed}")])
}

fn counts(server: &Server) -> Value {
    server.status()["handlers"]["pid"]["chaos"].clone()
}

/// The recorded invocations, oldest first, once there are `n`.
fn records(server: &Server, n: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    server.wait_for(&format!("{n} records"), Duration::from_secs(10), || {
        rows =
            server.get("/_smyth/invocations?limit=1000").json()["invocations"].as_array().cloned().unwrap();
        rows.len() >= n
    });
    rows.reverse();
    rows
}

fn faults(row: &Value) -> Vec<String> {
    row["chaos"]["faults"].as_array().into_iter().flatten().map(|f| f.as_str().unwrap().to_string()).collect()
}

fn logged(server: &Server, fault: &str, seed: u64) -> usize {
    let needle = format!("chaos: {fault} (seed {seed})");
    server.log().lines().filter(|l| l.contains(" INFO ") && l.contains(&needle)).count()
}

#[test]
fn kill_idle_kills_the_warm_worker_before_reuse_so_every_request_is_a_cold_start() {
    let server = serve("kill_idle = 1.0", "11");
    let first = server.get("/pid");
    let second = server.get("/pid");
    assert_eq!((first.status, second.status), (200, 200));
    assert_ne!(first.body, second.body, "a new process served the second request");
    let worker = &server.workers("pid")[0];
    assert_eq!(worker["cold_starts"], 2, "{worker}");
    assert_eq!(counts(&server)["kill_idle"], 1, "the first request found no idle worker");
    let rows = records(&server, 2);
    assert_eq!(faults(&rows[0]), Vec::<String>::new());
    assert_eq!(faults(&rows[1]), ["kill_idle"]);
    assert_eq!((rows[1]["cold"].as_bool(), rows[1]["chaos"]["seed"].as_u64()), (Some(true), Some(11)));
    assert_eq!(logged(&server, "kill_idle", 11), 1, "{}", server.log());
}

#[test]
fn cold_start_forces_a_fresh_process() {
    let server = serve("cold_start = 1.0", "12");
    let pids: Vec<String> = (0..3).map(|_| server.get("/pid").body).collect();
    assert!(pids[0] != pids[1] && pids[1] != pids[2], "{pids:?}");
    assert_eq!(server.workers("pid")[0]["cold_starts"], 3);
    assert_eq!(counts(&server)["cold_start"], 2);
    let rows = records(&server, 3);
    assert!(rows.iter().all(|r| r["cold"] == true), "{rows:?}");
    assert_eq!(faults(&rows[2]), ["cold_start"]);
    assert_eq!(logged(&server, "cold_start", 12), 2);
}

#[test]
fn kill_busy_fails_the_invocation_with_runtime_exit_error() {
    let server = serve("kill_busy = 1.0", "13");
    let reply = server.get("/pid");
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.json()["errorType"], "Runtime.ExitError", "{}", reply.body);
    let invoke = server.request("POST", "/2015-03-31/functions/pid/invocations", &[], Some(b"{}"));
    assert_eq!(invoke.status, 200);
    assert_eq!(invoke.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(invoke.json()["errorType"], "Runtime.ExitError");
    assert_eq!(counts(&server)["kill_busy"], 2);
    let rows = records(&server, 2);
    assert!(
        rows.iter().all(|r| r["error_type"] == "Runtime.ExitError" && faults(r) == ["kill_busy"]),
        "{rows:?}"
    );
    assert_eq!(logged(&server, "kill_busy", 13), 2);
}

#[test]
fn throttle_answers_429() {
    let server = serve("throttle = 1.0", "14");
    assert_eq!(server.get("/pid").status, 429);
    let invoke = server.request("POST", "/2015-03-31/functions/pid/invocations", &[], Some(b"{}"));
    assert_eq!(invoke.status, 429);
    assert_eq!(invoke.header("x-amzn-errortype"), Some("TooManyRequestsException"));
    assert_eq!(counts(&server)["throttle"], 2);
    assert_eq!(server.workers("pid")[0]["cold_starts"], 0, "no request reached a worker");
    let rows = records(&server, 2);
    assert!(rows.iter().all(|r| r["status"] == "throttled" && faults(r) == ["throttle"]), "{rows:?}");
    assert_eq!(logged(&server, "throttle", 14), 2);
}

#[test]
fn latency_delays_every_dispatch() {
    let server = serve("latency_ms = 400", "15");
    for _ in 0..2 {
        let asked = Instant::now();
        assert_eq!(server.get("/pid").status, 200);
        assert!(asked.elapsed() >= Duration::from_millis(400), "{:?}", asked.elapsed());
    }
    assert_eq!(counts(&server)["latency"], 2);
    let rows = records(&server, 2);
    assert_eq!(faults(&rows[1]), ["latency"]);
    assert_eq!(rows[1]["chaos"]["latency_ms"], 400);
    assert_eq!(logged(&server, "latency", 15), 2);
}

/// The status codes and recorded faults of 16 requests, one after another.
fn run_with_seed(seed: &str) -> Vec<(u16, Vec<String>)> {
    let server = serve("kill_idle = 0.3\nkill_busy = 0.3\nthrottle = 0.3", seed);
    let codes: Vec<u16> = (0..16).map(|_| server.get("/pid").status).collect();
    let rows = records(&server, 16);
    codes.into_iter().zip(rows.iter().map(faults)).collect()
}

#[test]
fn the_same_seed_injects_the_same_faults() {
    let first = run_with_seed("2024");
    let second = run_with_seed("2024");
    assert_eq!(first, second);
    let injected: usize = first.iter().map(|(_, f)| f.len()).sum();
    assert!(injected > 0 && first.iter().any(|(_, f)| f.is_empty()), "some faults, not all: {first:?}");
    assert!(
        first.iter().any(|(code, _)| *code == 429) && first.iter().any(|(code, _)| *code == 502),
        "{first:?}"
    );
}

#[test]
fn without_the_flag_the_table_injects_nothing() {
    let handlers = "[tool.smyth.handlers.pid]\nhandler_path = \"app.pid\"\nurl_path = \"/pid\"\n";
    let config = format!("{}\n[tool.smyth.chaos]\nthrottle = 1.0\n", pyproject(handlers));
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    assert_eq!(server.get("/pid").status, 200);
    assert!(counts(&server).is_null());
}

/// A managed-instances handler: throttles and latency apply at admission; the process faults do not
/// (its one environment serves many invocations at once), and the log says so.
#[test]
fn a_managed_handler_takes_throttles_and_latency_but_no_process_faults() {
    let managed = "[tool.smyth.handlers.pid]\nhandler_path = \"app.pid\"\nurl_path = \"/pid\"\n\
                   managed_instances = true\n";
    let start = |chaos: &str, seed: &str| {
        let config = format!("{}\n[tool.smyth.chaos]\n{chaos}\n", pyproject(managed));
        Server::start_with_args(
            &[("pyproject.toml", &config), ("app.py", APP)],
            &[&format!("--chaos={seed}")],
        )
    };
    let server = start("throttle = 1.0", "21");
    assert_eq!(server.get("/pid").status, 429);
    assert_eq!(counts(&server)["throttle"], 1);
    assert_eq!(logged(&server, "throttle", 21), 1);

    let server = start("kill_busy = 1.0\nkill_idle = 1.0\nlatency_ms = 300", "22");
    for _ in 0..2 {
        let asked = Instant::now();
        let reply = server.get("/pid");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(asked.elapsed() >= Duration::from_millis(300), "{:?}", asked.elapsed());
    }
    let counted = counts(&server);
    assert_eq!((counted["latency"].as_u64(), counted["kill_busy"].as_u64()), (Some(2), Some(0)), "{counted}");
    assert_eq!(counted["kill_idle"], 0);
    assert!(server.log().contains("do not apply to a managed-instances handler"), "{}", server.log());
    let rows = records(&server, 2);
    assert!(rows.iter().all(|r| faults(r) == ["latency"]), "{rows:?}");
}
