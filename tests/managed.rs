//! Lambda Managed Instances (`managed_instances = true`, `max_concurrency = N`): one execution
//! environment serves up to N invocations at once, in N processes of one process tree that share the
//! environment's scratch folder; a timeout is answered while the code runs on, a crashed process is
//! replaced without ending the environment, and a request that finds every slot busy gets 429.
//! Overlap is proven with barrier files, never with timing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Reply, Server};
use serde_json::Value;

/// Each invocation marks its arrival in the shared `TMPDIR`, then waits (bounded) until `want`
/// invocations have arrived: only invocations that overlap can all return `met: true`. A `hold`
/// event also waits for a `release` file in the project dir; `crash` ends its process; `group` names
/// the arrivals folder, so that earlier invocations do not count.
const APP: &str = r#"
import json, os, sys, time

INIT_PID = os.getpid()

def handler(event, context):
    event = event or {}
    if event.get("crash"):
        os._exit(3)
    tmp = os.environ.get("TMPDIR", "")
    arrivals = os.path.join(tmp, event.get("group", "arrivals"))
    os.makedirs(arrivals, exist_ok=True)
    open(os.path.join(arrivals, context.aws_request_id), "w").close()
    want = event.get("want", 1)
    deadline = time.time() + 20
    while len(os.listdir(arrivals)) < want and time.time() < deadline:
        time.sleep(0.01)
    met = len(os.listdir(arrivals)) >= want
    release = event.get("hold")
    while release and not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.01)
    done = event.get("done")
    if done:
        open(done, "w").close()
    return {
        "met": met,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "ppid": os.getppid(),
        "tmpdir": tmp,
        "max_concurrency": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY"),
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "log_format": os.environ.get("AWS_LAMBDA_LOG_FORMAT"),
    }
"#;

fn project(python: Option<&str>, runtime: &str, extra: &str) -> String {
    let python = python.map(|p| format!("python = \"{p}\"\n")).unwrap_or_default();
    format!(
        "[tool.smyth]\nport = 0\n{python}\n[tool.smyth.handlers.lmi]\nhandler_path = \"app.handler\"\n\
         url_path = \"/lmi\"\nruntime = \"{runtime}\"\nmanaged_instances = true\n{extra}"
    )
}

fn invoke(server: &Server, event: &Value) -> Reply {
    let body = event.to_string();
    server.request("POST", "/2015-03-31/functions/lmi/invocations", &[], Some(body.as_bytes()))
}

fn environments(server: &Server) -> Vec<Value> {
    server.status()["handlers"]["lmi"]["environments"].as_array().cloned().unwrap_or_default()
}

fn busy_slots(server: &Server) -> usize {
    environments(server)
        .iter()
        .flat_map(|e| e["slots"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["state"] != "idle")
        .count()
}

/// N overlapping invocations, each in its own process of one environment's tree.
fn serves_n_at_once_in_one_environment(python: Option<&str>, runtime: &str) {
    let config = project(python, runtime, "max_concurrency = 3\ntimeout = 30\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let event = serde_json::json!({ "want": 3 });
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..3).map(|_| s.spawn(|| invoke(&server, &event))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let results: Vec<Value> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{r:?}\n{}", server.log());
            assert!(r.header("x-amz-function-error").is_none(), "{r:?}\n{}", server.log());
            r.json()
        })
        .collect();
    for result in &results {
        assert_eq!(result["met"], true, "the three invocations overlapped: {results:?}");
        assert_eq!(result["max_concurrency"], "3");
        assert_eq!(result["init_type"], "lambda-managed-instances");
        assert_eq!(result["log_format"], "JSON");
        assert_eq!(result["tmpdir"], results[0]["tmpdir"], "one scratch folder: {results:?}");
        assert_eq!(result["ppid"], results[0]["ppid"], "one process tree: {results:?}");
        assert_eq!(
            result["init_pid"], result["pid"],
            "each process runs its own init, as AWS's: {results:?}"
        );
    }
    let mut pids: Vec<u64> = results.iter().map(|r| r["pid"].as_u64().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "each invocation in its own process: {results:?}");
    let environments = environments(&server);
    assert_eq!(environments.len(), 1, "{environments:?}");
    assert_eq!(environments[0]["pid"], results[0]["ppid"], "the environment's process is the parent");
    assert_eq!(environments[0]["slots"].as_array().unwrap().len(), 3);
    let tmpdir = results[0]["tmpdir"].as_str().unwrap();
    assert!(Path::new(tmpdir).join("arrivals").is_dir(), "{tmpdir}");
    // A stop takes the whole tree and its scratch folder with it.
    let mut pids: Vec<u32> = pids.iter().map(|p| *p as u32).collect();
    pids.push(results[0]["ppid"].as_u64().unwrap() as u32);
    let mut server = server;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.log());
    common::assert_all_gone(&server, &pids);
    assert!(!Path::new(tmpdir).exists(), "the scratch folder is removed: {tmpdir}");
}

#[test]
fn one_environment_serves_n_invocations_at_once_with_the_bundled_runtime() {
    serves_n_at_once_in_one_environment(None, "python");
}

