//! Every invocation recorded in SQLite (`.smyth/invocations.db`): each field of each kind of
//! invocation (route, Invoke API, async, `smyth invoke`), the `record_keep` cap, the cut of a large
//! body, a read-only database, `smyth invocations` and `show`, and the dashboard's list in Chromium.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{pyproject, Server};
use serde_json::Value;

const APP: &str = r#"
def echo(event, context):
    print("echo line one")
    print("echo line two", flush=True)
    return {"statusCode": 200, "body": context.aws_request_id}

def plain(event, context):
    print("plain says hi")
    return {"id": context.aws_request_id, "event": event}

def fail(event, context):
    print("about to fail")
    raise ValueError("nope " + context.aws_request_id)

def size(event, context):
    return {"id": context.aws_request_id, "size": len(event.get("data", ""))}
"#;

const HANDLERS: &str = r#"
[tool.smyth.handlers.echo]
handler_path = "app.echo"
url_path = "/echo"

[tool.smyth.handlers.plain]
handler_path = "app.plain"
url_path = "/plain"
event_format = "raw"

[tool.smyth.handlers.fail]
handler_path = "app.fail"
url_path = "/fail"

[tool.smyth.handlers.size]
handler_path = "app.size"
url_path = "/size"
event_format = "raw"
timeout = 10
"#;

