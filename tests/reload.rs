//! Reload (README: "Reload") and `idle_timeout` (README: handler keys), against real Python workers: editing the project
//! recycles workers without failing a request; idle on-demand workers go cold on their own.

mod common;

use std::time::Duration;

use common::{pyproject, Server};

const APP: &str = r#"
import os, time
VERSION = "one"

def handler(event, context):
    return {"version": VERSION, "pid": os.getpid()}

def slow(event, context):
    time.sleep(1.5)
    return {"version": VERSION, "pid": os.getpid()}
"#;

/// The edited app. Its size differs from `APP`'s on purpose: Python trusts a cached `.pyc` whose
/// source has the same size and the same mtime second.
fn app_v2() -> String {
    APP.replace("\"one\"", "\"two-2\"")
}

const WAIT: Duration = Duration::from_secs(15);

fn project(handlers: &str) -> Vec<(&'static str, String)> {
    vec![("pyproject.toml", pyproject(handlers)), ("app.py", APP.to_string())]
}

fn start(handlers: &str, args: &[&str]) -> Server {
    let files = project(handlers);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Server::start_with_args(&files, args)
}

const HANDLER: &str = "[tool.smyth.handlers.app]\nhandler_path = \"app.handler\"\nurl_path = \"/app\"\n";

/// The answer of a request: `(version, pid)`.
fn answer(server: &Server, path: &str) -> (String, u64) {
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    let body = reply.json();
    (body["version"].as_str().unwrap().to_string(), body["pid"].as_u64().unwrap())
}

fn edit(server: &Server, name: &str, text: &str) {
    std::fs::write(server.path().join(name), text).unwrap();
}

fn worker(server: &Server, handler: &str) -> serde_json::Value {
    server.workers(handler)[0].clone()
}

/// Waits until the worker of `handler` no longer runs `pid` (stopped or replaced).
fn wait_replaced(server: &Server, handler: &str, pid: u64) {
    server.wait_for("the old worker to be recycled", WAIT, || {
        worker(server, handler)["pid"].as_u64() != Some(pid)
    });
}

fn reload_lines(server: &Server) -> Vec<String> {
    server.log().lines().filter(|l| l.contains("reloading:")).map(str::to_string).collect()
}

#[test]
fn an_edit_reloads_the_next_request_onto_the_new_code() {
    let server = start(HANDLER, &[]);
    let (version, pid) = answer(&server, "/app");
    assert_eq!(version, "one");
    // Files that must not reload, then a burst of writes to the handler: one reload, naming it.
    edit(&server, "README.md", "notes\n");
    std::fs::create_dir_all(server.path().join(".venv/lib")).unwrap();
    edit(&server, ".venv/lib/site.py", "x = 1\n");
    edit(&server, "app.py", APP);
    edit(&server, "app.py", &app_v2());
    wait_replaced(&server, "app", pid);
    let (version, new_pid) = answer(&server, "/app");
    assert_eq!(version, "two-2");
    assert_ne!(new_pid, pid);
    let w = worker(&server, "app");
    assert_eq!(w["cold_starts"], 2);
    assert_eq!(w["restarts"], 0, "a reload is no crash");
    let lines = reload_lines(&server);
    assert_eq!(lines.len(), 1, "one reload per burst: {lines:?}");
    assert!(lines[0].ends_with("reloading: app.py changed"), "{lines:?}");
}

#[test]
fn an_invocation_in_flight_during_an_edit_finishes_on_the_old_code() {
    let server =
        start("[tool.smyth.handlers.slow]\nhandler_path = \"app.slow\"\nurl_path = \"/slow\"\n", &[]);
    std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| answer(&server, "/slow"));
        server.wait_for("worker busy", WAIT, || worker(&server, "slow")["state"] == "busy");
        let pid = worker(&server, "slow")["pid"].as_u64().unwrap();
        // A second request waits in the queue for the busy worker; it runs after the reload.
        let queued = scope.spawn(|| answer(&server, "/slow"));
        server.wait_for("a queued request", WAIT, || server.status()["handlers"]["slow"]["queued"] == 1);
        edit(&server, "app.py", &app_v2());
        server.wait_for("the reload", WAIT, || !reload_lines(&server).is_empty());
        assert!(!in_flight.is_finished(), "the edit must land while the invocation runs");
        assert_eq!(worker(&server, "slow")["pid"].as_u64(), Some(pid), "a busy worker is not killed");
        let (version, served_by) = in_flight.join().unwrap();
        assert_eq!((version.as_str(), served_by), ("one", pid));
        let (version, served_by) = queued.join().unwrap();
        assert_eq!(version, "two-2", "the queued request runs on a fresh process");
        assert_ne!(served_by, pid);
    });
    let (version, pid) = answer(&server, "/slow");
    assert_eq!(version, "two-2");
    let w = worker(&server, "slow");
    assert_eq!(w["pid"].as_u64(), Some(pid));
    assert_eq!(w["invocations"], 3);
    assert_eq!(w["cold_starts"], 2);
    assert_eq!(w["restarts"], 0);
}