#[test]
fn one_environment_serves_n_invocations_at_once_with_awslambdaric() {
    let Some(python) = common::tools::python() else { return };
    serves_n_at_once_in_one_environment(Some(&python), "awslambdaric");
}

#[test]
fn a_request_that_finds_every_slot_busy_is_throttled() {
    let config = project(None, "python", "max_concurrency = 2\ntimeout = 30\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let release = server.path().join("release");
    let hold = serde_json::json!({ "hold": release.to_str().unwrap() });
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..2).map(|_| s.spawn(|| invoke(&server, &hold))).collect();
        server.wait_for("both slots busy", Duration::from_secs(20), || busy_slots(&server) == 2);
        let third = invoke(&server, &serde_json::json!({}));
        assert_eq!(third.status, 429, "{third:?}");
        assert_eq!(third.header("x-amzn-errortype"), Some("TooManyRequestsException"), "{third:?}");
        std::fs::write(&release, "").unwrap();
        for call in calls {
            let reply = call.join().unwrap();
            assert_eq!(reply.status, 200, "{reply:?}");
            assert!(reply.header("x-amz-function-error").is_none(), "{reply:?}");
        }
    });
    let after = invoke(&server, &serde_json::json!({}));
    assert_eq!(after.status, 200, "free slots take requests again: {after:?}");
}

#[test]
fn a_timeout_is_answered_while_the_code_runs_on_and_the_slot_is_then_reused() {
    let config = project(None, "python", "max_concurrency = 1\ntimeout = 1\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let release = server.path().join("release");
    let done = server.path().join("done");
    let event = serde_json::json!({ "hold": release.to_str().unwrap(), "done": done.to_str().unwrap() });
    let timed_out = invoke(&server, &event);
    assert_eq!(timed_out.status, 200, "{timed_out:?}");
    assert_eq!(timed_out.header("x-amz-function-error"), Some("Unhandled"), "{timed_out:?}");
    assert_eq!(timed_out.json()["errorType"], "Sandbox.Timedout", "{timed_out:?}");
    // The code was not stopped: its slot is still taken, and a second request is throttled.
    let slots = environments(&server)[0]["slots"].clone();
    assert_eq!(slots[0]["state"], "timed_out", "{slots:?}");
    assert_eq!(invoke(&server, &serde_json::json!({})).status, 429);
    assert!(!done.exists());
    std::fs::write(&release, "").unwrap();
    server.wait_for("the timed-out code to finish", Duration::from_secs(20), || done.exists());
    server.wait_for("the slot to free", Duration::from_secs(20), || busy_slots(&server) == 0);
    let next = invoke(&server, &serde_json::json!({}));
    assert_eq!(next.status, 200, "{next:?}");
    assert!(next.header("x-amz-function-error").is_none(), "the slot is reused: {next:?}");
}

#[test]
fn a_crashed_process_is_replaced_without_ending_the_environment() {
    let config = project(None, "python", "max_concurrency = 2\ntimeout = 30\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let first = invoke(&server, &serde_json::json!({}));
    assert_eq!(first.status, 200, "{first:?}");
    let environment_pid = environments(&server)[0]["pid"].as_u64().unwrap();
    let crashed = invoke(&server, &serde_json::json!({ "crash": true }));
    assert_eq!(crashed.header("x-amz-function-error"), Some("Unhandled"), "{crashed:?}");
    assert_eq!(crashed.json()["errorType"], "Runtime.ExitError", "{crashed:?}");
    // Both slots serve at once again, in the same environment.
    let event = serde_json::json!({ "want": 2, "group": "after-crash" });
    let replies: Vec<Value> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..2).map(|_| s.spawn(|| invoke(&server, &event))).collect();
        calls.into_iter().map(|c| c.join().unwrap().json()).collect()
    });
    for reply in &replies {
        assert_eq!(reply["met"], true, "{replies:?}\n{}", server.log());
        assert_eq!(reply["ppid"], environment_pid, "{replies:?}");
    }
    assert_ne!(replies[0]["pid"], replies[1]["pid"]);
    assert_eq!(environments(&server)[0]["pid"], environment_pid, "the environment lives on");
}