fn serve(extra: &str) -> Server {
    let config = pyproject(HANDLERS).replacen("port = 0\n", &format!("port = 0\n{extra}"), 1);
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The record of `id`, once the writer has it (with its log, when `log` is given).
fn record(server: &Server, id: &str, log: Option<&str>) -> Value {
    let mut found = Value::Null;
    server.wait_for(&format!("the record of {id}"), Duration::from_secs(10), || {
        let reply = server.get(&format!("/_smyth/invocations/{id}"));
        found = if reply.status == 200 { reply.json() } else { Value::Null };
        !found.is_null() && log.is_none_or(|l| found["log"].as_str().unwrap_or_default().contains(l))
    });
    found
}

fn list(server: &Server, query: &str) -> Vec<Value> {
    server.get(&format!("/_smyth/invocations{query}")).json()["invocations"].as_array().cloned().unwrap()
}

#[test]
fn a_route_invocation_is_recorded_with_every_field() {
    let server = serve("");
    let before = now_ms();
    let reply = server.request("POST", "/echo?colour=red&n=1", &[("x-probe", "yes")], Some(b"{\"a\": 1}"));
    assert_eq!(reply.status, 200);
    let id = reply.body.clone();
    let row = record(&server, &id, Some("echo line two"));
    let pid = server.workers("echo")[0]["pid"].as_u64().unwrap();
    assert_eq!(row["id"], id.as_str());
    assert!(row["seq"].as_i64().unwrap() >= 1, "{row}");
    assert_eq!(row["handler"], "echo");
    assert_eq!(row["worker"], 0);
    assert_eq!(row["worker_name"], "echo:0");
    assert_eq!(row["pid"].as_u64(), Some(pid));
    assert_eq!(row["cold"], true);
    assert!(row["tenant"].is_null());
    assert_eq!(row["source"], "http");
    let started = row["started_at_ms"].as_i64().unwrap();
    assert!(started >= before - 1 && started <= now_ms(), "{row}");
    assert!(row["init_ms"].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["run_ms"].as_f64().unwrap() > 0.0, "{row}");
    assert_eq!(row["status"], "ok");
    let event: Value = serde_json::from_str(row["event"].as_str().unwrap()).unwrap();
    assert_eq!(event["rawPath"], "/echo");
    assert_eq!(event["body"], "{\"a\": 1}");
    let result: Value = serde_json::from_str(row["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["body"], id.as_str());
    assert!(row["error_type"].is_null() && row["error_message"].is_null() && row["error_stack"].is_null());
    let log = row["log"].as_str().unwrap();
    assert!(log.contains("echo line one\necho line two\n"), "{log}");
    let request = &row["http_request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/echo");
    assert_eq!(request["query"], "colour=red&n=1");
    assert_eq!(request["headers"]["x-probe"], "yes");
    assert_eq!(request["body"], "{\"a\": 1}");
    assert!(row["chaos"].is_null());

    // The same worker again: warm, no init.
    let again = server.request("GET", "/echo", &[], None).body;
    let warm = record(&server, &again, None);
    assert_eq!((warm["cold"].as_bool(), warm["init_ms"].is_null()), (Some(false), true), "{warm}");
    assert!(warm["seq"].as_i64() > row["seq"].as_i64());

    // A handler that raises: its error's type, message and stack.
    let failed = server.get("/fail");
    assert_eq!(failed.status, 502);
    let mut rows = Vec::new();
    server.wait_for("the failed invocation's record", Duration::from_secs(10), || {
        rows = list(&server, "?handler=fail");
        !rows.is_empty()
    });
    let row = record(&server, rows[0]["id"].as_str().unwrap(), Some("about to fail"));
    assert_eq!(row["status"], "error");
    assert_eq!(row["error_type"], "ValueError");
    assert_eq!(row["error_message"], format!("nope {}", row["id"].as_str().unwrap()));
    assert!(row["error_stack"].as_array().is_some_and(|s| !s.is_empty()), "{row}");
    assert!(row["result"].is_null());
    let failed_only = list(&server, "?failed=1");
    assert!(failed_only.iter().all(|r| r["status"] != "ok") && !failed_only.is_empty());

    // `.smyth/` was made by smyth: git ignores it.
    let ignore = std::fs::read_to_string(server.path().join(".smyth/.gitignore")).unwrap();
    assert_eq!(ignore.trim(), "*");
}

#[test]
fn invoke_api_and_async_invocations_are_recorded() {
    let server = serve("");
    let path = "/2015-03-31/functions/plain/invocations";
    let reply =
        server.request("POST", path, &[("content-type", "application/json")], Some(b"{\"k\": \"v\"}"));
    assert_eq!(reply.status, 200);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let row = record(&server, &id, Some("plain says hi"));
    assert_eq!(row["source"], "invoke");
    assert_eq!(row["handler"], "plain");
    assert_eq!(row["event"], "{\"k\": \"v\"}");
    assert_eq!(row["status"], "ok");
    assert_eq!(row["http_request"]["path"], path);
    assert_eq!(row["http_request"]["method"], "POST");
    assert_eq!(row["cold"], true);

    let event = [("x-amz-invocation-type", "Event")];
    let accepted = server.request("POST", path, &event, Some(b"{\"async\": true}"));
    assert_eq!(accepted.status, 202);
    // As on AWS, the id of the 202 is the handler's request id: the record is found under it.
    let row = record(&server, accepted.header("x-amzn-RequestId").unwrap(), Some("plain says hi"));
    assert_eq!(row["source"], "async");
    assert_eq!(row["event"], "{\"async\": true}");
    assert_eq!((row["status"].as_str(), row["cold"].as_bool()), (Some("ok"), Some(false)), "{row}");
    let result: Value = serde_json::from_str(row["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["id"], row["id"], "the record's id is the handler's request id");
}

fn smyth(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = common::tools::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_smyth")).args(args).current_dir(dir),
        Duration::from_secs(60),
    );
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn smyth_invoke_is_recorded_and_smyth_invocations_reads_it_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), pyproject(HANDLERS)).unwrap();
    std::fs::write(dir.path().join("app.py"), APP).unwrap();
    std::fs::write(dir.path().join("event.json"), "{\"from\": \"cli\"}").unwrap();
    let (ok, out, err) = smyth(dir.path(), &["invoke", "plain", "--event", "event.json"]);
    assert!(ok, "{out}{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_string();
    let (ok, out, _) = smyth(dir.path(), &["invoke", "fail"]);
    assert!(!ok, "{out}");

    let (ok, out, err) = smyth(dir.path(), &["invocations", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0]["handler"].as_str(), rows[0]["status"].as_str()), (Some("fail"), Some("error")));
    let row = &rows[1];
    assert_eq!((row["id"].as_str(), row["source"].as_str()), (Some(id.as_str()), Some("cli")));
    assert_eq!((row["worker"].as_i64(), row["cold"].as_bool()), (Some(0), Some(true)));

    // The table, its filters, and `show`.
    let (ok, table, _) = smyth(dir.path(), &["invocations"]);
    assert!(ok);
    let header = table.lines().next().unwrap();
    for column in ["ID", "TIME", "HANDLER", "WORKER", "START", "DURATION", "STATUS"] {
        assert!(header.contains(column), "{table}");
    }
    let line = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("plain") && line.contains("plain:0") && line.contains("cold") && line.contains(" ok")
    );
    assert!(table.contains("error (ValueError)"), "{table}");
    let (_, failed, _) = smyth(dir.path(), &["invocations", "--failed", "--json"]);
    let failed: Vec<Value> = serde_json::from_str(&failed).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["handler"], "fail");
    let (_, only, _) = smyth(dir.path(), &["invocations", "--handler", "plain", "--json"]);
    let only: Vec<Value> = serde_json::from_str(&only).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["id"], id.as_str());
    let (_, one, _) = smyth(dir.path(), &["invocations", "--limit", "1", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&one).unwrap().len(), 1);

    let (ok, shown, err) = smyth(dir.path(), &["invocations", "show", &id]);
    assert!(ok, "{err}");
    for part in ["plain:0", "cli", "{\"from\": \"cli\"}", "--- log", "plain says hi", "--- result"] {
        assert!(shown.contains(part), "`{part}` missing from:\n{shown}");
    }
    let (ok, shown, _) = smyth(dir.path(), &["invocations", "show", &id, "--json"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["event"], "{\"from\": \"cli\"}");
    assert!(shown["log"].as_str().unwrap().contains("plain says hi"), "{shown}");
    let (ok, _, err) = smyth(dir.path(), &["invocations", "show", "no-such-id"]);
    assert!(!ok && err.contains("no invocation `no-such-id`"), "{err}");
}