#[test]
fn fixing_a_broken_handler_ends_its_init_backoff() {
    let files = [("pyproject.toml", pyproject(HANDLER)), ("app.py", "def handler(:\n".to_string())];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start(&files);
    // Six failed inits in a row: the next start waits 3.2 s.
    server.wait_for("six init failures", WAIT, || {
        assert_eq!(server.get("/app").status, 502);
        server.log().contains("failures=6")
    });
    edit(&server, "app.py", APP);
    server.wait_for("the reload", WAIT, || !reload_lines(&server).is_empty());
    let fixed = std::time::Instant::now();
    server.wait_for("the fixed handler to answer", WAIT, || server.get("/app").status == 200);
    assert!(fixed.elapsed() < Duration::from_secs(2), "the reload must end the backoff");
}

#[test]
fn no_reload_leaves_workers_alone() {
    let server = start(HANDLER, &["--no-reload"]);
    let (_, pid) = answer(&server, "/app");
    edit(&server, "app.py", &app_v2());
    // Nothing is expected to happen: give a reload more than its debounce to show up.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(answer(&server, "/app"), ("one".to_string(), pid));
    assert_eq!(worker(&server, "app")["cold_starts"], 1);
    assert!(reload_lines(&server).is_empty(), "{}", server.log());
}

#[test]
fn a_provisioned_worker_comes_back_warm_after_a_reload() {
    let server = start(&format!("{HANDLER}provisioned_concurrency = 1\n"), &[]);
    server.wait_for("provisioned worker warm", WAIT, || worker(&server, "app")["state"] == "warm");
    let pid = worker(&server, "app")["pid"].as_u64().unwrap();
    edit(&server, "app.py", &app_v2());
    server.wait_for("a new warm process", WAIT, || {
        let w = worker(&server, "app");
        w["state"] == "warm" && w["pid"].as_u64() != Some(pid)
    });
    let new_pid = worker(&server, "app")["pid"].as_u64().unwrap();
    assert_eq!(answer(&server, "/app"), ("two-2".to_string(), new_pid));
    let w = worker(&server, "app");
    assert_eq!(w["cold_starts"], 2, "the request after the reload must not pay a cold start");
    assert_eq!(w["restarts"], 0);
}

#[test]
fn a_config_change_recycles_workers_and_says_what_needs_a_restart() {
    let server = start(HANDLER, &[]);
    let (_, pid) = answer(&server, "/app");
    let config = std::fs::read_to_string(server.path().join("pyproject.toml")).unwrap();
    let edited = config.replace("port = 0\n", "port = 0\naccount_concurrency = 999\n");
    edit(&server, "pyproject.toml", &format!("{edited}timeout = 2.5\n"));
    wait_replaced(&server, "app", pid);
    let log = server.log();
    assert!(log.contains("reloading: pyproject.toml changed"), "{log}");
    let warn = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("restart smyth"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(warn.contains("changed keys: account_concurrency, handlers.app.timeout"), "key by key: {warn}");
    let (version, new_pid) = answer(&server, "/app");
    assert_eq!(version, "one");
    assert_ne!(new_pid, pid);
}

#[test]
fn idle_workers_go_cold_but_provisioned_ones_stay_warm() {
    let handlers = "\
[tool.smyth.handlers.app]
handler_path = \"app.handler\"
url_path = \"/app\"
idle_timeout = 0.5

[tool.smyth.handlers.kept]
handler_path = \"app.handler\"
url_path = \"/kept\"
idle_timeout = 0.5
provisioned_concurrency = 1
";
    let server = start(handlers, &["--no-reload"]);
    server.wait_for("provisioned worker warm", WAIT, || worker(&server, "kept")["state"] == "warm");
    let kept_pid = worker(&server, "kept")["pid"].as_u64();
    let (_, pid) = answer(&server, "/app");
    server.wait_for("the idle worker to go cold", WAIT, || worker(&server, "app")["state"] == "cold");
    let w = worker(&server, "app");
    assert_eq!(w["pid"], serde_json::Value::Null);
    assert_eq!(w["restarts"], 0, "an idle stop is no crash");
    // The provisioned worker has been idle longer than the on-demand one by now.
    let kept = worker(&server, "kept");
    assert_eq!((kept["state"].as_str(), kept["pid"].as_u64()), (Some("warm"), kept_pid));
    let (_, new_pid) = answer(&server, "/app");
    assert_ne!(new_pid, pid);
    assert_eq!(worker(&server, "app")["cold_starts"], 2, "the next use is a cold start");
}
