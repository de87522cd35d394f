//! Issue 13, the transport: the bundled runtime speaks to its worker over a Unix socket
//! (`SMYTH_RUNTIME_API_SOCKET`), and the kernel's SO_PEERCRED refuses an outsider there; awslambdaric
//! and `runtime = "command"` keep the TCP Runtime API (`AWS_LAMBDA_RUNTIME_API`) unchanged; a handler
//! whose environment changes the interpreter's start-up (PYTHONHASHSEED) is spawned, not forked from
//! the zygote (tests/zygote.rs), and another interpreter still serves.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::{pyproject, Server};

const APP: &str = r#"
import os, sys

def whoami(event, context):
    return {
        "pid": os.getpid(),
        "socket": os.environ.get("SMYTH_RUNTIME_API_SOCKET"),
        "api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        "hash": hash("smyth"),
        "seed": os.environ.get("PYTHONHASHSEED"),
        "executable": sys.executable,
    }
"#;

/// The socket inodes process `pid` holds, by family: (Unix, TCP).
fn sockets_of(pid: u64) -> (usize, usize) {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let count = |table: &str, column: usize| {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter(|line| line.split_whitespace().nth(column).is_some_and(|inode| inodes.contains(inode)))
            .count()
    };
    (count("/proc/net/unix", 6), count("/proc/net/tcp", 9))
}

