//! The HTTP edge against hostile and careless clients (issue 8, items 1, 8 and 9): a web page's
//! cross-origin POST, DNS rebinding through a foreign `Host`, a body trickled byte by byte, oversized
//! headers, and twenty clients that never read a 5 MB answer. Raw TCP, so every byte is the test's.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{pyproject, rss_kb, Server};
use serde_json::Value;

const APP: &str = r#"
import json, os, pathlib

def handler(event, context):
    return {"ok": True, "origin": (event.get("headers") or {}).get("origin")}

def marker(event, context):
    pathlib.Path("ran.marker").write_text("ran")
    return {"ran": True}

def big(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "x" * (5 * 1024 * 1024)}
"#;

fn config(globals: &str) -> String {
    pyproject(&format!(
        "{globals}\n\
         [tool.smyth.handlers.hello]\nhandler_path = \"app.handler\"\nurl_path = \"/hello\"\n\n\
         [tool.smyth.handlers.marker]\nhandler_path = \"app.marker\"\nurl_path = \"/marker\"\n\n\
         [tool.smyth.handlers.big]\nhandler_path = \"app.big\"\nurl_path = \"/big\"\nconcurrency = 2\n"
    ))
}

fn serve(globals: &str) -> Server {
    Server::start(&[("pyproject.toml", &config(globals)), ("app.py", APP)])
}

/// One HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Sends `head` (without the final blank line) and `body`, with `Connection: close`, and reads the
/// whole answer (bounded by a 30 s read timeout).
fn send(port: u16, head: &str, body: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request =
        format!("{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    parse(&answer)
}

fn parse(answer: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Raw { status, head: head.to_string(), body: body.to_string() }
}

const INVOKE: &str = "/2015-03-31/functions/marker/invocations";

#[test]
fn a_cross_origin_simple_post_to_the_invoke_api_is_refused_and_the_function_does_not_run() {
    let server = serve("");
    let head = format!(
        "POST {INVOKE} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain\r\nOrigin: http://evil.example",
        server.port
    );
    let reply = send(server.port, &head, b"{}");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("allowed_hosts"), "{reply:?}");
    // Give a wrongly started invocation time to show.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!server.path().join("ran.marker").exists(), "the function ran for a foreign page");
    // The same POST from the developer's own page (or no browser at all) runs it.
    let head =
        format!("POST {INVOKE} HTTP/1.1\r\nHost: localhost:{0}\r\nOrigin: http://localhost:{0}", server.port);
    assert_eq!(send(server.port, &head, b"{}").status, 200);
    assert!(server.path().join("ran.marker").exists());
}

#[test]
fn a_foreign_origin_is_refused_on_the_prefix_routes() {
    let server = serve("");
    let head = format!("GET /_smyth/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: null", server.port);
    let reply = send(server.port, &head, b"");
    assert_eq!(reply.status, 403, "{reply:?}");
}

#[test]
fn a_rebinding_host_is_refused_on_every_client_route_naming_allowed_hosts() {
    let server = serve("");
    for head in [
        "GET /hello HTTP/1.1\r\nHost: evil.example".to_string(),
        format!("POST {INVOKE} HTTP/1.1\r\nHost: evil.example:{}", server.port),
        "GET /_smyth/status HTTP/1.1\r\nHost: evil.example".to_string(),
        // Rebinding with a page on the developer's own port name is still a foreign name.
        format!("GET /hello HTTP/1.1\r\nHost: localhost.evil.example:{}", server.port),
        // An absolute target names the host too.
        "GET http://evil.example/hello HTTP/1.1\r\nHost: 127.0.0.1".to_string(),
        "GET /hello HTTP/1.1\r\nHost: ".to_string(),
    ] {
        let reply = send(server.port, &head, b"");
        assert_eq!(reply.status, 403, "{head}: {reply:?}");
        let message = reply.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("allowed_hosts"), "{head}: {message}");
    }
    // A second Host cannot hide behind a good one (the parser already refuses it).
    let reply = send(server.port, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example", b"");
    assert!(matches!(reply.status, 400 | 403), "{reply:?}");
    assert!(!server.path().join("ran.marker").exists(), "the function ran for a rebinding page");
}

#[test]
fn loopback_names_the_bind_address_and_allowed_hosts_pass() {
    let server = serve("allowed_hosts = [\"dev.internal\"]");
    let port = server.port;
    for host in [
        format!("localhost:{port}"),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "[::1]".to_string(),
        "LocalHost".to_string(),
        format!("dev.internal:{port}"),
        "dev.internal".to_string(),
    ] {
        for path in ["/hello", "/_smyth/status"] {
            let reply = send(port, &format!("GET {path} HTTP/1.1\r\nHost: {host}"), b"");
            assert_eq!(reply.status, 200, "Host {host} on {path}: {reply:?}");
        }
        let reply =
            send(port, &format!("POST {INVOKE} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}"), b"{}");
        assert_eq!(reply.status, 200, "Host {host} on the Invoke API: {reply:?}");
    }
    // HTTP/1.0 without Host is never a browser, so never a rebinding page: served.
    assert_eq!(send(port, "GET /hello HTTP/1.0", b"").status, 200);
}

#[test]
fn a_star_in_allowed_hosts_turns_the_check_off() {
    let server = serve("allowed_hosts = [\"*\"]");
    let reply = send(server.port, "GET /hello HTTP/1.1\r\nHost: evil.example", b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    let head = format!("POST {INVOKE} HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example");
    assert_eq!(send(server.port, &head, b"{}").status, 200);
}

#[test]
fn a_url_path_route_serves_a_foreign_origin_when_the_host_is_good() {
    let server = serve("");
    let head =
        format!("POST /hello HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: https://app.example", server.port);
    let reply = send(server.port, &head, b"hi");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["origin"], "https://app.example");
    // …but never for a rebinding Host.
    let head = "POST /hello HTTP/1.1\r\nHost: app.example\r\nOrigin: https://app.example";
    assert_eq!(send(server.port, head, b"hi").status, 403);
}

