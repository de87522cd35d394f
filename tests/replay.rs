//! `smyth replay`: a recorded invocation's event re-run against the current code, fresh or warm,
//! through a running server's API or alone, and `--failed` after a fix. The invocations are
//! recorded by the server itself; one old failure is added to its record by hand.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::tools::run_bounded;
use common::{pyproject, Server};

const COUNT: &str = r#"
COUNT = 0

def count(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT}
"#;

const BROKEN: &str = r#"
def flaky(event, context):
    raise ValueError("broken: " + event["item"])
"#;

const FIXED: &str = r#"
def flaky(event, context):
    return {"item": event["item"], "ok": True}
"#;

fn table(name: &str) -> String {
    format!("[tool.smyth.handlers.{name}]\nhandler_path = \"app.{name}\"\nurl_path = \"/{name}\"\n")
}

/// One row of the recorder's `invocations` table.
struct Row {
    id: String,
    seq: i64,
    handler: String,
    pid: u64,
    status: &'static str,
    started_at_ms: i64,
    event: String,
    /// The Invoke API's answer: the result, or the error body.
    answer: serde_json::Value,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Adds `row` to the record of the stopped server in `project`, as the recorder would have.
fn record_by_hand(project: &Path, row: &Row) {
    let db = rusqlite::Connection::open(project.join(".smyth/invocations.db")).unwrap();
    db.execute(
        "INSERT INTO invocations (id, seq, handler, worker, pid, cold, source, started_at_ms, run_ms, status,
         event, error_type, error_message, log) VALUES (?1, ?2, ?3, 0, ?4, 0, 'invoke', ?5, 1.0, ?6, ?7, ?8, ?9, '')",
        rusqlite::params![
            row.id,
            row.seq,
            row.handler,
            row.pid as i64,
            row.started_at_ms,
            row.status,
            row.event.as_bytes(),
            row.answer["errorType"].as_str(),
            row.answer["errorMessage"].as_str()
        ],
    )
    .unwrap();
}