/// A raw Runtime API call on the Unix socket at `path`, from this test process: status and answer.
fn outsider(path: &str, method: &str, api_path: &str, body: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(path).expect("connect to the worker's socket");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "{method} /2018-06-01/runtime{api_path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// A server with the `whoami` handler on the bundled runtime, and its first answer.
fn whoami_server() -> (Server, serde_json::Value) {
    let config = pyproject(
        "[tool.smyth.handlers.whoami]\nhandler_path = \"app.whoami\"\nurl_path = \"/whoami\"\ntimeout = 10\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let first = server.get("/whoami").json();
    (server, first)
}

#[test]
fn the_bundled_runtime_speaks_over_its_unix_socket_and_refuses_outsiders_there() {
    let (server, first) = whoami_server();
    let pid = first["pid"].as_u64().unwrap();
    let socket =
        first["socket"].as_str().unwrap_or_else(|| panic!("no socket variable: {first}")).to_string();
    assert!(first["api"].as_str().is_some_and(|api| api.starts_with("127.0.0.1:")), "{first}");
    let (unix, tcp) = sockets_of(pid);
    assert!(unix >= 1 && tcp == 0, "the worker holds {unix} Unix and {tcp} TCP sockets");

    // An outsider on the socket: refused, and the worker is untouched.
    let (status, body) = outsider(&socket, "GET", "/invocation/next", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AccessDeniedException"), "{body}");
    let forged = format!("/invocation/{}/response", "00000000-0000-0000-0000-000000000000");
    let (status, body) = outsider(&socket, "POST", &forged, "{}");
    assert_eq!(status, 403, "{body}");
    let again = server.get("/whoami").json();
    assert_eq!(again["pid"].as_u64(), Some(pid), "the worker survived the outsider: {}", server.log());
    assert_eq!(server.workers("whoami")[0]["restarts"], 0);
    // The log comes through a pipe the test reads on its own thread: wait for the line.
    server.wait_for("the refusal in the log", Duration::from_secs(5), || {
        server.log().contains("refused a Runtime API call")
    });
}

#[test]
fn awslambdaric_and_command_runtimes_keep_the_tcp_runtime_api() {
    let Some(python) = common::tools::python() else { return };
    // A command runtime: a bare Runtime API client over TCP, nothing of ours.
    let client = r#"
import http.client, json, os
host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
conn = http.client.HTTPConnection(host, int(port))  # one keep-alive connection, as runtimes keep
base = "/2018-06-01/runtime/invocation/"
while True:
    conn.request("GET", base + "next")
    reply = conn.getresponse()
    reply.read()
    request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
    body = json.dumps({"pid": os.getpid(), "socket": os.environ.get("SMYTH_RUNTIME_API_SOCKET")})
    conn.request("POST", base + request_id + "/response", body=body)
    conn.getresponse().read()
"#;
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n\
         [tool.smyth.handlers.ric]\nhandler_path = \"app.whoami\"\nurl_path = \"/ric\"\nruntime = \"awslambdaric\"\n\n\
         [tool.smyth.handlers.cmd]\nhandler_path = \"client.unused\"\nurl_path = \"/cmd\"\nruntime = \"command\"\n\
         command = [\"{python}\", \"client.py\"]\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP), ("client.py", client)]);
    for path in ["/ric", "/cmd"] {
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}: {reply:?}\n{}", server.log());
        let answer = reply.json();
        assert!(answer["socket"].is_null(), "{path} was given a socket: {answer}");
        let pid = answer["pid"].as_u64().unwrap();
        let (unix, tcp) = sockets_of(pid);
        assert!(tcp >= 1, "{path}: the worker holds {unix} Unix and {tcp} TCP sockets");
        assert_eq!(
            common::parent_of(pid),
            u64::from(server.pid()),
            "{path}: spawned, not forked from the zygote"
        );
        assert_eq!(server.get(path).status, 200, "{path} warm");
    }
}

#[test]
fn a_hash_seed_in_the_handler_env_and_another_interpreter_still_serve() {
    let Some(python) = common::tools::python() else { return };
    // What `hash("smyth")` is with PYTHONHASHSEED=7, asked of the same interpreter.
    let expected = Command::new(&python)
        .args(["-c", "print(hash('smyth'))"])
        .env("PYTHONHASHSEED", "7")
        .output()
        .expect("run python");
    let expected: i64 = String::from_utf8_lossy(&expected.stdout).trim().parse().unwrap();
    // The other interpreter: the system's python3 when the tests run on a venv's.
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n\
         [tool.smyth.handlers.seeded]\nhandler_path = \"app.whoami\"\nurl_path = \"/seeded\"\n\
         env = {{ PYTHONHASHSEED = \"7\" }}\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    let answer = server.get("/seeded").json();
    assert_eq!(answer["seed"], "7", "{answer}");
    assert_eq!(answer["hash"].as_i64(), Some(expected), "the seed took effect at start-up: {answer}");
    let pid = answer["pid"].as_u64().unwrap();
    assert_eq!(common::parent_of(pid), u64::from(server.pid()), "a seed that differs means a plain spawn");

    let other = "python3";
    let config = "[tool.smyth]\nport = 0\npython = \"python3\"\n\n\
         [tool.smyth.handlers.other]\nhandler_path = \"app.whoami\"\nurl_path = \"/other\"\n";
    let server = Server::start(&[("pyproject.toml", config), ("app.py", APP)]);
    let reply = server.get("/other");
    assert_eq!(reply.status, 200, "{other}: {reply:?}\n{}", server.log());
    assert!(reply.json()["socket"].is_string(), "the bundled runtime on {other}");
    assert_eq!(server.get("/other").json()["pid"], reply.json()["pid"], "warm on {other}");
}

/// Sends `request` as is on the Unix socket at `path`, then reads until the server closes.
fn raw(path: &str, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(path).expect("connect to the worker's socket");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status codes of the responses in `answer`, in order.
fn statuses(answer: &str) -> Vec<u16> {
    answer.match_indices("HTTP/1.1 ").filter_map(|(at, _)| answer[at + 9..at + 12].parse().ok()).collect()
}

#[test]
fn the_unix_socket_answers_what_it_cannot_serve_with_a_clear_error() {
    let (server, first) = whoami_server();
    let socket = first["socket"].as_str().unwrap().to_string();
    let api = "/2018-06-01/runtime";

    let answer = raw(&socket, b"NOT HTTP\r\n\r\n");
    assert_eq!(statuses(&answer), [400], "{answer}");
    assert!(answer.contains("malformed request head") && answer.contains("Connection: close"), "{answer}");

    let chunked =
        format!("POST {api}/init/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n");
    let answer = raw(&socket, chunked.as_bytes());
    assert_eq!(statuses(&answer), [411], "{answer}");
    assert!(answer.contains("Content-Length"), "{answer}");

    let huge_head = format!("GET {api}/invocation/next HTTP/1.1\r\nX-Pad: {}\r\n", "p".repeat(20 * 1024));
    let answer = raw(&socket, huge_head.as_bytes());
    assert_eq!(statuses(&answer), [431], "{answer}");

    let answer = raw(&socket, b"GET /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
    assert_eq!(statuses(&answer), [400], "{answer}");
    assert!(answer.contains("conflicting Content-Length"), "{answer}");

    // Several requests in one write are answered in order on the one connection: an unknown path, a
    // wrong method (its body read past), a body over 6 MB (read past too), then an outsider's /next.
    let huge = "x".repeat(6 * 1024 * 1024 + 1);
    let pipelined = format!(
        "GET {api}/nothing HTTP/1.1\r\n\r\n\
         PUT {api}/invocation/next HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}\
         POST {api}/invocation/abc/response HTTP/1.1\r\nContent-Length: {}\r\n\r\n{huge}\
         GET {api}/invocation/next HTTP/1.1\r\nConnection: close\r\n\r\n",
        huge.len()
    );
    let answer = raw(&socket, pipelined.as_bytes());
    assert_eq!(statuses(&answer), [404, 405, 403, 403], "{}", &answer[..answer.len().min(2000)]);

    // A head that arrives in pieces waits for the rest (no answer to half of it), then is served whole.
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream.write_all(format!("GET {api}/invoc").as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let early = stream.read(&mut [0u8; 64]);
    assert!(early.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "{early:?}");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"ation/next HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert_eq!(statuses(&answer), [403], "{answer}");

    // A head that never arrives whole is answered 408 after 5 s, and the connection ends.
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(format!("GET {api}/invocation/ne").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert_eq!(statuses(&answer), [408], "{answer}");

    let again = server.get("/whoami").json();
    assert_eq!(again["pid"], first["pid"], "the worker is untouched: {}", server.log());
    assert_eq!(server.workers("whoami")[0]["restarts"], 0);
}
