//! Where an invocation came from, carried on the [`crate::invocation::Invocation`] for its record:
//! the source (route, Invoke API, async, CLI, or another developer's shadow and replay runs), the
//! HTTP request it was made from, and the chaos faults injected into it.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::row::{cut_marker, cut_text, CUT_AT};

/// The `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// A handler's `url_path` route.
    Http,
    /// The Lambda Invoke API, `RequestResponse`.
    #[default]
    Invoke,
    /// The Invoke API's `Event` (the async queue).
    Async,
    /// `smyth invoke`.
    Cli,
    /// A throwaway environment's run (the state-leak detector).
    Shadow,
    /// `smyth replay`.
    Replay,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Invoke => "invoke",
            Source::Async => "async",
            Source::Cli => "cli",
            Source::Shadow => "shadow",
            Source::Replay => "replay",
        }
    }
}

/// The HTTP request an invocation came from, kept as it is on the request path; its parts are
/// packed with the finished row and written as JSON ([`HttpParts::to_json`]) by the recorder's thread.
pub trait HttpRequestRecord: Send + Sync + std::fmt::Debug {
    fn parts(&self) -> HttpParts<'_>;
}

/// The parts of an HTTP request the record keeps, borrowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// In the order sent; a name may come more than once.
    #[serde(borrow)]
    pub headers: Vec<(&'a str, &'a str)>,
    #[serde(with = "serde_bytes")]
    pub body: &'a [u8],
}

impl HttpParts<'_> {
    /// `{"method", "path", "query", "headers": {name: value}, "body", "isBase64Encoded"}`; repeated
    /// headers are joined with `, `; a body over 1 MB is cut with the marker. Written straight into
    /// the string (no `serde_json::Value` tree): this runs once per recorded invocation.
    pub fn to_json(&self) -> String {
        // A request has a dozen headers or so: a list searched in place beats a map.
        let mut joined: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(self.headers.len());
        for &(name, value) in &self.headers {
            match joined.iter_mut().find(|(seen, _)| *seen == name) {
                Some((_, values)) => {
                    let values = values.to_mut();
                    values.push_str(", ");
                    values.push_str(value);
                }
                None => joined.push((name, Cow::Borrowed(value))),
            }
        }
        let (body, is_base64_encoded) = match std::str::from_utf8(self.body) {
            Ok(text) => (cut_text(text), false),
            Err(_) => {
                let kept = &self.body[..self.body.len().min(CUT_AT)];
                let mut text = base64::engine::general_purpose::STANDARD.encode(kept);
                if self.body.len() > CUT_AT {
                    text.push_str(&cut_marker(self.body.len()));
                }
                (Cow::Owned(text), true)
            }
        };
        let record = Json {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: joined,
            body,
            is_base64_encoded,
        };
        serde_json::to_string(&record).expect("strings always serialise")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Json<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    #[serde(serialize_with = "as_object")]
    headers: Vec<(&'a str, Cow<'a, str>)>,
    body: Cow<'a, str>,
    is_base64_encoded: bool,
}

fn as_object<S: serde::Serializer>(headers: &[(&str, Cow<'_, str>)], to: S) -> Result<S::Ok, S::Error> {
    to.collect_map(headers.iter().map(|(name, value)| (name, value)))
}

/// What the record needs to know of an invocation beside its event.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source: Source,
    /// The HTTP request it came from.
    pub http_request: Option<Arc<dyn HttpRequestRecord>>,
    /// The faults chaos mode injected (set by the supervisor).
    pub chaos: Option<Box<crate::chaos::Injected>>,
    /// The request id the caller was already given (an async event's 202 `x-amzn-RequestId`): the
    /// handler's `context.aws_request_id` and the record's id, as on AWS.
    pub request_id: Option<String>,
}

impl Origin {
    pub fn new(source: Source) -> Self {
        Origin { source, ..Origin::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(parts: HttpParts<'_>) -> serde_json::Value {
        serde_json::from_str(&parts.to_json()).unwrap()
    }

    #[test]
    fn the_request_keeps_repeated_headers_and_encodes_binary_bodies() {
        let headers = vec![("a", "1"), ("b", "2"), ("a", "3")];
        let value = json(HttpParts { method: "POST", path: "/x", query: "q=1", headers, body: b"hi" });
        assert_eq!(
            value,
            serde_json::json!({"method": "POST", "path": "/x", "query": "q=1", "headers": {"a": "1, 3", "b": "2"},
                "body": "hi", "isBase64Encoded": false})
        );
        let value =
            json(HttpParts { method: "GET", path: "/", query: "", headers: vec![], body: &[0xff, 0x00] });
        assert_eq!((value["body"].as_str(), value["isBase64Encoded"].as_bool()), (Some("/wA="), Some(true)));
        let big = vec![0xffu8; CUT_AT + 1];
        let value = json(HttpParts { method: "GET", path: "/", query: "", headers: vec![], body: &big });
        assert!(value["body"].as_str().unwrap().ends_with(&cut_marker(CUT_AT + 1)));
    }
}
