//! Issue 8, items 2, 4 and 5, against real processes: an outsider on a worker's Runtime API port, a
//! hanging import, and a handler that posts its own result and keeps running.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{pyproject, Server};
use nix::sys::signal::Signal;

const APP: &str = r#"
import json, os, time, urllib.request

def whoami(event, context):
    query = event.get("queryStringParameters") or {}
    with open("requests.log", "a") as log:
        log.write(context.aws_request_id + "\n")
    time.sleep(float(query.get("s", "0")))
    return {"pid": os.getpid(), "api": os.environ["AWS_LAMBDA_RUNTIME_API"], "request_id": context.aws_request_id}

def post_then_hang(event, context):
    # Posts its own result through the Runtime API, then keeps running, as a background thread might.
    url = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/{context.aws_request_id}/response"
    body = json.dumps({"pid": os.getpid()}).encode()
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"))
    time.sleep(60)
"#;

/// A module whose import logs a line to `imports.log`, then hangs.
const HANGING_IMPORT: &str = "import time\nwith open('imports.log', 'a') as log: log.write('import\\n')\ntime.sleep(60)\n\ndef handler(event, context):\n    return 'never'\n";

/// `GET`/`POST` on a Runtime API port from this test process: an outsider. Status and body.
fn outsider(api: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(api).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "{method} /2018-06-01/runtime{path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

fn whoami_server(extra: &str) -> Server {
    let config = pyproject(&format!(
        "[tool.smyth.handlers.whoami]\nhandler_path = \"app.whoami\"\nurl_path = \"/whoami\"\n{extra}\n"
    ));
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

#[test]
fn an_outsider_cannot_take_read_or_forge_a_workers_invocations() {
    let server = whoami_server("timeout = 10");
    let first = server.get("/whoami").json();
    let (pid, api) = (first["pid"].as_u64().unwrap(), first["api"].as_str().unwrap().to_string());

    // Asking for the next event of an idle warm worker: refused, and the worker is untouched.
    let (status, body) = outsider(&api, "GET", "/invocation/next", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AccessDeniedException"), "{body}");
    let again = server.get("/whoami").json();
    assert_eq!(again["pid"].as_u64(), Some(pid), "the worker survived the outsider: {}", server.log());
    assert_eq!(server.workers("whoami")[0]["restarts"], 0);

    // An outsider polling /next while requests arrive never gets an event.
    std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut stolen = Vec::new();
            while Instant::now() < deadline {
                let (status, body) = outsider(&api, "GET", "/invocation/next", "");
                if status != 403 {
                    stolen.push(body);
                }
            }
            stolen
        });
        for _ in 0..5 {
            assert_eq!(server.get("/whoami").status, 200);
        }
        let stolen = poller.join().unwrap();
        assert!(stolen.is_empty(), "an outsider got an event: {stolen:?}");
    });

    // A forged result for the invocation in flight is refused; the client gets the handler's own.
    std::thread::scope(|scope| {
        let request = scope.spawn(|| server.get("/whoami?s=1"));
        let log = server.path().join("requests.log");
        let mut request_id = String::new();
        server.wait_for("the invocation to start", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            request_id = text.lines().nth(7).unwrap_or_default().to_string();
            !request_id.is_empty()
        });
        let forged = r#"{"pid": 0, "forged": true}"#;
        let (status, body) = outsider(&api, "POST", &format!("/invocation/{request_id}/response"), forged);
        assert_eq!(status, 403, "{body}");
        let (status, _) = outsider(&api, "POST", &format!("/invocation/{request_id}/error"), forged);
        assert_eq!(status, 403);
        let (status, _) = outsider(&api, "POST", "/init/error", forged);
        assert_eq!(status, 403);
        let reply = request.join().unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["pid"].as_u64(), Some(pid), "{}", reply.body);
        assert_eq!(reply.json()["request_id"], request_id.as_str());
    });
    assert!(server.log().contains("outside the worker's process tree"), "{}", server.log());
}

