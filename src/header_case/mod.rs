//! Header names as the client spelt them, for the REST API event (`apigw-v1`), which keeps them so
//! (`X-GitHub-Event`, `content-type`); actix-http lower-cases every name as it parses.
//!
//! The client listener's connections are wrapped in a [`SpelledStream`]: as bytes pass to actix-http,
//! a [`HeadScanner`] finds each request head and pushes its raw names into the connection's
//! [`ConnectionHeads`]. actix-http answers one request after another on a connection, in the order
//! sent, so the n-th request the app sees takes the n-th head ([`attach_spelling`]), and only if
//! its names match the request's, case aside. Whenever that fails, the request has no [`Spelling`]
//! and the event falls back to actix's names.

mod scanner;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::HttpMessage as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use scanner::{HeadScanner, RawNames};

/// Heads scanned but not yet taken that a connection keeps (pipelined requests); older ones are
/// dropped, and their requests fall back.
const MAX_WAITING: usize = 64;

/// A client connection's stream, scanning the request heads that pass through it.
pub struct SpelledStream {
    inner: TcpStream,
    scanner: HeadScanner,
    heads: ConnectionHeads,
}

impl SpelledStream {
    pub fn new(inner: TcpStream) -> Self {
        SpelledStream { inner, scanner: HeadScanner::default(), heads: ConnectionHeads::default() }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }

    /// The connection's heads, for its connection data.
    pub fn heads(&self) -> ConnectionHeads {
        self.heads.clone()
    }
}

impl AsyncRead for SpelledStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            for names in this.scanner.feed(&buf.filled()[before..]) {
                this.heads.push(names);
            }
        }
        poll
    }
}

impl AsyncWrite for SpelledStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The heads of one connection, numbered in the order sent, and how many requests took theirs.
/// Shared by the stream and the connection data, on the connection's one thread.
#[derive(Clone, Default)]
pub struct ConnectionHeads(Rc<RefCell<HeadLog>>);

#[derive(Default)]
struct HeadLog {
    waiting: VecDeque<(u64, RawNames)>,
    scanned: u64,
    taken: u64,
}

impl ConnectionHeads {
    fn push(&self, names: RawNames) {
        let mut log = self.0.borrow_mut();
        let number = log.scanned;
        log.scanned += 1;
        log.waiting.push_back((number, names));
        if log.waiting.len() > MAX_WAITING {
            log.waiting.pop_front();
        }
    }

    /// The head of the connection's next request, if the scanner found it.
    fn take(&self) -> Option<RawNames> {
        let mut log = self.0.borrow_mut();
        let number = log.taken;
        log.taken += 1;
        while log.waiting.front().is_some_and(|(n, _)| *n < number) {
            log.waiting.pop_front();
        }
        match log.waiting.front() {
            Some((n, _)) if *n == number => log.waiting.pop_front().map(|(_, names)| names),
            _ => None,
        }
    }
}

/// A request's header names as sent: lower-case name → the first spelling the client used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spelling(pub HashMap<String, String>);

impl Spelling {
    /// The spelling of `names`, if they are the names of `headers` (one per line), case aside.
    pub fn of(names: &[String], headers: &HeaderMap) -> Option<Spelling> {
        let mut sent: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut parsed: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        sent.sort_unstable();
        parsed.sort_unstable();
        if sent != parsed {
            return None;
        }
        let mut spelling = HashMap::with_capacity(names.len());
        for name in names {
            spelling.entry(name.to_ascii_lowercase()).or_insert_with(|| name.clone());
        }
        Some(Spelling(spelling))
    }

    /// How the client spelt `name` (lower case), if it sent it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Middleware for every request of the app: gives a client-port request the next head of its
/// connection, as a [`Spelling`] in its extensions. Every request must take one, in order, whether or
/// not it reaches a handler route, so this wraps everything else.
pub async fn attach_spelling(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let names = req.conn_data::<ConnectionHeads>().and_then(ConnectionHeads::take);
    if let Some(spelling) = names.and_then(|names| Spelling::of(&names, req.headers())) {
        req.extensions_mut().insert(spelling);
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn names(list: &[&str]) -> RawNames {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_request_takes_its_own_head() {
        let heads = ConnectionHeads::default();
        heads.push(names(&["A"]));
        heads.push(names(&["B"]));
        assert_eq!(heads.take(), Some(names(&["A"])));
        assert_eq!(heads.take(), Some(names(&["B"])));
        assert_eq!(heads.take(), None, "a request the scanner did not find falls back");
        heads.push(names(&["C"]));
        assert_eq!(heads.take(), None, "a late head is never another request's");
        assert_eq!(heads.take(), None);
    }

    #[test]
    fn heads_beyond_the_waiting_limit_fall_back_without_shifting() {
        let heads = ConnectionHeads::default();
        for n in 0..MAX_WAITING + 2 {
            heads.push(names(&[&n.to_string()]));
        }
        assert_eq!(heads.take(), None);
        assert_eq!(heads.take(), None);
        assert_eq!(heads.take(), Some(names(&["2"])));
    }

    #[test]
    fn a_spelling_needs_the_same_names() {
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-mixed", "1"), ("x-mixed", "2"), ("content-type", "a/b")] {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let got = Spelling::of(&names(&["X-MiXeD", "content-type", "x-mixed"]), &headers).unwrap();
        assert_eq!(got.get("x-mixed"), Some("X-MiXeD"), "the first spelling");
        assert_eq!(got.get("content-type"), Some("content-type"));
        assert_eq!(Spelling::of(&names(&["X-MiXeD", "Content-Type"]), &headers), None, "a line short");
        assert_eq!(Spelling::of(&names(&["X-MiXeD", "X-Other", "Content-Type"]), &headers), None);
    }
}