/// Waits (bounded) until the server's record has the invocation `id`.
fn wait_recorded(server: &Server, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if server.request("GET", &format!("/_smyth/invocations/{id}"), &[], None).status == 200 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{id} was never recorded\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Invokes `name` with `event` through the Invoke API, once it is recorded: what the record has of it.
fn invoke_and_record(server: &Server, name: &str, event: &str, seq: i64) -> Row {
    let reply = server.request(
        "POST",
        &format!("/2015-03-31/functions/{name}/invocations"),
        &[],
        Some(event.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let pid = server.workers(name)[0]["pid"].as_u64().expect("a live worker");
    let id = reply.header("x-amzn-RequestId").unwrap().to_string();
    wait_recorded(server, &id);
    Row {
        id,
        seq,
        handler: name.into(),
        pid,
        status: if reply.header("x-amz-function-error").is_some() { "error" } else { "ok" },
        started_at_ms: now_ms(),
        event: event.into(),
        answer: reply.json(),
    }
}

/// `smyth replay ARGS` in `project`, bounded.
fn replay(project: &Path, args: &[&str]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_smyth"))
            .arg("replay")
            .args(args)
            .current_dir(project)
            .env_remove("VIRTUAL_ENV")
            .env("TMPDIR", scratch.path()),
        Duration::from_secs(60),
    )
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Stops the server (its project dir stays) and checks its workers are gone.
fn stop(server: &mut Server) {
    let pids = server.worker_pids();
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    common::assert_all_gone(server, &pids);
}

/// Three COUNT invocations on one worker, recorded; the server still runs.
fn counted() -> (Server, Vec<Row>) {
    let server = Server::start(&[("pyproject.toml", &pyproject(&table("count"))), ("app.py", COUNT)]);
    let rows: Vec<Row> = (1..=3).map(|seq| invoke_and_record(&server, "count", "{}", seq)).collect();
    assert_eq!(rows[2].answer, serde_json::json!({"count": 3}));
    (server, rows)
}

#[test]
fn fresh_and_warm_replays_through_the_running_server_differ_with_the_diff_shown() {
    let (server, rows) = counted();
    let port = server.port.to_string();
    let pool_pid = rows[2].pid;

    let fresh = replay(server.path(), &[&rows[2].id, "--port", &port]);
    let (out, err) = text(&fresh);
    assert!(fresh.status.success(), "{out}\n{err}\n{}", server.log());
    assert!(err.contains("replaying on the running server"), "{err}");
    assert!(out.contains(&format!("replay of {} on count (fresh environment)", rows[2].id)), "{out}");
    assert!(out.contains("recorded  {\"count\":3}"), "{out}");
    assert!(out.contains("replayed  {\"count\":1}"), "{out}");
    assert!(out.contains(r#"diff      [{"op":"replace","path":"/count","value":1}]"#), "{out}");

    let warm = replay(server.path(), &[&rows[2].id, "--warm", "--port", &port]);
    let (out, err) = text(&warm);
    assert!(warm.status.success(), "{out}\n{err}");
    assert!(out.contains("(warm environment, after 2 earlier invocations)"), "{out}");
    assert!(out.contains("replayed  {\"count\":3}"), "{out}");
    assert!(out.contains("diff      none: the same result"), "{out}");

    // The replays ran on a shadow environment: the pool's one worker kept its process and count.
    let workers = server.workers("count");
    assert_eq!(workers.len(), 1);
    assert_eq!((workers[0]["pid"].as_u64(), workers[0]["invocations"].as_u64()), (Some(pool_pid), Some(3)));
    let next = server.request("POST", "/2015-03-31/functions/count/invocations", &[], Some(b"{}"));
    assert_eq!(next.json(), serde_json::json!({"count": 4}));

    // The API the CLI used, directly: JSON, and a clear 404 for an id never recorded.
    let api = server.request("POST", &format!("/_smyth/replay/{}?mode=warm", rows[1].id), &[], None);
    assert_eq!(api.status, 200, "{}", api.body);
    let report = api.json();
    assert_eq!((report["replayed"]["count"].as_i64(), report["mode"].as_str()), (Some(2), Some("warm")));
    assert_eq!(report["replayed_before"], serde_json::json!([rows[0].id]));
    let missing = server.request("POST", "/_smyth/replay/no-such-id", &[], None);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("no recorded invocation `no-such-id`"), "{}", missing.body);
}

#[test]
fn a_replay_alone_starts_the_handler_itself() {
    let (mut server, rows) = counted();
    let project = server.path().to_path_buf();
    stop(&mut server);

    let fresh = replay(&project, &[&rows[2].id]);
    let (out, err) = text(&fresh);
    assert!(fresh.status.success(), "{out}\n{err}");
    assert!(err.contains("no server answering: replaying alone"), "{err}");
    assert!(out.contains("replayed  {\"count\":1}") && out.contains("\"path\":\"/count\""), "{out}");

    let warm = replay(&project, &[&rows[2].id, "--warm"]);
    let (out, err) = text(&warm);
    assert!(warm.status.success(), "{out}\n{err}");
    assert!(out.contains("replayed  {\"count\":3}") && out.contains("diff      none"), "{out}");
}

#[test]
fn failed_invocations_pass_once_the_code_is_fixed() {
    let server = Server::start(&[("pyproject.toml", &pyproject(&table("flaky"))), ("app.py", BROKEN)]);
    let mut rows = vec![
        invoke_and_record(&server, "flaky", r#"{"item": "a"}"#, 1),
        invoke_and_record(&server, "flaky", r#"{"item": "b"}"#, 2),
    ];
    assert!(
        rows.iter().all(|r| r.status == "error"),
        "{:?}",
        rows.iter().map(|r| &r.answer).collect::<Vec<_>>()
    );
    // A failure of an hour ago, on a handler since removed: outside `--since 10m`.
    rows.push(Row {
        id: "an-hour-ago".into(),
        seq: 3,
        handler: "removed".into(),
        pid: 1,
        status: "error",
        started_at_ms: now_ms() - 3_600_000,
        event: "{}".into(),
        answer: serde_json::json!({"errorType": "KeyError", "errorMessage": "old"}),
    });
    let project = server.path().to_path_buf();
    let mut server = server;
    stop(&mut server);
    record_by_hand(&project, &rows[2]);

    let before = replay(&project, &["--failed", "--since", "10m"]);
    let (out, err) = text(&before);
    assert_eq!(before.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains(&format!("still fails {} flaky", rows[0].id)), "{out}");
    assert!(out.contains("ValueError") && out.contains("0 of 2 failed invocations now pass"), "{out}");
    assert!(!out.contains("an-hour-ago"), "{out}");

    std::fs::write(project.join("app.py"), FIXED).unwrap();
    let after = replay(&project, &["--failed", "--since", "10m"]);
    let (out, err) = text(&after);
    assert!(after.status.success(), "{out}\n{err}");
    assert!(out.contains(&format!("passes      {} flaky", rows[0].id)), "{out}");
    assert!(out.contains(&format!("passes      {} flaky", rows[1].id)), "{out}");
    assert!(out.contains("2 of 2 failed invocations now pass"), "{out}");

    // Without --since, the old failure on a removed handler is replayed too, and cannot pass.
    let all = replay(&project, &["--failed"]);
    let (out, _) = text(&all);
    assert_eq!(all.status.code(), Some(1), "{out}");
    assert!(out.contains("not replayed an-hour-ago removed") && out.contains("2 of 3"), "{out}");
}
