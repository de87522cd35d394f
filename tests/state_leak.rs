//! The state-leak detector (`smyth run --check-state`, handler key `check_state`): the Smyth docs'
//! COUNT handler leaks, a config cached at import does not, `time.time()` does not (it differs
//! between two fresh runs too); the throwaway environments never show in the pool, never get a
//! client's request and are never left running.

mod common;

use std::time::Duration;

use common::{assert_all_gone, Reply, Server};
use serde_json::Value;

const HANDLERS: &str = r#"
import json, os, time

# The Smyth docs' COUNT handler: a global that survives between warm invocations.
COUNT = 0

def count(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "pid": os.getpid(), "request": context.aws_request_id}

# Read once at import: the same value in every fresh environment.
with open(os.path.join(os.path.dirname(__file__), "settings.json")) as f:
    SETTINGS = json.load(f)

def cached(event, context):
    return {"region": SETTINGS["region"], "event": event}

def clock(event, context):
    time.sleep(0.3)  # long enough for the test to see the shadow environment while it runs
    return time.time()
"#;

fn table(name: &str, extra: &str) -> String {
    format!("[tool.smyth.handlers.{name}]\nhandler_path = \"app.{name}\"\nurl_path = \"/{name}\"\n{extra}\n")
}

fn files(global: &str, handlers: &str) -> Vec<(&'static str, String)> {
    vec![
        ("pyproject.toml", format!("[tool.smyth]\nport = 0\n{global}\n{handlers}")),
        ("app.py", HANDLERS.to_string()),
        ("settings.json", r#"{"region": "eu-central-1"}"#.to_string()),
    ]
}

fn start_with(global: &str, handlers: &str, args: &[&str]) -> Server {
    let files = files(global, handlers);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Server::start_with_args(&files, args)
}

fn start(handlers: &str, args: &[&str]) -> Server {
    start_with("", handlers, args)
}

/// [`start`] with every cold start a spawn (`zygote = false`): [`shadow_pids`] finds a shadow by its
/// `SMYTH_WORKER` in /proc/PID/environ, and a fork of the zygote shows the zygote's variables there,
/// not its own. (`a_config_cached_at_import_does_not_leak` checks with the zygote's forks.)
fn start_spawning(handlers: &str, args: &[&str]) -> Server {
    start_with("zygote = false", handlers, args)
}

fn invoke(server: &Server, name: &str) -> Reply {
    let reply = server.request(
        "POST",
        &format!("/2015-03-31/functions/{name}/invocations"),
        &[],
        Some(b"{\"n\": 1}"),
    );
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, server.log());
    assert!(reply.header("x-amz-function-error").is_none(), "{}", reply.body);
    reply
}

fn handler_status(server: &Server, name: &str) -> Value {
    server.status()["handlers"][name].clone()
}

/// Processes under the server whose `SMYTH_WORKER` names a shadow environment of `handler`.
fn shadow_pids(server: &Server, handler: &str) -> Vec<u32> {
    let marker = format!("SMYTH_WORKER={handler}:shadow");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let ours = environ.split(|b| *b == 0).any(|var| var == marker.as_bytes());
        if ours && descends_from(pid, server.pid()) && common::alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match common::parent(u64::from(pid)).and_then(|parent| u32::try_from(parent).ok()) {
            None | Some(0) => return false,
            Some(parent) => pid = parent,
        }
    }
    false
}

#[test]
fn the_count_handler_leaks_state_and_is_reported() {
    let server =
        start_spawning(&table("count", "check_state = true\ncheck_state_every = 2"), &["--check-state"]);
    let first = invoke(&server, "count").json();
    let second = invoke(&server, "count");
    let warm_id = second.header("x-amzn-RequestId").unwrap().to_string();
    let second = second.json();
    assert_eq!((first["count"].as_i64(), second["count"].as_i64()), (Some(1), Some(2)));

    server.wait_for("one state leak", Duration::from_secs(20), || {
        handler_status(&server, "count")["state_leaks"] == 1
    });
    let status = handler_status(&server, "count");
    assert_eq!(status["state_checks"], 1, "only the 2nd invocation is checked: {status}");
    let leak = &status["last_state_leak"];
    assert_eq!(leak["warm_request_id"], warm_id.as_str(), "{status}");
    let fresh_id = leak["fresh_request_id"].as_str().unwrap().to_string();
    assert!(!fresh_id.is_empty() && fresh_id != warm_id, "{status}");
    // Only the counter leaked: the pid and request id differ by design (two fresh runs differ too).
    assert_eq!(
        leak["diff"],
        serde_json::json!([{"op": "replace", "path": "/count", "value": 2}]),
        "{status}"
    );

    let log = server.log();
    let warning = log.lines().find(|l| l.contains("WARN") && l.contains("state leak")).expect(&log);
    for needle in ["count", warm_id.as_str(), fresh_id.as_str(), "/count"] {
        assert!(warning.contains(needle), "`{needle}` missing from: {warning}");
    }
    assert_eq!(log.matches("state leak").count(), 1, "one WARN per leak:\n{log}");
    if let Some(dom) = common::tools::rendered_dom(&server.url("/_smyth/")) {
        assert!(dom.contains("class=\"leak\"") && dom.contains("⚠ 1 state leak"), "{dom}");
        assert!(dom.contains(&warm_id), "the marker names the leak's request ids: {dom}");
    }

    // The shadow is invisible to clients and to the pool: one worker, two client invocations, both
    // on that worker's process, and the next one goes on counting there.
    let workers = server.workers("count");
    assert_eq!(workers.len(), 1, "{status}");
    let pool_pid = workers[0]["pid"].as_u64().unwrap();
    assert_eq!((first["pid"].as_u64(), second["pid"].as_u64()), (Some(pool_pid), Some(pool_pid)));
    assert_eq!(workers[0]["invocations"], 2, "{status}");
    assert_eq!(status["metrics"]["invocations"], 2, "{status}");
    assert_eq!(status["concurrency"], 1);
    let third = invoke(&server, "count").json();
    assert_eq!((third["count"].as_i64(), third["pid"].as_u64()), (Some(3), Some(pool_pid)));
    // And nothing is left running.
    server.wait_for("the shadow environment to be gone", Duration::from_secs(10), || {
        shadow_pids(&server, "count").is_empty()
    });
    assert_all_gone(&server, &[]);
}

