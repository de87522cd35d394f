//! SnapStart (`snap_start = true`): one init as a template, every environment restored from it, with
//! the real `snapshot_restore_py` hooks in AWS's orders, with the bundled runtime (a `fork()` of the
//! template) and with awslambdaric (`/runtime/restore/next`).

mod common;

use std::time::{Duration, Instant};

use common::{assert_all_gone, Server};
use serde_json::Value;

/// Registers hooks in both forms (decorator and call, with arguments); records the order they ran
/// in, and the number of imports in `imports.log`.
const APP: &str = r#"
import os, random
from snapshot_restore_py import register_before_snapshot, register_after_restore

VERSION = 1
EVENTS = ["import"]
with open("imports.log", "a") as f:
    f.write("%d\n" % os.getpid())

def mark(tag):
    EVENTS.append(tag)

register_before_snapshot(mark, "before:1")

@register_before_snapshot
def before_two():
    EVENTS.append("before:2")

@register_after_restore
def after_one():
    EVENTS.append("after:1")

register_after_restore(mark, tag="after:2")

def handler(event, context):
    return {
        "events": EVENTS,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "runtime_api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        "draw": random.random(),
        "version": VERSION,
    }
"#;

/// The same draw from `random` in every restored environment, unless a hook reseeds.
const RESEED: &str = r#"
import random
from snapshot_restore_py import register_after_restore
register_after_restore(random.seed)

def handler(event, context):
    return {"draw": random.random()}
"#;

const BEFORE_FAILS: &str = r#"
from snapshot_restore_py import register_before_snapshot

@register_before_snapshot
def boom():
    raise RuntimeError("before-snapshot hook failed")

def handler(event, context):
    return "unreachable"
"#;

const AFTER_FAILS: &str = r#"
from snapshot_restore_py import register_after_restore

@register_after_restore
def boom():
    raise RuntimeError("after-restore hook failed")

def handler(event, context):
    return "unreachable"
"#;

const AFTER_HANGS: &str = r#"
import time
from snapshot_restore_py import register_after_restore

@register_after_restore
def slow():
    time.sleep(30)

def handler(event, context):
    return "unreachable"
"#;

const RUNTIMES: [&str; 2] = ["python", "awslambdaric"];

/// A project with the test venv's Python (it has `snapshot_restore_py` and awslambdaric) and one
/// SnapStart handler per `(name, module, extra keys)`.
fn serve(python: &str, runtime: &str, handlers: &[(&str, &str, &str)], files: &[(&str, &str)]) -> Server {
    serve_with_env(python, runtime, handlers, files, &[])
}

