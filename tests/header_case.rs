//! Header names in the events, as AWS sends them: the REST API (`apigw-v1`) keeps the client's
//! spelling (`X-GitHub-Event`, `content-type`), which webhook handlers look up by exact name; the
//! HTTP API (payload 1.0 and 2.0) and the ALB lower-case every name. Requests go over raw TCP, so
//! the spelling on the wire is exactly the test's, one per connection, on a keep-alive connection and
//! pipelined.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{pyproject, Server};
use serde_json::{json, Value};

const APP: &str = r#"
import json


def echo(event, context):
    seen = {"headers": event.get("headers"), "multiValueHeaders": event.get("multiValueHeaders")}
    return {"statusCode": 200, "body": json.dumps(seen)}
"#;

fn start() -> Server {
    let tables: String = [
        ("rest", "/rest", "apigw-v1"),
        ("http_v1", "/http-v1", "apigw-http-v1"),
        ("http_v2", "/http-v2", "apigw-v2"),
        ("lb", "/alb", "alb"),
    ]
    .iter()
    .map(|(name, url, format)| {
        format!(
            "[tool.smyth.handlers.{name}]\nhandler_path = \"app.echo\"\nurl_path = \"{url}\"\n\
             event_format = \"{format}\"\n\n"
        )
    })
    .collect();
    Server::start(&[("pyproject.toml", &pyproject(&tables)), ("app.py", APP)])
}