#[test]
fn the_status_shows_each_environment_and_its_slots() {
    let config = project(None, "python", "max_concurrency = 2\nconcurrency = 2\ntimeout = 30\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let before = environments(&server);
    assert_eq!(before.len(), 2, "one per `concurrency`: {before:?}");
    assert_eq!(before[0]["id"], "lmi:0");
    assert_eq!(before[0]["state"], "cold");
    assert_eq!(before[0]["pid"], Value::Null);
    assert_eq!(before[0]["max_concurrency"], 2);
    let release = server.path().join("release");
    let hold = serde_json::json!({ "hold": release.to_str().unwrap() });
    std::thread::scope(|s| {
        let call = s.spawn(|| invoke(&server, &hold));
        let running = || {
            let slots = environments(&server)
                .iter()
                .flat_map(|e| e["slots"].as_array().cloned().unwrap())
                .collect::<Vec<_>>();
            slots.iter().any(|s| s["pid"].is_u64())
        };
        server.wait_for("one slot running in a process", Duration::from_secs(20), running);
        let environments = environments(&server);
        let live = environments.iter().find(|e| e["pid"].is_u64()).expect("a live environment");
        assert_eq!(live["state"], "busy", "{live:?}");
        let slots = live["slots"].as_array().unwrap();
        let busy = slots.iter().find(|s| s["state"] == "busy").expect("a busy slot");
        assert!(busy["request_id"].as_str().is_some_and(|id| id.len() == 36), "{busy:?}");
        assert!(busy["pid"].is_u64(), "the process serving it: {busy:?}");
        let idle = slots.iter().find(|s| s["state"] == "idle").expect("an idle slot");
        assert_eq!(idle["request_id"], Value::Null);
        std::fs::write(&release, "").unwrap();
        assert_eq!(call.join().unwrap().status, 200);
    });
    let tail = server.request(
        "POST",
        "/2015-03-31/functions/lmi/invocations",
        &[("X-Amz-Log-Type", "Tail")],
        Some(b"{}"),
    );
    let log = tail.header("x-amz-log-result").expect("a log result");
    let log =
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, log).unwrap())
            .unwrap();
    assert!(log.starts_with("START RequestId: ") && log.contains("\nREPORT RequestId: "), "{log}");
    let metrics = server.status()["handlers"]["lmi"]["metrics"].clone();
    assert_eq!(metrics["invocations"], 2, "{metrics:?}");
    assert_eq!(metrics["cold_starts"], 1, "{metrics:?}");
    let capacity = server.status()["handlers"]["lmi"]["managed_instances"].clone();
    assert_eq!(capacity["capacity"], 4, "environments × max_concurrency: {capacity:?}");
}

#[test]
fn the_sam_export_puts_the_function_on_a_capacity_provider_and_passes_cfn_lint() {
    let Some(python) = common::tools::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = project(Some(&python), "python", "max_concurrency = 8\n");
    std::fs::write(dir.path().join("pyproject.toml"), config).unwrap();
    std::fs::write(dir.path().join("app.py"), APP).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smyth"))
        .args(["export", "sam"])
        .current_dir(dir.path())
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run smyth export sam");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let template = dir.path().join("template.yaml");
    let text = std::fs::read_to_string(&template).unwrap();
    for expected in [
        "CapacityProviderConfig:",
        "Ref: CapacityProviderArn",
        "PerExecutionEnvironmentMaxConcurrency: 8",
        "LogFormat: JSON",
        "CapacityProviderArn:",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let cfn_lint = Path::new(&python).parent().unwrap().join("cfn-lint");
    assert!(cfn_lint.exists(), "cfn-lint is not in the test venv: make venv installs tests/requirements.txt");
    let lint = std::process::Command::new(&cfn_lint).arg(&template).output().expect("run cfn-lint");
    assert!(lint.status.success(), "cfn-lint: {}\n{text}", String::from_utf8_lossy(&lint.stdout));
}

#[test]
fn an_init_failure_in_the_environments_processes_fails_the_invocation_once() {
    let config = project(None, "python", "max_concurrency = 3\n");
    let broken = "import no_such_module_here\n\ndef handler(event, context):\n    return 1\n";
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", broken)]);
    for _ in 0..2 {
        let reply = invoke(&server, &serde_json::json!({}));
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("x-amz-function-error"), Some("Unhandled"), "{reply:?}");
        assert_eq!(reply.json()["errorType"], "Runtime.ImportModuleError", "{reply:?}\n{}", server.log());
    }
    server.wait_for("the environment to be cold again", Duration::from_secs(10), || {
        environments(&server)[0]["pid"].is_null()
    });
}

#[test]
fn managed_invocations_are_recorded_with_their_environment() {
    let config = project(None, "python", "max_concurrency = 2\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let first = invoke(&server, &serde_json::json!({}));
    let second = invoke(&server, &serde_json::json!({}));
    assert_eq!((first.status, second.status), (200, 200));
    let ids: Vec<String> =
        [&first, &second].iter().map(|r| r.header("x-amzn-RequestId").unwrap().to_string()).collect();
    let recorded = |id: &str| server.request("GET", &format!("/_smyth/invocations/{id}"), &[], None);
    server.wait_for("both invocations recorded", Duration::from_secs(10), || {
        ids.iter().all(|id| recorded(id).status == 200)
    });
    let rows: Vec<Value> = ids.iter().map(|id| recorded(id).json()).collect();
    let pid = environments(&server)[0]["pid"].clone();
    for row in &rows {
        assert_eq!(row["handler"], "lmi", "{row}");
        assert_eq!(row["worker_name"], "lmi:0", "{row}");
        assert_eq!(row["status"], "ok", "{row}");
        assert_eq!(row["source"], "invoke", "{row}");
        assert_eq!(row["pid"], pid, "the environment's process: {row}");
    }
    assert_eq!((rows[0]["cold"].clone(), rows[1]["cold"].clone()), (Value::Bool(true), Value::Bool(false)));
    assert!(rows[0]["init_ms"].is_number(), "{}", rows[0]);
}