#[test]
fn a_config_cached_at_import_does_not_leak() {
    let server = start(&table("cached", "check_state = true\ncheck_state_every = 1"), &["--check-state"]);
    for _ in 0..3 {
        assert_eq!(invoke(&server, "cached").json()["region"], "eu-central-1");
    }
    server.wait_for("three checks", Duration::from_secs(30), || {
        handler_status(&server, "cached")["state_checks"] == 3
    });
    let status = handler_status(&server, "cached");
    assert_eq!(status["state_leaks"], 0, "{status}\n{}", server.log());
    assert!(status["last_state_leak"].is_null(), "{status}");
    assert!(!server.log().contains("state leak"), "{}", server.log());
}

#[test]
fn time_differs_between_fresh_runs_too_so_it_does_not_leak() {
    let server =
        start_spawning(&table("clock", "check_state = true\ncheck_state_every = 1"), &["--check-state"]);
    for _ in 0..2 {
        assert!(invoke(&server, "clock").json().as_f64().is_some());
    }
    // While a check runs its shadow exists: the helper that proves shadows gone can see them.
    let mut seen = Vec::new();
    server.wait_for("two checks", Duration::from_secs(30), || {
        seen.extend(shadow_pids(&server, "clock"));
        handler_status(&server, "clock")["state_checks"] == 2
    });
    let status = handler_status(&server, "clock");
    assert_eq!(status["state_leaks"], 0, "{status}\n{}", server.log());
    assert!(!server.log().contains("state leak"), "{}", server.log());
    server.wait_for("the shadow environments to be gone", Duration::from_secs(10), || {
        shadow_pids(&server, "clock").is_empty()
    });
    assert!(!seen.is_empty(), "no shadow environment seen during the checks\n{}", server.log());
    // A process past the end of its exit no longer shows its environment but is not a zombie yet.
    server.wait_for("every shadow seen to exit", Duration::from_secs(10), || {
        seen.iter().all(|pid| !common::alive(*pid))
    });
    let workers = server.workers("clock");
    assert_eq!(workers.len(), 1);
    assert!(seen.iter().all(|pid| workers[0]["pid"].as_u64() != Some(u64::from(*pid))), "{seen:?}");
}

#[test]
fn check_state_checks_only_the_handlers_that_opted_in() {
    // `count` leaks but did not say it is safe to run twice: it is never repeated.
    let handlers =
        format!("{}{}", table("count", ""), table("clock", "check_state = true\ncheck_state_every = 1"));
    let server = start_spawning(&handlers, &["--check-state"]);
    for _ in 0..3 {
        invoke(&server, "count");
    }
    invoke(&server, "clock");
    server.wait_for("the opted-in handler's check", Duration::from_secs(30), || {
        handler_status(&server, "clock")["state_checks"] == 1
    });
    let count = handler_status(&server, "count");
    assert_eq!(
        (count["state_checks"].as_u64(), count["state_leaks"].as_u64()),
        (Some(0), Some(0)),
        "{count}"
    );
    assert!(shadow_pids(&server, "count").is_empty());
    assert!(server.log().contains("state-leak check: every 1 invocation(s)"), "{}", server.log());
}

#[test]
fn without_check_state_nothing_is_checked_and_a_flag_with_no_opt_in_warns() {
    let server = start(&table("count", ""), &["--check-state"]);
    invoke(&server, "count");
    let log = server.log();
    assert!(log.contains("WARN") && log.contains("no handler sets `check_state = true`"), "{log}");
    assert_eq!(handler_status(&server, "count")["state_checks"], 0);
}
