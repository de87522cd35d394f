//! A finished row and a log line as they cross to the writer's thread: packed (postcard) onto the
//! queue ([`super::queue`]) by the thread that finished them, and read back in place by the writer.

use serde::{Deserialize, Serialize};

use super::origin::HttpParts;
use super::row::Row;

/// A row as packed, every field borrowed from the buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedRow<'a> {
    pub id: &'a str,
    pub handler: &'a str,
    pub worker: Option<u64>,
    pub worker_name: Option<&'a str>,
    pub pid: Option<u32>,
    pub cold: bool,
    pub tenant: Option<&'a str>,
    pub source: &'a str,
    pub started_at_ms: u64,
    pub init_ms: Option<f64>,
    pub run_ms: f64,
    pub status: &'a str,
    #[serde(with = "serde_bytes")]
    pub event: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    pub result: Option<&'a [u8]>,
    pub error_type: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub error_stack: Option<&'a str>,
    #[serde(borrow)]
    pub http_request: Option<HttpParts<'a>>,
    pub chaos: Option<&'a str>,
}

/// A line the worker printed while serving request `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedLine<'a> {
    pub id: &'a str,
    pub text: &'a str,
}

impl<'a> PackedRow<'a> {
    pub fn of(row: &'a Row) -> Self {
        let error = row.error.as_ref();
        PackedRow {
            id: &row.id,
            handler: &row.handler,
            worker: row.worker.map(|worker| worker as u64),
            worker_name: row.worker_name.as_deref(),
            pid: row.pid,
            cold: row.cold,
            tenant: row.tenant.as_deref(),
            source: row.source.as_str(),
            started_at_ms: row.started_at_ms,
            init_ms: row.init_ms,
            run_ms: row.run_ms,
            status: row.status,
            event: &row.event,
            result: row.result.as_deref(),
            error_type: error.map(|e| e.error_type.as_str()),
            error_message: error.map(|e| e.message.as_str()),
            error_stack: error.and_then(|e| e.stack.as_deref()),
            http_request: row.http_request.as_ref().map(|request| request.parts()),
            chaos: row.chaos.as_deref(),
        }
    }
}

pub fn unpack_row(bytes: &[u8]) -> postcard::Result<PackedRow<'_>> {
    postcard::from_bytes(bytes)
}

pub fn unpack_line(bytes: &[u8]) -> postcard::Result<PackedLine<'_>> {
    postcard::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::invocation::Invocation;
    use crate::recorder::row::RowError;
    use crate::recorder::HttpRequestRecord;

    fn pack(row: &Row) -> Vec<u8> {
        postcard::to_allocvec(&PackedRow::of(row)).unwrap()
    }

    #[derive(Debug)]
    struct Request;

    impl HttpRequestRecord for Request {
        fn parts(&self) -> HttpParts<'_> {
            HttpParts {
                method: "POST",
                path: "/a b",
                query: "x=1",
                headers: vec![("a", "1"), ("a", "2")],
                body: b"\xff\x00",
            }
        }
    }

    #[test]
    fn a_row_comes_back_as_it_went_whatever_it_holds() {
        let invocation = Invocation::of(bytes::Bytes::from_static(b"{\"k\": \"\xc3\xa9\"}"));
        let bare = Row::new("r1".into(), "h", &invocation, 7);
        let mut full = Row::new("r2".into(), "orders", &invocation, u64::MAX);
        full.worker = Some(3);
        full.worker_name = Some("orders:3".into());
        full.pid = Some(u32::MAX);
        full.cold = true;
        full.tenant = Some("t".into());
        full.init_ms = Some(12.5);
        full.run_ms = f64::MIN_POSITIVE;
        full.status = "error";
        full.result = Some(bytes::Bytes::from_static(b""));
        full.error =
            Some(RowError { error_type: "E".into(), message: "m\n".into(), stack: Some("[]".into()) });
        full.http_request = Some(Arc::new(Request));
        full.chaos = Some("{}".into());
        for row in [&bare, &full] {
            assert_eq!(unpack_row(&pack(row)).unwrap(), PackedRow::of(row));
        }
        let back = pack(&full);
        let back = unpack_row(&back).unwrap();
        assert_eq!((back.worker, back.pid, back.started_at_ms), (Some(3), Some(u32::MAX), u64::MAX));
        assert_eq!((back.error_message, back.http_request.unwrap().body), (Some("m\n"), &b"\xff\x00"[..]));
    }

    #[test]
    fn a_line_comes_back_and_a_torn_buffer_is_an_error_not_a_panic() {
        let bytes = postcard::to_allocvec(&PackedLine { id: "r1", text: "hello\tworld" }).unwrap();
        assert_eq!(unpack_line(&bytes).unwrap(), PackedLine { id: "r1", text: "hello\tworld" });
        let row = pack(&Row::new("r".into(), "h", &Invocation::of(bytes::Bytes::from_static(b"{}")), 1));
        assert!(unpack_row(&row[..row.len() / 2]).is_err());
    }
}
