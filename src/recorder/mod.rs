//! The edge's side of recording every invocation: the HTTP request an invocation came from, kept as
//! it is and written as JSON by the recorder's thread; `smyth invocations` (`cli.rs`);
//! `/_smyth/invocations` (`endpoints.rs`).

pub mod cli;
pub mod endpoints;

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use smyth_actors::recorder::row::{cut_text, CUT_AT};
use smyth_actors::recorder::{HttpRequestRecord, Origin, Source};

use crate::apigw::request::RequestSnapshot;

/// `{"method", "path", "query", "headers": {name: value}, "body", "isBase64Encoded"}`; repeated
/// headers are joined with `, `; a body over 1 MB is cut with the marker.
pub fn http_request<'a>(
    method: &str,
    path: &str,
    query: &str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> String {
    let mut names = serde_json::Map::new();
    for (name, value) in headers {
        match names.get_mut(name) {
            Some(serde_json::Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                names.insert(name.to_string(), value.into());
            }
        }
    }
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (cut_text(text), false),
        Err(_) => {
            let kept = &body[..body.len().min(CUT_AT)];
            let mut text = base64::engine::general_purpose::STANDARD.encode(kept);
            if body.len() > CUT_AT {
                text.push_str(&smyth_actors::recorder::row::cut_marker(body.len()));
            }
            (text, true)
        }
    };
    let value = serde_json::json!({
        "method": method,
        "path": path,
        "query": query,
        "headers": names,
        "body": body,
        "isBase64Encoded": base64,
    });
    value.to_string()
}

impl HttpRequestRecord for RequestSnapshot {
    fn to_json(&self) -> String {
        let headers = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        http_request(&self.method, &self.path, &self.query, headers, &self.body)
    }
}

/// An Invoke API call's request, taken apart for its record.
#[derive(Debug)]
pub struct InvokeRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl InvokeRequest {
    pub fn of(req: &actix_web::HttpRequest, body: &Bytes) -> Self {
        let headers = req.headers().iter();
        InvokeRequest {
            method: req.method().to_string(),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
            headers: headers
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body: body.clone(),
        }
    }
}

impl HttpRequestRecord for InvokeRequest {
    fn to_json(&self) -> String {
        let headers = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        http_request(&self.method, &self.path, &self.query, headers, &self.body)
    }
}

/// An origin with its HTTP request, when recording is on.
pub fn origin(
    source: Source,
    recording: bool,
    request: impl FnOnce() -> Arc<dyn HttpRequestRecord>,
) -> Origin {
    Origin { source, http_request: recording.then(request), ..Origin::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_keeps_repeated_headers_and_encodes_binary_bodies() {
        let headers = [("a", "1"), ("b", "2"), ("a", "3")];
        let json = http_request("POST", "/x", "q=1", headers.iter().copied(), b"hi");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["headers"], serde_json::json!({"a": "1, 3", "b": "2"}));
        assert_eq!((value["body"].as_str(), value["isBase64Encoded"].as_bool()), (Some("hi"), Some(false)));
        let json = http_request("GET", "/", "", std::iter::empty(), &[0xff, 0x00]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!((value["body"].as_str(), value["isBase64Encoded"].as_bool()), (Some("/wA="), Some(true)));
    }
}
