//! The bundled runtime's Unix socket, served by hand: HTTP/1.1 with a `Content-Length` on every body,
//! requests in order (the bootstrap pipelines its result with the next `/next`), one task per
//! connection that reads, calls the worker and writes its reply into one buffer. Both ends are ours,
//! so the general server (routing, extractors, header maps, date cache, keep-alive timers) is cost
//! without use on the hottest path smyth has; the TCP endpoints keep actix-web for every other runtime.
//!
//! The kernel names the caller (SO_PEERCRED) once, when it connects: that pid is each call's peer.
//! A result's 202 is held back while the pipelined `/next` behind it waits, and written with its
//! event: one wake-up of the runtime per invocation.

use std::io::Write;
use std::time::Duration;

use actix_rt::net::UnixStream;
use actix_web::http::StatusCode;
use bytes::{Buf, Bytes, BytesMut};
use smyth_actors::endpoint::RuntimeTarget;
use smyth_actors::invocation::MAX_PAYLOAD;
use smyth_actors::messages::{NextEvent, Peer, Undelivered};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::calls::{self, Call, Reply};
use super::Target;

/// The most a request's head may take: the bootstrap's are under 300 bytes.
const MAX_HEAD: usize = 16 * 1024;
/// How long a request that has begun may take to arrive whole (actix-web's client request timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEADERS: usize = 32;

/// What the connection loop needs of a request's head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// `GET` or `POST`; anything else is `"other"`, which no call takes.
    method: &'static str,
    path: String,
    /// Bytes the head took, up to and with the blank line.
    len: usize,
    content_length: usize,
    /// A `Transfer-Encoding` was given: not taken here.
    encoded: bool,
    /// The connection ends after this request (`Connection: close`, or HTTP/1.0).
    close: bool,
    /// `Lambda-Runtime-Function-Error-Type`.
    error_type: Option<String>,
}

/// Parses a head at the start of `input`: None while it is incomplete.
fn parse_head(input: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many headers"),
        Err(_) => return Err("malformed request head"),
    };
    let method = match request.method {
        Some("GET") => "GET",
        Some("POST") => "POST",
        _ => "other",
    };
    let mut head = Head {
        method,
        path: request.path.unwrap_or_default().to_string(),
        len,
        content_length: 0,
        encoded: false,
        close: request.version == Some(0),
        error_type: None,
    };
    let length = crate::framing::content_length(request.headers)?.unwrap_or(0);
    head.content_length = usize::try_from(length).map_err(|_| "a Content-Length too large")?;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.encoded = true;
        } else if name.eq_ignore_ascii_case("connection") {
            let value = header.value.trim_ascii();
            if value.eq_ignore_ascii_case(b"close") {
                head.close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                head.close = false;
            }
        } else if name.eq_ignore_ascii_case("lambda-runtime-function-error-type") {
            head.error_type = std::str::from_utf8(header.value).ok().map(str::to_string);
        }
    }
    Ok(Some(head))
}

/// Serves one connection until the runtime closes it (or sends what cannot be served).
pub async fn serve(mut stream: UnixStream, target: RuntimeTarget) {
    let pid = stream.peer_cred().ok().and_then(|cred| cred.pid()).and_then(|pid| u32::try_from(pid).ok());
    let peer = Peer::Unix { pid };
    let worker = Target::from(&target);
    let mut input = BytesMut::with_capacity(4096);
    let mut output = Vec::with_capacity(1024);
    loop {
        let head = match read_head(&mut stream, &mut input).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err((status, problem)) => return refuse(&mut stream, status, problem).await,
        };
        if head.encoded {
            let problem = "send the body with a Content-Length: Transfer-Encoding is not taken here";
            return refuse(&mut stream, StatusCode::LENGTH_REQUIRED, problem).await;
        }
        input.advance(head.len);
        // A body over the limit is read past, not kept: the call fails, the connection goes on (a
        // closed one would break the runtime's write of it, and the runtime with it).
        let body = match head.content_length > MAX_PAYLOAD {
            true if discard_body(&mut stream, &mut input, head.content_length).await => None,
            false => match read_body(&mut stream, &mut input, head.content_length).await {
                Some(body) => Some(body),
                None => return,
            },
            true => return,
        };
        let close = head.close;
        let reply = match calls::route(head.method, &head.path) {
            Err(status) => Reply::unrouted(status),
            // No peek for a runtime gone while parked: the write of its event fails, below.
            Ok(Call::Next) => calls::next(worker, peer, || false).await,
            Ok(Call::RestoreNext) => calls::restore_next(worker, peer).await,
            Ok(Call::Result { request_id, is_error }) => {
                calls::post_result(worker, peer, request_id, is_error, body).await
            }
            Ok(call @ (Call::InitError | Call::RestoreError)) => {
                calls::init_error(worker, peer, call, head.error_type.as_deref(), body).await
            }
        };
        encode(&reply, close, &mut output);
        if !close && holds_next(&reply, &input) {
            // The result's 202 waits for the event the pipelined `/next` gets, and both go in one
            // write: the runtime reads them at once instead of waking twice.
            continue;
        }
        if stream.write_all(&output).await.is_err() {
            // A write to a Unix socket whose runtime has closed it fails (EPIPE): its event is
            // handed back, to wait for a new `/next` or process.
            if let Reply::Event(event) = reply {
                worker.do_send(Undelivered { request_id: event.request_id });
            }
            return;
        }
        if close {
            return;
        }
        output.clear();
    }
}

