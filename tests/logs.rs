//! The server log as a developer and a log shipper see it: colour on a real terminal only as real
//! escape codes (none with `NO_COLOR`), one JSON object per line with `--log-format json` or
//! `log_format = "json"`, and a handler's `log_format = "JSON"` written by the bundled runtime exactly
//! as awslambdaric 4.x writes it.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pyproject, Server};
use serde_json::Value;

const APP: &str = "print('imported', flush=True)\n\ndef handler(event, context):\n    print('hello from orders')\n    return {'ok': True}\n";

fn orders_project() -> String {
    pyproject("[tool.smyth.handlers.orders]\nhandler_path = \"app.handler\"\nurl_path = \"/orders\"\n")
}

/// Runs `smyth run` under a pseudo-terminal (Python's `pty.fork`), asks `/orders` once, and returns
/// every byte the terminal showed.
fn terminal_output(env: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), orders_project()).unwrap();
    std::fs::write(dir.path().join("app.py"), APP).unwrap();
    // The child runs smyth on the terminal; the parent prints its pid, then copies the terminal out.
    let wrapper = "import os, pty, sys\n\
                   pid, fd = pty.fork()\n\
                   if pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n\
                   sys.stderr.write('%d\\n' % pid); sys.stderr.flush()\n\
                   while True:\n    try:\n        data = os.read(fd, 65536)\n    except OSError:\n        break\n    if not data:\n        break\n    sys.stdout.buffer.write(data); sys.stdout.flush()\n\
                   os.waitpid(pid, 0)\n";
    let mut child = Command::new("python3")
        .args(["-c", wrapper, env!("CARGO_BIN_EXE_smyth"), "run"])
        .current_dir(dir.path())
        .env_remove("VIRTUAL_ENV")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the pty wrapper");
    let mut pid_line = String::new();
    let mut stderr = child.stderr.take().unwrap();
    let mut byte = [0u8; 1];
    while stderr.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        pid_line.push(byte[0] as char);
    }
    let smyth_pid: i32 = pid_line.trim().parse().expect("the wrapper prints smyth's pid");
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let shown = || String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
    let wait_for = |what: &str, cond: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond(&shown()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", shown());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("the listening line", &|text| text.contains("listening on http://127.0.0.1:"));
    let text = shown();
    let at = text.find("listening on http://127.0.0.1:").unwrap() + "listening on http://127.0.0.1:".len();
    let port: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    let reply = ureq::get(&format!("http://127.0.0.1:{port}/orders")).call().expect("GET /orders");
    assert_eq!(reply.status(), 200);
    wait_for("the worker's line and REPORT", &|text| {
        text.contains("hello from orders") && text.contains("REPORT")
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(smyth_pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(smyth_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.kill();
            panic!("smyth did not stop on SIGTERM:\n{}", shown());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap();
    let bytes = output.lock().unwrap().clone();
    bytes
}

#[test]
fn on_a_terminal_worker_names_are_coloured_by_real_escapes_never_escaped_text() {
    let bytes = terminal_output(&[]);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("\\x1b"), "escape codes shown as text:\n{text}");
    assert!(!text.contains("\\u{1b}"), "escape codes shown as text:\n{text}");
    let line = text.lines().find(|l| l.contains("hello from orders")).expect("the worker's line");
    assert!(line.contains('\x1b'), "a terminal gets colour: {line:?}");
    // The name itself is wrapped in a colour: ESC [ … m orders:0 ESC [ 0 m
    let at = line.find("orders:0").expect("the worker's name");
    assert!(line[..at].ends_with('m') && line[at..].starts_with("orders:0\x1b["), "{line:?}");
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let bytes = terminal_output(&[("NO_COLOR", "1")]);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("orders:0 | hello from orders"), "{text}");
    assert!(!bytes.contains(&0x1b), "no escape codes with NO_COLOR:\n{text:?}");
    assert!(!text.contains("\\x1b"), "{text}");
}

/// Every line of the log, parsed; the test fails on a line that is not JSON.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n--- log ---\n{log}"))
        })
        .collect()
}

fn assert_json_log(server: &Server) {
    let reply = server.get("/orders");
    assert_eq!(reply.status, 200, "{reply:?}");
    // The handler's line comes through the output pump's thread, so it may follow the REPORT line.
    server.wait_for("the REPORT line and the handler's line", Duration::from_secs(20), || {
        let log = server.log();
        log.contains("REPORT RequestId") && log.contains("hello from orders")
    });
    let lines = json_lines(&server.log());
    let worker = |needle: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.contains(needle)))
            .unwrap_or_else(|| panic!("no line with {needle}: {lines:#?}"))
            .clone()
    };
    let hello = worker("hello from orders");
    assert_eq!(hello["handler"], "orders", "{hello}");
    assert_eq!(hello["worker"], "orders:0", "{hello}");
    assert!(hello["pid"].as_u64().is_some_and(|p| p > 1), "{hello}");
    let request_id = hello["request_id"].as_str().expect("the invocation's request id").to_string();
    let report = worker("REPORT RequestId");
    assert_eq!(report["request_id"], request_id.as_str(), "{report}");
    assert!(report["message"].as_str().unwrap().contains(&request_id));
    assert_eq!(report["worker"], "orders:0");
    let imported = worker("imported");
    assert_eq!(imported["pid"], hello["pid"]);
    assert!(imported.get("request_id").is_none(), "init lines belong to no invocation: {imported}");
}