fn serve_with_env(
    python: &str,
    runtime: &str,
    handlers: &[(&str, &str, &str)],
    files: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Server {
    let mut config = format!("[tool.smyth]\nport = 0\npython = \"{python}\"\n");
    for (name, module, extra) in handlers {
        config.push_str(&format!(
            "\n[tool.smyth.handlers.{name}]\nhandler_path = \"{module}.handler\"\nurl_path = \"/{name}\"\n\
             snap_start = true\nruntime = \"{runtime}\"\n{extra}\n"
        ));
    }
    let mut all = vec![("pyproject.toml", config.as_str())];
    all.extend_from_slice(files);
    Server::start_with_env(&all, env)
}

fn ok(server: &Server, path: &str) -> Value {
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    reply.json()
}

fn report_lines(server: &Server) -> Vec<String> {
    server.log().lines().filter(|l| l.contains("REPORT RequestId:")).map(str::to_string).collect()
}

#[test]
fn hooks_run_in_awss_order_with_both_runtimes() {
    let Some(python) = common::tools::python() else { return };
    for runtime in RUNTIMES {
        let server = serve(&python, runtime, &[("app", "app", "")], &[("app.py", APP)]);
        let first = ok(&server, "/app");
        assert_eq!(
            first["events"],
            serde_json::json!(["import", "before:2", "before:1", "after:1", "after:2"]),
            "{runtime}: before-snapshot hooks in reverse registration order, after-restore in order"
        );
        assert_eq!(first["init_type"], "snap-start", "{runtime}");
        let second = ok(&server, "/app");
        assert_eq!(second["pid"], first["pid"], "{runtime}: a restored environment stays warm");
        assert_eq!(second["events"], first["events"], "{runtime}: the hooks ran once");
        // Not refused below 3.12: one INFO says AWS will need it.
        let old = std::process::Command::new(&python)
            .args(["-c", "import sys; sys.exit(sys.version_info < (3, 12))"])
            .status()
            .unwrap()
            .code()
            == Some(1);
        let said = |server: &Server| server.log().matches("AWS needs Python 3.12 or later").count();
        if old {
            server.wait_for("the Python version INFO", Duration::from_secs(10), || said(&server) == 1);
        }
        assert_eq!(said(&server), usize::from(old), "{runtime}: {}", server.log());
    }
}

#[test]
fn hook_failures_have_awss_types_and_exit_codes() {
    let Some(python) = common::tools::python() else { return };
    for runtime in RUNTIMES {
        let handlers = [("before", "before_fails", ""), ("after", "after_fails", "")];
        let files = [("before_fails.py", BEFORE_FAILS), ("after_fails.py", AFTER_FAILS)];
        let server = serve(&python, runtime, &handlers, &files);
        for (path, error_type, message, exit) in [
            ("/before", "Runtime.BeforeSnapshotError", "before-snapshot hook failed", "exit status 64"),
            ("/after", "Runtime.AfterRestoreError", "after-restore hook failed", "exit status 65"),
        ] {
            let reply = server.get(path);
            assert_eq!(reply.status, 502, "{runtime} {path}: {reply:?}\n{}", server.log());
            assert_eq!(reply.json()["errorType"], error_type, "{runtime} {path}: {reply:?}");
            assert!(reply.json()["errorMessage"].as_str().unwrap().contains(message), "{reply:?}");
            server.wait_for(&format!("{runtime} {path} {exit}"), Duration::from_secs(10), || {
                server.log().lines().any(|l| l.contains(exit) && l.contains(&path[1..]))
            });
        }
    }
}

#[test]
fn an_after_restore_hook_over_10_s_is_a_snapstart_timeout() {
    let Some(python) = common::tools::python() else { return };
    let handlers = [("slow", "after_hangs", "timeout = 30"), ("slower", "after_hangs", "timeout = 30")];
    let server = serve(&python, "python", &handlers, &[("after_hangs.py", AFTER_HANGS)]);
    let (route, invoke) = std::thread::scope(|s| {
        let route = s.spawn(|| server.get("/slow"));
        let path = "/2015-03-31/functions/slower/invocations";
        let invoke = s.spawn(|| server.request("POST", path, &[], Some(b"{}")));
        (route.join().unwrap(), invoke.join().unwrap())
    });
    assert_eq!(route.json()["errorType"], "SnapStartTimeoutException", "{route:?}\n{}", server.log());
    assert_eq!(invoke.status, 408, "the Invoke API's own error, as AWS's: {invoke:?}");
    assert_eq!(invoke.header("x-amzn-ErrorType"), Some("SnapStartTimeoutException"), "{invoke:?}");
}

#[test]
fn a_restored_environment_reports_restore_duration_and_init_report_carries_the_init() {
    let Some(python) = common::tools::python() else { return };
    for runtime in RUNTIMES {
        let server = serve(&python, runtime, &[("app", "app", "")], &[("app.py", APP)]);
        ok(&server, "/app");
        server.wait_for("a REPORT line", Duration::from_secs(10), || !report_lines(&server).is_empty());
        let report = &report_lines(&server)[0];
        assert!(report.contains("\tRestore Duration: "), "{runtime}: {report}");
        assert!(report.contains(" ms\tBilled Restore Duration: "), "{runtime}: {report}");
        assert!(!report.contains("Init Duration"), "{runtime}: {report}");
        let log = server.log();
        let init = log.lines().find(|l| l.contains("INIT_REPORT Init Duration: "));
        assert!(init.is_some_and(|l| l.contains("Phase: init")), "{runtime}: {log}");
    }
}

#[test]
fn restored_environments_share_randoms_state_unless_a_hook_reseeds() {
    let Some(python) = common::tools::python() else { return };
    let handlers =
        [("app", "app", "strategy = \"always_cold\""), ("reseed", "reseed", "strategy = \"always_cold\"")];
    let server = serve(&python, "python", &handlers, &[("app.py", APP), ("reseed.py", RESEED)]);
    let (a, b) = (ok(&server, "/app"), ok(&server, "/app"));
    assert_ne!(a["pid"], b["pid"], "always_cold: two environments");
    assert_eq!(a["draw"], b["draw"], "both start from the snapshot's random state");
    let (c, d) = (ok(&server, "/reseed"), ok(&server, "/reseed"));
    assert_ne!(c["draw"], d["draw"], "an after-restore hook reseeded");
}

#[test]
fn always_cold_serves_every_invocation_from_a_fresh_restore_of_one_init() {
    let Some(python) = common::tools::python() else { return };
    let server =
        serve(&python, "python", &[("app", "app", "strategy = \"always_cold\"")], &[("app.py", APP)]);
    let replies: Vec<Value> = (0..4).map(|_| ok(&server, "/app")).collect();
    let mut pids: Vec<_> = replies.iter().map(|r| r["pid"].as_u64().unwrap()).collect();
    pids.dedup();
    assert_eq!(pids.len(), 4, "a fresh environment each time: {replies:?}");
    assert!(replies.iter().all(|r| r["ppid"] == replies[0]["ppid"]), "one template: {replies:?}");
    assert!(replies.iter().all(|r| r["events"][4] == "after:2"), "each ran the after-restore hooks");
    let imports = std::fs::read_to_string(server.path().join("imports.log")).unwrap();
    assert_eq!(imports.lines().count(), 1, "the handler was imported once: {imports}");
}

#[test]
fn a_forks_cold_start_is_measured() {
    let Some(python) = common::tools::python() else { return };
    let server =
        serve(&python, "python", &[("app", "app", "strategy = \"always_cold\"")], &[("app.py", APP)]);
    ok(&server, "/app"); // the template's init
    let mut times: Vec<Duration> = (0..9)
        .map(|_| {
            let started = Instant::now();
            ok(&server, "/app");
            started.elapsed()
        })
        .collect();
    times.sort();
    let imports = std::fs::read_to_string(server.path().join("imports.log")).unwrap();
    assert_eq!(imports.lines().count(), 1, "ten environments, one import: {imports}");
    eprintln!("a restored environment's cold start, request to response: median {:?}", times[4]);
}

#[test]
fn a_reload_re_creates_the_template() {
    let Some(python) = common::tools::python() else { return };
    let server = serve(&python, "python", &[("app", "app", "")], &[("app.py", APP)]);
    let before = ok(&server, "/app");
    assert_eq!(before["version"], 1);
    std::fs::write(server.path().join("app.py"), APP.replace("VERSION = 1", "VERSION = 2")).unwrap();
    let mut after = before.clone();
    server.wait_for("the new code", Duration::from_secs(20), || {
        after = ok(&server, "/app");
        after["version"] == 2
    });
    assert_ne!(after["ppid"], before["ppid"], "a new template: {before} {after}");
    let imports = std::fs::read_to_string(server.path().join("imports.log")).unwrap();
    assert_eq!(imports.lines().count(), 2, "one import per template: {imports}");
}

#[test]
fn forked_environments_are_contained_and_their_runtime_api_refuses_outsiders() {
    let Some(python) = common::tools::python() else { return };
    // The cgroup, and the subreaper fallback: either way the template and its forks die with a
    // SIGKILLed server.
    for env in [&[][..], &[("SMYTH_DISABLE_CGROUP", "1")][..]] {
        let mut server = serve_with_env(&python, "python", &[("app", "app", "")], &[("app.py", APP)], env);
        let reply = ok(&server, "/app");
        let (pid, template) = (reply["pid"].as_u64().unwrap() as u32, reply["ppid"].as_u64().unwrap() as u32);
        assert_ne!(template, server.pid(), "the environment is a fork of the template");
        // The test is outside the environment's process tree: its call is refused and changes nothing.
        let address = reply["runtime_api"].as_str().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let next = format!("http://{address}/2018-06-01/runtime/invocation/next");
        assert_eq!(agent.get(next).call().unwrap().status().as_u16(), 403, "{env:?}");
        assert_eq!(ok(&server, "/app")["pid"], pid, "the environment still serves");
        server.signal(nix::sys::signal::Signal::SIGKILL);
        server.wait_exit(Duration::from_secs(10));
        assert_all_gone(&server, &[pid, template]);
    }
}

#[test]
fn a_template_whose_init_hangs_is_killed_at_init_timeout() {
    let Some(python) = common::tools::python() else { return };
    let hangs = "import time\ntime.sleep(60)\n\ndef handler(event, context):\n    return 1\n";
    let server = serve(&python, "python", &[("hangs", "hangs", "init_timeout = 1")], &[("hangs.py", hangs)]);
    let reply = server.get("/hangs");
    assert_eq!(reply.status, 502, "{reply:?}\n{}", server.log());
    assert_eq!(reply.json()["errorType"], "Sandbox.Timedout", "{reply:?}");
}

#[test]
fn a_clean_stop_ends_the_template_and_its_environments() {
    let Some(python) = common::tools::python() else { return };
    let mut server = serve(&python, "python", &[("app", "app", "concurrency = 2")], &[("app.py", APP)]);
    let reply = ok(&server, "/app");
    let (pid, template) = (reply["pid"].as_u64().unwrap() as u32, reply["ppid"].as_u64().unwrap() as u32);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0), "{}", server.log());
    assert_all_gone(&server, &[pid, template]);
}

