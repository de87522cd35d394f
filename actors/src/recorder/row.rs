//! One recorded invocation, and the pure rules that fill it: its status and error from the outcome,
//! and the cut of bodies over 1 MB.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use super::origin::Source;
use crate::invocation::{FailureKind, Invocation, Outcome};

/// Bodies (event, result, HTTP request body, log) longer than this are cut, with [`cut_marker`].
pub const CUT_AT: usize = 1024 * 1024;

/// What follows the first [`CUT_AT`] bytes of a body that was cut.
pub fn cut_marker(total: usize) -> String {
    format!("[smyth: cut at 1 MB, {total} bytes in all]")
}

/// The body as recorded: itself (borrowed, as most are), or its first 1 MB and the marker.
pub fn cut(body: &[u8]) -> Cow<'_, [u8]> {
    if body.len() <= CUT_AT {
        return Cow::Borrowed(body);
    }
    let mut kept = body[..CUT_AT].to_vec();
    kept.extend_from_slice(cut_marker(body.len()).as_bytes());
    Cow::Owned(kept)
}

/// The same for text, cut on a character boundary.
pub fn cut_text(text: &str) -> Cow<'_, str> {
    if text.len() <= CUT_AT {
        return Cow::Borrowed(text);
    }
    let mut end = CUT_AT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{}", &text[..end], cut_marker(text.len())))
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub error_type: String,
    pub message: String,
    /// The stack as a JSON array of strings, when the runtime gave one.
    pub stack: Option<String>,
}

/// One row of the `invocations` table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub handler: String,
    /// The worker's slot and name (`orders:0`); None when the request never reached one (throttled).
    pub worker: Option<usize>,
    pub worker_name: Option<String>,
    pub pid: Option<u32>,
    pub cold: bool,
    /// The tenant of a tenant-isolated function.
    pub tenant: Option<String>,
    pub source: Source,
    pub started_at_ms: u64,
    pub init_ms: Option<f64>,
    /// 0 when the handler never ran.
    pub run_ms: f64,
    pub status: &'static str,
    /// The payload, whole: the writer cuts it (so the request path copies nothing).
    pub event: Bytes,
    pub result: Option<Bytes>,
    pub error: Option<RowError>,
    pub http_request: Option<Arc<dyn super::origin::HttpRequestRecord>>,
    /// The faults injected by chaos mode, as JSON.
    pub chaos: Option<String>,
}

impl Row {
    /// A row for `invocation` of `handler`, before a worker and an outcome are known.
    pub fn new(id: String, handler: &str, invocation: &Invocation, started_at_ms: u64) -> Row {
        Row {
            id,
            handler: handler.to_string(),
            worker: None,
            worker_name: None,
            pid: None,
            cold: false,
            tenant: invocation.tenant.clone(),
            source: invocation.origin.source,
            started_at_ms,
            init_ms: None,
            run_ms: 0.0,
            status: "ok",
            event: invocation.payload.clone(),
            result: None,
            error: None,
            http_request: invocation.origin.http_request.clone(),
            chaos: invocation.origin.chaos.as_ref().map(|c| c.to_json()),
        }
    }

    /// Fills in the status, result and error of `outcome`.
    pub fn ended(&mut self, outcome: &Outcome) {
        let (status, result, error) = outcome_fields(outcome);
        self.status = status;
        self.result = result;
        self.error = error;
    }
}

/// The row of a request answered 429 before it reached a worker.
pub fn throttled(
    id: String,
    handler: &str,
    invocation: &Invocation,
    rejection: &crate::invocation::Rejection,
) -> Row {
    let mut row = Row::new(id, handler, invocation, crate::status::epoch_ms(std::time::SystemTime::now()));
    row.status = "throttled";
    row.error = Some(RowError {
        error_type: "TooManyRequestsException".into(),
        message: rejection.to_string(),
        stack: None,
    });
    row
}

/// The status, result and error of an outcome: `ok`, `error` (the handler raised, or the runtime
/// failed), `timeout`.
pub fn outcome_fields(outcome: &Outcome) -> (&'static str, Option<Bytes>, Option<RowError>) {
    match outcome {
        Outcome::Success { body, .. } => ("ok", Some(body.clone()), None),
        Outcome::HandlerError { body, .. } => {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let error = RowError {
                error_type: text("errorType").unwrap_or_else(|| "Unhandled".into()),
                message: text("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
                stack: value.get("stackTrace").filter(|s| s.is_array()).map(|s| s.to_string()),
            };
            ("error", None, Some(error))
        }
        Outcome::Failed { error, message, .. } => {
            let status = if matches!(error, FailureKind::Timeout(_)) { "timeout" } else { "error" };
            let error = RowError {
                error_type: error.error_type().to_string(),
                message: message.clone(),
                stack: None,
            };
            (status, None, Some(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_outcome_has_its_status_result_and_error() {
        let ok = Outcome::Success { request_id: "r".into(), body: Bytes::from_static(b"{\"a\":1}") };
        let raised = Outcome::HandlerError {
            request_id: "r".into(),
            body: Bytes::from_static(
                br#"{"errorType":"ValueError","errorMessage":"boom","stackTrace":["  File x"]}"#,
            ),
        };
        let bare = Outcome::HandlerError { request_id: "r".into(), body: Bytes::from_static(b"oops") };
        let late = Outcome::Failed {
            request_id: "r".into(),
            error: FailureKind::Timeout(Duration::from_secs(1)),
            message: "Task timed out".into(),
        };
        let died =
            Outcome::Failed { request_id: "r".into(), error: FailureKind::Exited, message: "exit".into() };
        let error = |t: &str, m: &str, s: Option<&str>| {
            Some(RowError { error_type: t.into(), message: m.into(), stack: s.map(str::to_string) })
        };
        let cases = [
            (ok, "ok", Some(Bytes::from_static(b"{\"a\":1}")), None),
            (raised, "error", None, error("ValueError", "boom", Some(r#"["  File x"]"#))),
            (bare, "error", None, error("Unhandled", "oops", None)),
            (late, "timeout", None, error("Sandbox.Timedout", "Task timed out", None)),
            (died, "error", None, error("Runtime.ExitError", "exit", None)),
        ];
        for (outcome, status, result, err) in cases {
            assert_eq!(outcome_fields(&outcome), (status, result, err), "{outcome:?}");
        }
    }

    #[test]
    fn bodies_over_one_mb_are_cut_with_the_marker() {
        assert!(matches!(cut(b"small"), Cow::Borrowed(b"small")), "kept whole, not copied");
        let exact = vec![b'x'; CUT_AT];
        assert_eq!(cut(&exact).len(), CUT_AT, "1 MB exactly is kept whole");
        let big = vec![b'x'; CUT_AT + 10];
        let kept = cut(&big);
        assert!(kept.ends_with(cut_marker(CUT_AT + 10).as_bytes()));
        assert_eq!(kept.len(), CUT_AT + cut_marker(CUT_AT + 10).len());
        let text = "é".repeat(CUT_AT / 2 + 1);
        let kept = cut_text(&text);
        assert!(kept.ends_with(&cut_marker(text.len())) && kept.len() < text.len() + 64);
    }
}
