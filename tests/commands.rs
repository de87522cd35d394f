//! `smyth invoke` and `smyth status`, run as a user runs them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{pyproject, Server};

const APP: &str = r#"
def echo(event, context):
    return {"got": event, "fn": context.function_name}

def fail(event, context):
    raise ValueError("nope")
"#;

const HANDLERS: &str = "[tool.smyth.handlers.echo]\nhandler_path = \"app.echo\"\nurl_path = \"/echo\"\n\n\
                        [tool.smyth.handlers.fail]\nhandler_path = \"app.fail\"\nurl_path = \"/fail\"\n";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), pyproject(HANDLERS)).unwrap();
    std::fs::write(dir.path().join("app.py"), APP).unwrap();
    dir
}

fn smyth(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smyth"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn invoke_runs_a_handler_once_with_any_event() {
    let dir = project();
    std::fs::write(dir.path().join("sqs.json"), r#"{"Records": [{"eventSource": "aws:sqs", "body": "hi"}]}"#)
        .unwrap();
    let (code, stdout, stderr) = smyth(dir.path(), &["invoke", "echo", "--event", "sqs.json"], b"");
    assert_eq!(code, Some(0), "{stderr}");
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["got"]["Records"][0]["body"], "hi");
    assert_eq!(result["fn"], "echo");
    assert!(stderr.contains("REPORT RequestId:"), "the log goes to stderr: {stderr}");

    let (code, stdout, _) = smyth(dir.path(), &["invoke", "echo", "-e", "-"], br#"{"from": "stdin"}"#);
    assert_eq!(code, Some(0));
    assert!(stdout.contains(r#""from":"stdin""#) || stdout.contains(r#""from": "stdin""#), "{stdout}");
}

#[test]
fn invoke_reports_failures_and_bad_input() {
    let dir = project();
    let (code, stdout, _) = smyth(dir.path(), &["invoke", "fail"], b"");
    assert_eq!(code, Some(1));
    let error: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(error["errorType"], "ValueError");

    let (code, _, stderr) = smyth(dir.path(), &["invoke", "missing"], b"");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no handler `missing`") && stderr.contains("echo, fail"), "{stderr}");

    let (code, _, stderr) = smyth(dir.path(), &["invoke", "echo", "-e", "-"], b"not json");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not JSON"), "{stderr}");
}

#[test]
fn status_prints_the_running_servers_workers() {
    let server = Server::start(&[("pyproject.toml", &pyproject(HANDLERS)), ("app.py", APP)]);
    assert_eq!(server.get("/echo").status, 200);
    let port = server.port.to_string();
    let (code, stdout, stderr) = smyth(server.path(), &["status", "--port", &port], b"");
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("HANDLER"), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("echo") && l.contains("echo:0") && l.contains("warm")),
        "{stdout}"
    );
    assert!(lines.iter().any(|l| l.contains("fail:0") && l.contains("cold")), "{stdout}");

    let (code, _, stderr) = smyth(server.path(), &["status"], b"");
    assert_eq!(code, Some(2), "port = 0 in the config needs --port");
    assert!(stderr.contains("--port"), "{stderr}");
}