/// Whether `reply` is a result's 202 and `input` already holds the whole next request, a `/next`:
/// the reply may wait for that one's. (A request still arriving, or another call, is not waited on.)
fn holds_next(reply: &Reply, input: &[u8]) -> bool {
    let accepted = matches!(reply, Reply::Json(StatusCode::ACCEPTED, _));
    accepted
        && matches!(parse_head(input), Ok(Some(head))
            if head.len == input.len() && head.content_length == 0
                && calls::route(head.method, &head.path) == Ok(Call::Next))
}

/// Reads until a whole head is in `input`. None when the runtime closed the connection between
/// requests; an error names what is wrong with the head (or that it never came whole).
async fn read_head(stream: &mut UnixStream, input: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    loop {
        if let Some(head) = parse_head(input).map_err(|problem| (StatusCode::BAD_REQUEST, problem))? {
            return Ok(Some(head));
        }
        if input.len() >= MAX_HEAD {
            return Err((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large"));
        }
        let begun = !input.is_empty();
        match read_more(stream, input, begun).await {
            Ok(0) | Err(_) if !begun => return Ok(None),
            Ok(0) => {
                return Err((StatusCode::BAD_REQUEST, "connection closed in the middle of a request head"))
            }
            Ok(_) => {}
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "request head not sent whole in time")),
        }
    }
}

/// Why a request is refused, with the status it gets.
type Refusal = (StatusCode, &'static str);

/// Reads until `input` starts with a body of `len` bytes, and takes it. None when the connection
/// ended (or stalled) first.
async fn read_body(stream: &mut UnixStream, input: &mut BytesMut, len: usize) -> Option<Bytes> {
    if input.capacity() < len {
        input.reserve(len - input.len());
    }
    while input.len() < len {
        match read_more(stream, input, true).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(input.split_to(len).freeze())
}

/// Reads past a body of `len` bytes without keeping it; false when the connection ended (or
/// stalled) first.
async fn discard_body(stream: &mut UnixStream, input: &mut BytesMut, mut len: usize) -> bool {
    loop {
        let held = input.len().min(len);
        input.advance(held);
        len -= held;
        if len == 0 {
            return true;
        }
        input.reserve(64 * 1024);
        match read_more(stream, input, true).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// One read into `input`. Waits without limit between requests (the runtime is running its handler);
/// a request that has `begun` must arrive whole within `REQUEST_TIMEOUT`.
async fn read_more(stream: &mut UnixStream, input: &mut BytesMut, begun: bool) -> std::io::Result<usize> {
    if input.capacity() - input.len() < 1024 {
        input.reserve(4096);
    }
    if !begun {
        return stream.read_buf(input).await;
    }
    match actix_rt::time::timeout(REQUEST_TIMEOUT, stream.read_buf(input)).await {
        Ok(read) => read,
        Err(elapsed) => Err(elapsed.into()),
    }
}

/// Answers with `status` and `problem`, and ends the connection.
async fn refuse(stream: &mut UnixStream, status: StatusCode, problem: &str) {
    let mut output = Vec::new();
    encode(&Reply::error(status, "InvalidRequest", problem), true, &mut output);
    let _ = stream.write_all(&output).await;
    let _ = stream.shutdown().await;
}

/// Writes `reply` as an HTTP/1.1 response into `out`.
fn encode(reply: &Reply, close: bool, out: &mut Vec<u8>) {
    let (status, body) = match reply {
        Reply::Json(status, body) => (*status, body),
        Reply::Event(event) => (StatusCode::OK, &event.payload),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    if !body.is_empty() || matches!(reply, Reply::Event(_)) {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    if let Reply::Event(event) = reply {
        event_headers(event, out);
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

/// The `Lambda-Runtime-*` headers of an event.
fn event_headers(event: &NextEvent, out: &mut Vec<u8>) {
    header(out, "Lambda-Runtime-Aws-Request-Id", &event.request_id);
    let _ = write!(out, "Lambda-Runtime-Deadline-Ms: {}\r\n", event.deadline_ms);
    header(out, "Lambda-Runtime-Invoked-Function-Arn", &event.function_arn);
    header(out, "Lambda-Runtime-Trace-Id", &event.trace_id);
    if let Some(context) = &event.client_context {
        header(out, "Lambda-Runtime-Client-Context", context);
    }
    if let Some(tenant) = &event.tenant {
        header(out, "Lambda-Runtime-Aws-Tenant-Id", tenant);
    }
}

/// One header line. A value that would break the framing (a line break, a NUL) is left out, as
/// actix-web would have refused it; every value here is smyth's own or was a valid header already.
fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        tracing::warn!("left out the Runtime API header {name}: its value has a line break");
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