/// A POST to `path` with these header lines, exactly as written here.
fn request(path: &str, lines: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in lines {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

/// Reads one response off `reader`: its status and its body as JSON.
fn response(reader: &mut BufReader<TcpStream>) -> (u16, Value) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("a status line");
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect(&status_line);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header line");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))))
}

fn connect(server: &Server) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

/// What the handler behind `path` saw for one request on a fresh connection.
fn seen(server: &Server, path: &str, lines: &[(&str, &str)]) -> Value {
    let (mut stream, mut reader) = connect(server);
    stream.write_all(request(path, lines, "{}").as_bytes()).unwrap();
    let (status, seen) = response(&mut reader);
    assert_eq!(status, 200, "{seen}\n{}", server.log());
    seen
}

const WEBHOOK: &[(&str, &str)] =
    &[("X-GitHub-Event", "push"), ("content-type", "application/json"), ("X-MiXeD", "1"), ("X-MiXeD", "2")];

fn names(map: &Value) -> Vec<String> {
    let mut names: Vec<String> = map.as_object().expect("an object").keys().cloned().collect();
    names.sort();
    names
}

#[test]
fn the_rest_api_keeps_the_clients_spelling() {
    let server = start();
    let seen = seen(&server, "/rest", WEBHOOK);
    let headers = &seen["headers"];
    assert_eq!(headers["X-GitHub-Event"], "push", "{seen}");
    assert_eq!(headers["content-type"], "application/json", "{seen}");
    assert_eq!(headers["X-MiXeD"], "2", "{seen}");
    assert_eq!(headers["Content-Length"], "2", "{seen}");
    assert_eq!(headers["Host"], "127.0.0.1", "{seen}");
    let multi = &seen["multiValueHeaders"];
    assert_eq!(multi["X-GitHub-Event"], json!(["push"]), "{seen}");
    assert_eq!(multi["content-type"], json!(["application/json"]), "{seen}");
    assert_eq!(multi["X-MiXeD"], json!(["1", "2"]), "{seen}");
    for spelling in ["X-Github-Event", "Content-Type", "X-Mixed", "x-mixed"] {
        assert!(headers.get(spelling).is_none(), "{spelling} in {seen}");
        assert!(multi.get(spelling).is_none(), "{spelling} in {seen}");
    }
    // What API Gateway adds, as it spells it.
    assert!(headers["X-Forwarded-For"].is_string() && headers["X-Amzn-Trace-Id"].is_string(), "{seen}");
}

#[test]
fn a_name_sent_in_two_spellings_keeps_the_first() {
    let server = start();
    let seen = seen(&server, "/rest", &[("X-TWICE", "a"), ("x-twice", "b")]);
    assert_eq!(seen["multiValueHeaders"]["X-TWICE"], json!(["a", "b"]), "{seen}");
    assert_eq!(seen["headers"]["X-TWICE"], "b", "{seen}");
    assert!(seen["headers"].get("x-twice").is_none(), "{seen}");
}

#[test]
fn each_request_on_a_keep_alive_connection_keeps_its_own_spelling() {
    let server = start();
    let first: &[(&str, &str)] = &[("X-GitHub-Event", "push"), ("content-type", "text/plain")];
    let second: &[(&str, &str)] = &[("x-github-EVENT", "ping"), ("CONTENT-TYPE", "text/plain")];

    // One after the other, and then a request to smyth's own status (which takes no event) between.
    let (mut stream, mut reader) = connect(&server);
    for (lines, event_name, content_type) in
        [(first, "X-GitHub-Event", "content-type"), (second, "x-github-EVENT", "CONTENT-TYPE")]
    {
        stream.write_all(request("/rest", lines, "hi").as_bytes()).unwrap();
        let (status, seen) = response(&mut reader);
        assert_eq!(status, 200, "{seen}");
        assert!(seen["headers"].get(event_name).is_some(), "{event_name} in {seen}");
        assert!(seen["headers"].get(content_type).is_some(), "{content_type} in {seen}");
        stream.write_all(b"GET /_smyth/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Status: 1\r\n\r\n").unwrap();
        assert_eq!(response(&mut reader).0, 200);
    }

    // Pipelined: both requests written at once, then both answers read.
    let (mut stream, mut reader) = connect(&server);
    let both = [request("/rest", first, "one"), request("/rest", second, "two")].concat();
    stream.write_all(both.as_bytes()).unwrap();
    let (_, one) = response(&mut reader);
    let (_, two) = response(&mut reader);
    assert_eq!(names(&one["headers"]).iter().filter(|n| n.as_str() == "X-GitHub-Event").count(), 1, "{one}");
    assert_eq!(one["headers"]["content-type"], "text/plain", "{one}");
    assert_eq!(two["headers"]["x-github-EVENT"], "ping", "{two}");
    assert_eq!(two["multiValueHeaders"]["CONTENT-TYPE"], json!(["text/plain"]), "{two}");
}

#[test]
fn a_chunked_body_does_not_lose_the_next_requests_spelling() {
    let server = start();
    let (mut stream, mut reader) = connect(&server);
    let chunked =
        "POST /rest HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nX-First: 1\r\n\r\n\
                   4\r\nGET \r\n0\r\n\r\n";
    stream.write_all(chunked.as_bytes()).unwrap();
    let (status, one) = response(&mut reader);
    assert_eq!(status, 200, "{one}");
    assert!(one["headers"].get("X-First").is_some(), "{one}");
    stream.write_all(request("/rest", &[("x-SECOND", "2")], "").as_bytes()).unwrap();
    let (_, two) = response(&mut reader);
    assert_eq!(two["headers"]["x-SECOND"], "2", "{two}");
}

#[test]
fn http_apis_and_the_load_balancer_lower_case_every_name() {
    let server = start();
    for path in ["/http-v1", "/http-v2", "/alb"] {
        let seen = seen(&server, path, WEBHOOK);
        let headers = &seen["headers"];
        assert_eq!(headers["x-github-event"], "push", "{path}: {seen}");
        assert_eq!(headers["content-type"], "application/json", "{path}: {seen}");
        for name in names(headers) {
            assert_eq!(name, name.to_ascii_lowercase(), "{path}: {seen}");
        }
        if path == "/http-v1" {
            assert_eq!(seen["multiValueHeaders"]["x-mixed"], json!(["1", "2"]), "{seen}");
            for name in names(&seen["multiValueHeaders"]) {
                assert_eq!(name, name.to_ascii_lowercase(), "{path}: {seen}");
            }
        }
    }
    // The HTTP API v2 joins a repeated name's values with commas; the ALB (multi-value headers off)
    // keeps the last.
    assert_eq!(seen(&server, "/http-v2", WEBHOOK)["headers"]["x-mixed"], "1,2");
    assert_eq!(seen(&server, "/alb", WEBHOOK)["headers"]["x-mixed"], "2");
}