#[test]
fn only_the_newest_record_keep_invocations_are_kept() {
    let server = serve("record_keep = 5\n");
    let mut ids = Vec::new();
    for i in 0..12 {
        let body = format!("{{\"i\": {i}}}");
        ids.push(
            server.request("POST", "/plain", &[], Some(body.as_bytes())).json()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let last = ids.last().unwrap().clone();
    record(&server, &last, None);
    let rows = list(&server, "?limit=100");
    let kept: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let newest: Vec<&str> = ids.iter().rev().take(5).map(String::as_str).collect();
    assert_eq!(kept, newest);
}

/// The writer gathers rows for up to a second under load; a read waits for it to commit what it
/// holds, so one read right after the answers lists them all (no polling).
#[test]
fn a_read_right_after_a_burst_lists_every_invocation_answered() {
    let server = serve("");
    let ids: Vec<String> = (0..64)
        .map(|i| {
            let body = format!("{{\"i\": {i}}}");
            let reply = server.request("POST", "/plain", &[], Some(body.as_bytes()));
            reply.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    let rows = list(&server, "?handler=plain&limit=100");
    let listed: Vec<&str> = rows.iter().rev().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    let last = server.get(&format!("/_smyth/invocations/{}", ids[0]));
    assert_eq!(last.status, 200, "a single show reads its row too");
}

#[test]
fn a_body_over_one_mb_is_cut_with_a_marker() {
    let server = serve("");
    let data = "x".repeat(2 * 1024 * 1024);
    let body = format!("{{\"data\": \"{data}\"}}");
    let reply = server.request("POST", "/size", &[], Some(body.as_bytes()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["size"], data.len(), "the handler got the whole event");
    let row = record(&server, answer["id"].as_str().unwrap(), None);
    let marker = format!("[smyth: cut at 1 MB, {} bytes in all]", body.len());
    let event = row["event"].as_str().unwrap();
    assert!(event.ends_with(&marker), "{}", &event[event.len() - 80..]);
    assert_eq!(event.len(), 1024 * 1024 + marker.len());
    assert_eq!(row["event_size"].as_u64(), Some(body.len() as u64));
    let request_body = row["http_request"]["body"].as_str().unwrap();
    assert!(request_body.ends_with(&marker) && request_body.len() == event.len());
}

/// Makes the SQLite file read-only for SQLite itself (its header's write version above 2: it opens
/// and reads, and every write fails): a read-only database that holds for root too, who may write
/// any file. The server checkpointed the file when it stopped.
fn make_read_only(db: &Path) {
    let mut bytes = std::fs::read(db).unwrap();
    assert_eq!(&bytes[..16], b"SQLite format 3\0");
    assert_eq!(bytes[18], 2, "WAL mode");
    bytes[18] = 3;
    std::fs::write(db, bytes).unwrap();
}

fn recording_warnings(server: &Server) -> usize {
    server.log().lines().filter(|l| l.contains("WARN") && l.contains("recording is off")).count()
}

#[test]
fn a_read_only_database_warns_once_and_every_request_is_still_answered() {
    let mut first = serve("");
    let id = first.get("/echo").body;
    record(&first, &id, None);
    first.signal(nix::sys::signal::Signal::SIGTERM);
    first.wait_exit(Duration::from_secs(10));
    let db = first.path().join(".smyth/invocations.db");
    make_read_only(&db);
    // The same project, its database now read-only.
    let config = first.path().join("pyproject.toml");
    let server = Server::start_with_args(&[], &["--config", config.to_str().unwrap()]);
    // It opened: the recording is listed, and only writing fails.
    assert_eq!(list(&server, "")[0]["id"], id.as_str());
    for _ in 0..5 {
        assert_eq!(server.get("/echo").status, 200);
    }
    server.wait_for("the WARN", Duration::from_secs(10), || recording_warnings(&server) >= 1);
    for _ in 0..5 {
        assert_eq!(server.get("/echo").status, 200);
    }
    assert_eq!(server.get("/_smyth/status").status, 200);
    assert_eq!(recording_warnings(&server), 1, "{}", server.log());
    assert!(server.log().contains("readonly database"), "{}", server.log());

    // A database that cannot even be created: the same.
    let nowhere = serve("record_path = \"/proc/self/no-such-dir/invocations.db\"\n");
    assert_eq!(nowhere.get("/echo").status, 200);
    assert_eq!(nowhere.get("/echo").status, 200);
    assert_eq!(recording_warnings(&nowhere), 1, "{}", nowhere.log());
}

#[test]
fn record_false_records_nothing() {
    let server = serve("record = false\n");
    assert_eq!(server.get("/echo").status, 200);
    assert!(list(&server, "").is_empty());
    assert!(!server.path().join(".smyth").exists());
}

#[test]
fn the_dashboard_lists_recent_invocations_failed_first_in_a_browser() {
    let server = serve("");
    let ok = server.get("/echo").body;
    assert_eq!(server.get("/fail").status, 502);
    let again = server.get("/echo").body;
    record(&server, &again, None);
    server.wait_for("three records", Duration::from_secs(10), || list(&server, "").len() == 3);
    let failed = list(&server, "?failed=1")[0]["id"].as_str().unwrap().to_string();
    let Some(dom) = common::tools::rendered_dom(&server.url("/_smyth/")) else { return };
    let rows: Vec<&str> = dom.split("data-invocation=\"").skip(1).collect();
    let order: Vec<&str> = rows.iter().map(|r| r.split('"').next().unwrap()).collect();
    assert_eq!(order, [failed.as_str(), again.as_str(), ok.as_str()], "{dom}");
    assert!(rows[0].contains("ValueError") && rows[0].contains("error"), "{}", rows[0]);
    assert!(dom.contains(&format!("href=\"/_smyth/invocations/{failed}\"")), "{dom}");
    assert!(rows[2].contains("cold") && rows[1].contains("warm"), "{dom}");
}

#[test]
fn timeouts_and_init_failures_are_recorded_with_their_errors() {
    let app = "import time\n\ndef slow(event, context):\n    time.sleep(5)\n";
    let handlers = "[tool.smyth.handlers.slow]\nhandler_path = \"app.slow\"\nurl_path = \"/slow\"\ntimeout = 1\n\n\
                    [tool.smyth.handlers.broken]\nhandler_path = \"missing_module.handler\"\nurl_path = \"/broken\"\n";
    let server = Server::start(&[("pyproject.toml", &pyproject(handlers)), ("app.py", app)]);
    assert_eq!(server.get("/slow").status, 504);
    assert_eq!(server.get("/broken").status, 502);
    let mut rows = Vec::new();
    server.wait_for("two records", Duration::from_secs(10), || {
        rows = list(&server, "?failed=true");
        rows.len() == 2
    });
    let by = |handler: &str| rows.iter().find(|r| r["handler"] == handler).cloned().unwrap();
    let slow = by("slow");
    assert_eq!(
        (slow["status"].as_str(), slow["error_type"].as_str()),
        (Some("timeout"), Some("Sandbox.Timedout"))
    );
    assert!(slow["run_ms"].as_f64().unwrap() >= 1000.0, "{slow}");
    let broken = by("broken");
    assert_eq!(broken["status"], "error");
    assert_eq!(broken["error_type"], "Runtime.ImportModuleError", "{broken}");
    assert_eq!((broken["worker_name"].as_str(), broken["cold"].as_bool()), (Some("broken:0"), Some(true)));
    assert_eq!(broken["run_ms"], 0.0, "it never ran");
}
