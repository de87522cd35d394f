use super::*;

fn head(method: &'static str, path: &str, len: usize) -> Head {
    Head {
        method,
        path: path.to_string(),
        len,
        content_length: 0,
        encoded: false,
        close: false,
        error_type: None,
    }
}

type Parsed = Result<Option<Head>, &'static str>;

#[test]
fn heads_give_what_the_loop_needs() {
    let next = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
    let post = b"POST /r/invocation/a/response HTTP/1.1\r\ncontent-length: 12\r\n\r\n{\"ok\": true}";
    let init =
        b"POST /e HTTP/1.1\r\nContent-Length: 2\r\nLambda-Runtime-Function-Error-Type: Runtime.X\r\n\r\n{}";
    let cases: Vec<(&[u8], Parsed)> = vec![
        (next, Ok(Some(head("GET", "/2018-06-01/runtime/invocation/next", next.len())))),
        (&next[..30], Ok(None)),
        (b"", Ok(None)),
        (
            post,
            Ok(Some(Head {
                content_length: 12,
                ..head("POST", "/r/invocation/a/response", post.len() - 12)
            })),
        ),
        (
            init,
            Ok(Some(Head {
                content_length: 2,
                error_type: Some("Runtime.X".into()),
                ..head("POST", "/e", init.len() - 2)
            })),
        ),
        (b"PUT /x HTTP/1.1\r\n\r\n", Ok(Some(head("other", "/x", 19)))),
        (b"GET /x HTTP/1.0\r\n\r\n", Ok(Some(Head { close: true, ..head("GET", "/x", 19) }))),
        (b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Ok(Some(head("GET", "/x", 43)))),
        (
            b"GET /x HTTP/1.1\r\nConnection: Close\r\n\r\n",
            Ok(Some(Head { close: true, ..head("GET", "/x", 38) })),
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            Ok(Some(Head { encoded: true, ..head("POST", "/x", 48) })),
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            Ok(Some(Head { content_length: 2, ..head("POST", "/x", 58) })),
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            Err("conflicting Content-Length headers"),
        ),
        (b"POST /x HTTP/1.1\r\nContent-Length: two\r\n\r\n", Err("a Content-Length that is not a number")),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", Err("a Content-Length that is not a number")),
        (b"NOT HTTP AT ALL\r\n\r\n", Err("malformed request head")),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_head(input), expected, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn too_many_headers_is_its_own_error() {
    let mut input = b"GET /x HTTP/1.1\r\n".to_vec();
    for n in 0..=MAX_HEADERS {
        input.extend_from_slice(format!("X-{n}: y\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    assert_eq!(parse_head(&input), Err("too many headers"));
}

fn encoded(reply: &Reply, close: bool) -> String {
    let mut out = Vec::new();
    encode(reply, close, &mut out);
    String::from_utf8(out).unwrap()
}

fn event(client_context: Option<&str>, tenant: Option<&str>) -> NextEvent {
    NextEvent {
        request_id: "r-1".into(),
        deadline_ms: 1700000000123,
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        trace_id: "Root=1-2-3".into(),
        client_context: client_context.map(str::to_string),
        tenant: tenant.map(str::to_string),
        payload: Bytes::from_static(b"{\"a\":1}"),
    }
}

#[test]
fn replies_are_framed_as_http_1_1() {
    let cases = [
        (
            Reply::accepted(),
            false,
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}",
        ),
        (
            Reply::unrouted(StatusCode::NOT_FOUND),
            true,
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Reply::Event(event(None, None)),
            false,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Lambda-Runtime-Aws-Request-Id: r-1\r\nLambda-Runtime-Deadline-Ms: 1700000000123\r\n\
             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n\
             Lambda-Runtime-Trace-Id: Root=1-2-3\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        ),
        (
            Reply::Event(event(Some("e30="), Some("t1"))),
            false,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Lambda-Runtime-Aws-Request-Id: r-1\r\nLambda-Runtime-Deadline-Ms: 1700000000123\r\n\
             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n\
             Lambda-Runtime-Trace-Id: Root=1-2-3\r\nLambda-Runtime-Client-Context: e30=\r\n\
             Lambda-Runtime-Aws-Tenant-Id: t1\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        ),
        (
            // A value that would split the head is left out, never written.
            Reply::Event(event(Some("x\r\nInjected: 1"), None)),
            false,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Lambda-Runtime-Aws-Request-Id: r-1\r\nLambda-Runtime-Deadline-Ms: 1700000000123\r\n\
             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n\
             Lambda-Runtime-Trace-Id: Root=1-2-3\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        ),
    ];
    for (reply, close, expected) in cases {
        assert_eq!(encoded(&reply, close), expected);
    }
}

#[test]
fn the_bootstrap_takes_the_202_byte_for_byte() {
    let accepted = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n";
    assert_eq!(encoded(&Reply::accepted(), false), format!("{accepted}{{\"status\":\"OK\"}}"));
    let bootstrap = smyth_actors::launch::BOOTSTRAP;
    let literal = accepted.replace("\r\n", "\\r\\n");
    assert!(bootstrap.contains(&format!("b\"{literal}\" + ACCEPTED_BODY")), "bootstrap.py's ACCEPTED");
    assert!(bootstrap.contains(r#"ACCEPTED_BODY = b'{"status":"OK"}'"#));
}

#[test]
fn a_202_waits_only_for_a_whole_next_already_in_hand() {
    let next = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
    let ok = Reply::accepted();
    let cases: [(&Reply, &[u8], bool); 7] = [
        (&ok, next, true),
        (&ok, b"", false),
        (&ok, &next[..next.len() - 2], false),
        (&ok, b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nContent-Length: 2\r\n\r\n", false),
        (&ok, b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false),
        (&ok, &[next.as_slice(), next.as_slice()].concat(), false),
        (&Reply::unrouted(StatusCode::NOT_FOUND), next, false),
    ];
    for (reply, input, expected) in cases {
        assert_eq!(holds_next(reply, input), expected, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn a_write_to_a_runtime_that_closed_its_end_fails() {
    // What `serve` counts on to hand back an event whose runtime went away while parked.
    use std::io::Write as _;
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    drop(theirs);
    let err = ours.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}