#[test]
fn a_hanging_import_is_killed_retried_once_and_answered_504() {
    let config = pyproject(
        "[tool.smyth.handlers.hang]\nhandler_path = \"hang.handler\"\nurl_path = \"/hang\"\ninit_timeout = 1\ntimeout = 1\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("hang.py", HANGING_IMPORT)]);
    let started = Instant::now();
    let reply = server.get("/hang");
    let waited = started.elapsed();
    assert_eq!(reply.status, 504, "{reply:?}");
    assert_eq!(reply.json()["errorType"], "Sandbox.Timedout", "{}", reply.body);
    // init_timeout (1 s) + timeout (1 s) + spawning, never more.
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(4), "waited {waited:?}");
    let imports = std::fs::read_to_string(server.path().join("imports.log")).unwrap();
    assert_eq!(imports.lines().count(), 2, "one init, then one retry inside the invocation");

    // Through the Invoke API the same is a function error.
    let reply = server.request("POST", "/2015-03-31/functions/hang/invocations", &[], Some(b"{}"));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("X-Amz-Function-Error"), Some("Unhandled"));
    assert_eq!(reply.json()["errorType"], "Sandbox.Timedout");
}

#[test]
fn an_init_slower_than_init_timeout_succeeds_on_its_retry_within_the_function_timeout() {
    // The first init sleeps past init_timeout; the retry finds the marker and is quick.
    let app = "import os, time\nif not os.path.exists('marker'):\n    open('marker', 'w').close()\n    time.sleep(30)\n\ndef handler(event, context):\n    return {'remaining': context.get_remaining_time_in_millis()}\n";
    let config = pyproject(
        "[tool.smyth.handlers.slow]\nhandler_path = \"slow.handler\"\nurl_path = \"/slow\"\ninit_timeout = 1\ntimeout = 5\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("slow.py", app)]);
    let reply = server.get("/slow");
    assert_eq!(reply.status, 200, "{reply:?}");
    let remaining = reply.json()["remaining"].as_u64().unwrap();
    assert!(remaining <= 5000, "the retried init runs inside the invocation's timeout: {remaining}");
    assert_eq!(server.workers("slow")[0]["cold_starts"], 2);
}

#[test]
fn shutdown_during_a_hanging_import_starts_no_new_worker() {
    let config = pyproject(
        "[tool.smyth.handlers.hang]\nhandler_path = \"hang.handler\"\nurl_path = \"/hang\"\ninit_timeout = 30\ntimeout = 30\n",
    );
    let mut server = Server::start(&[("pyproject.toml", &config), ("hang.py", HANGING_IMPORT)]);
    let imports = server.path().join("imports.log");
    std::thread::scope(|scope| {
        let request = scope.spawn(|| server.get("/hang"));
        server.wait_for("the import to start", Duration::from_secs(10), || imports.exists());
        server.signal(Signal::SIGTERM);
        let reply = request.join().unwrap();
        assert_ne!(reply.status, 200, "{reply:?}");
    });
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.log());
    let count = std::fs::read_to_string(&imports).unwrap().lines().count();
    assert_eq!(count, 1, "no worker may be started after the shutdown signal:\n{}", server.log());
}

#[test]
fn a_handler_that_posts_its_result_and_hangs_is_killed_at_its_timeout() {
    let config = pyproject(
        "[tool.smyth.handlers.hang]\nhandler_path = \"app.post_then_hang\"\nurl_path = \"/hang\"\ntimeout = 1\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let first = server.get("/hang");
    assert_eq!(first.status, 200, "{first:?}");
    let first_pid = first.json()["pid"].as_u64().unwrap();
    // The next request is not held by the hanging invocation beyond its timeout: it runs on a fresh
    // process once the old one is killed.
    let started = Instant::now();
    let second = server.get("/hang");
    assert_eq!(second.status, 200, "{second:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "waited {:?}", started.elapsed());
    assert_ne!(second.json()["pid"].as_u64().unwrap(), first_pid);
    assert!(!common::alive(first_pid as u32), "the hanging process was killed");
    assert!(server.log().contains("timed out"), "{}", server.log());
}