#[test]
fn log_format_json_flag_prints_one_json_object_per_line_with_the_fields() {
    let server = Server::start_with_args(
        &[("pyproject.toml", &orders_project()), ("app.py", APP)],
        &["--log-format", "json"],
    );
    assert_json_log(&server);
}

#[test]
fn log_format_json_key_does_the_same() {
    let config = orders_project().replace("port = 0\n", "port = 0\nlog_format = \"json\"\n");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    assert_json_log(&server);
}

const LOGGING_APP: &str = r#"import logging

logger = logging.getLogger("orders")


def handler(event, context):
    logger.debug("below the level: dropped")
    logger.info("hello %s", "world")
    logger.warning({"kind": "dict", "n": 1})
    logger.info("with extra", extra={"order_id": 7, "gone": None, "tags": ["a", "é"]})
    logging.getLogger().error("from the root logger")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("it failed")
    return {"ok": True}


def fail(event, context):
    raise ValueError("bad order")
"#;

/// The JSON lines the runtime of `worker` printed, without the values that differ between two runs
/// (the time, the request id: checked to be there).
fn runtime_records(lines: &[Value], worker: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["worker"] == worker)
        .filter_map(|l| l["message"].as_str().and_then(|m| serde_json::from_str::<Value>(m).ok()))
        .filter(|record| record.is_object())
        .map(|mut record| {
            let object = record.as_object_mut().unwrap();
            let timestamp = object.remove("timestamp").expect("timestamp");
            assert!(timestamp.as_str().is_some_and(|t| t.len() == 20 && t.ends_with('Z')), "{timestamp}");
            let request_id = object.remove("requestId").expect("requestId");
            assert!(request_id.as_str().is_some_and(|r| r.len() == 36), "{request_id}");
            record
        })
        .collect()
}

#[test]
fn json_logs_of_the_bundled_runtime_match_awslambdaric_field_for_field() {
    let Some(python) = common::tools::python() else { return };
    let table = |name: &str, function: &str, runtime: &str| {
        format!(
            "[tool.smyth.handlers.{name}]\nhandler_path = \"app.{function}\"\nurl_path = \"/{name}\"\n\
             runtime = \"{runtime}\"\nlog_format = \"JSON\"\napplication_log_level = \"INFO\"\n\n"
        )
    };
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n{}{}{}{}",
        table("py", "handler", "python"),
        table("ric", "handler", "awslambdaric"),
        table("pyfail", "fail", "python"),
        table("ricfail", "fail", "awslambdaric"),
    );
    let server = Server::start_with_args(
        &[("pyproject.toml", &config), ("app.py", LOGGING_APP)],
        &["--log-format", "json"],
    );
    for name in ["py", "ric"] {
        assert_eq!(server.get(&format!("/{name}")).status, 200, "{}", server.log());
    }
    for name in ["pyfail", "ricfail"] {
        assert_eq!(server.get(&format!("/{name}")).status, 502, "{}", server.log());
    }
    // A runtime's last lines may reach the log after its REPORT (they come through another thread).
    server.wait_for("four REPORT lines and every record", Duration::from_secs(20), || {
        let lines = json_lines(&server.log());
        let counts = ["py:0", "ric:0", "pyfail:0", "ricfail:0"].map(|w| runtime_records(&lines, w).len());
        server.log().matches("REPORT RequestId").count() == 4 && counts == [5, 5, 1, 1]
    });
    let lines = json_lines(&server.log());

    let ours = runtime_records(&lines, "py:0");
    let theirs = runtime_records(&lines, "ric:0");
    assert_eq!(ours.len(), 5, "five records above the level: {ours:#?}");
    assert_eq!(ours, theirs, "the bundled runtime's JSON records differ from awslambdaric's");
    assert!(!server.log().contains("below the level"), "DEBUG is dropped at INFO");
    let extra = &ours[2];
    assert_eq!(extra["order_id"], 7);
    assert!(extra.get("gone").is_none(), "None values are dropped: {extra}");
    let exception = &ours[4];
    assert_eq!(exception["errorType"], "ZeroDivisionError");
    assert!(exception["location"].as_str().unwrap().ends_with("app.py:handler:15"), "{exception}");

    let ours = runtime_records(&lines, "pyfail:0");
    let theirs = runtime_records(&lines, "ricfail:0");
    assert_eq!(ours.len(), 1, "one JSON error line: {ours:#?}");
    assert_eq!(ours, theirs, "the unhandled error's JSON line differs from awslambdaric's");
    assert_eq!(ours[0]["errorType"], "ValueError");
}