#[test]
fn a_non_loopback_bind_warns_once_that_the_invoke_api_is_unauthenticated() {
    let server = serve("host = \"0.0.0.0\"");
    let warning = "unauthenticated on every interface";
    server.wait_for("the start-up WARN", Duration::from_secs(5), || server.log().contains(warning));
    let log = server.log();
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(log.lines().any(|l| l.contains(warning) && l.contains("WARN")), "{log}");
    // Served on loopback as before.
    assert_eq!(send(server.port, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1", b"").status, 200);

    let quiet = serve("");
    let _ = send(quiet.port, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1", b"");
    assert!(!quiet.log().contains(warning), "{}", quiet.log());
}

/// Sends `head` announcing 1,000 bytes of body, then trickles it at 10 bytes/s; when the server
/// answers and when it closed the connection, measured from the end of the head.
fn trickle(port: u16, head: &str) -> (Raw, Duration, Option<Duration>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(format!("{head}\r\nContent-Length: 1000\r\n\r\n").as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut answered = None;
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(25) {
        // One byte per 100 ms: the connection never idles, it only crawls.
        let _ = stream.write_all(b"x");
        match stream.read(&mut buf) {
            Ok(0) => return (parse(&answer), answered.unwrap_or(started.elapsed()), Some(started.elapsed())),
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                answered.get_or_insert(started.elapsed());
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                return (parse(&answer), answered.unwrap_or(started.elapsed()), Some(started.elapsed()))
            }
        }
    }
    panic!("still open after {:?}; answer so far: {:?}", started.elapsed(), parse(&answer));
}

#[test]
fn a_body_trickled_at_10_bytes_a_second_gets_408_and_is_closed_within_the_bound() {
    let server = serve("");
    let port = server.port;
    let heads = [
        format!("POST {INVOKE} HTTP/1.1\r\nHost: 127.0.0.1:{port}"),
        format!("POST /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}"),
    ];
    let runs: Vec<_> =
        heads.iter().cloned().map(|head| std::thread::spawn(move || trickle(port, &head))).collect();
    for (head, run) in heads.iter().zip(runs) {
        let (reply, answered, closed) = run.join().unwrap();
        eprintln!("{head}: {} after {answered:?}, closed after {closed:?}", reply.status);
        assert_eq!(reply.status, 408, "{head}: {reply:?}");
        // The bound is 10 s for the whole body (README); allow scheduling slack.
        assert!(answered >= Duration::from_secs(9), "{head}: answered after only {answered:?}");
        assert!(answered < Duration::from_secs(13), "{head}: answered after {answered:?}");
        let closed = closed.unwrap();
        assert!(closed < answered + Duration::from_secs(2), "{head}: closed after {closed:?}");
    }
    assert!(!server.path().join("ran.marker").exists());
    // A body that arrives in time still works.
    assert_eq!(send(port, &format!("POST /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}"), b"hello").status, 200);
}

/// A request whose head (request line, headers and the blank line) is exactly `size` bytes.
fn head_of_size(port: u16, size: usize) -> String {
    let start = format!("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nX-Pad: ");
    let pad = size - start.len() - "\r\n\r\n".len();
    let head = format!("{start}{}\r\n\r\n", "p".repeat(pad));
    assert_eq!(head.len(), size);
    head
}

fn send_head(port: u16, head: &str) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse(&answer)
}

#[test]
fn headers_over_10240_bytes_get_431_and_10000_bytes_pass() {
    let server = serve("");
    let port = server.port;
    for (size, status) in [(10_000, 200), (10_240, 200), (10_241, 431), (20_000, 431), (200_000, 431)] {
        let reply = send_head(port, &head_of_size(port, size));
        assert_eq!(reply.status, status, "a {size}-byte head: {}", reply.head);
    }
    // Many headers that add up count too.
    let mut head = format!("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for i in 0..40 {
        head.push_str(&format!("X-Part-{i}: {}\r\n", "q".repeat(300)));
    }
    head.push_str("\r\n");
    assert_eq!(send_head(port, &head).status, 431);
}

fn invocations(server: &Server, handler: &str) -> u64 {
    server.workers(handler).iter().map(|w| w["invocations"].as_u64().unwrap_or(0)).sum()
}

#[test]
fn twenty_clients_that_never_read_a_5mb_answer_keep_the_server_under_64mb() {
    let server = serve("");
    let port = server.port;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.write_all(format!("GET /big HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).unwrap();
        stalled.push(stream);
    }
    server.wait_for("20 answers", Duration::from_secs(60), || invocations(&server, "big") >= 20);
    // Let the last answers reach their connections' buffers.
    std::thread::sleep(Duration::from_millis(500));
    let mut peak = 0;
    for _ in 0..10 {
        peak = peak.max(rss_kb(server.pid()));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("server VmRSS with 20 stalled readers: {} kB", peak);
    assert!(peak < 64 * 1024, "server VmRSS {peak} kB with 20 stalled readers");
    // The server still answers others.
    let reply = send(port, &format!("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}"), b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    // And a reader that does read gets every byte.
    let reply = send(port, &format!("GET /big HTTP/1.1\r\nHost: 127.0.0.1:{port}"), b"");
    assert_eq!((reply.status, reply.body.len()), (200, 5 * 1024 * 1024), "{}", reply.head);
    drop(stalled);
}