#[test]
fn a_reload_while_the_template_initialises_drops_no_request() {
    let Some(python) = common::tools::python() else { return };
    let slow = "import os, time\nVERSION = 1\nwith open(\"imports.log\", \"a\") as f:\n    f.write(\"%d\\n\" % os.getpid())\ntime.sleep(1.5)\n\ndef handler(event, context):\n    return {\"version\": VERSION}\n";
    let server = serve(&python, "python", &[("slow", "slow", "")], &[("slow.py", slow)]);
    let reply = std::thread::scope(|s| {
        let request = s.spawn(|| server.get("/slow"));
        server.wait_for("the template's import", Duration::from_secs(20), || {
            server.path().join("imports.log").exists()
        });
        std::fs::write(server.path().join("slow.py"), slow.replace("VERSION = 1", "VERSION = 2")).unwrap();
        request.join().unwrap()
    });
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    assert_eq!(reply.json()["version"], 2, "served by the new template: {reply:?}");
}

/// Returns its Runtime API address; given `?peers=a,b`, posts a result to the other one's port.
const SIBLING: &str = r#"
import http.client, json, os, time

def handler(event, context):
    own = os.environ["AWS_LAMBDA_RUNTIME_API"]
    peers = (event.get("queryStringParameters") or {}).get("peers")
    if not peers:
        time.sleep(0.5)
        return {"address": own}
    other = [p for p in peers.split(",") if p != own][0]
    host, port = other.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/2018-06-01/runtime/invocation/not-an-id/response", body=b"{}")
    resp = conn.getresponse()
    return {"status": resp.status, "body": json.loads(resp.read())}
"#;

#[test]
fn a_sibling_fork_of_the_same_template_is_refused_on_another_environments_port() {
    let Some(python) = common::tools::python() else { return };
    let server =
        serve(&python, "python", &[("sib", "sibling", "concurrency = 2")], &[("sibling.py", SIBLING)]);
    ok(&server, "/sib"); // the template
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ok(&server, "/sib"));
        let b = s.spawn(|| ok(&server, "/sib"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let peers = format!("{},{}", a["address"].as_str().unwrap(), b["address"].as_str().unwrap());
    assert_ne!(a["address"], b["address"], "two environments");
    let probe = ok(&server, &format!("/sib?peers={peers}"));
    assert_eq!(probe["status"], 403, "{probe}");
    assert_eq!(probe["body"]["errorType"], "AccessDeniedException", "{probe}");
}
