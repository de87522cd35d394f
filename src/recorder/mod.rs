//! The edge's side of recording every invocation: the HTTP request an invocation came from, as the
//! JSON its record keeps; `smyth invocations` (`cli.rs`); `/_smyth/invocations` (`endpoints.rs`).

pub mod cli;
pub mod endpoints;

use std::sync::Arc;

use base64::Engine;
use smyth_actors::recorder::row::{cut_text, CUT_AT};
use smyth_actors::recorder::{Origin, Source};

/// `{"method", "path", "query", "headers": {name: value}, "body", "isBase64Encoded"}`; repeated
/// headers are joined with `, `; a body over 1 MB is cut with the marker.
pub fn http_request<'a>(
    method: &str,
    path: &str,
    query: &str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> Arc<str> {
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
    value.to_string().into()
}

/// An origin with its HTTP request, when recording is on.
pub fn origin(source: Source, recording: bool, request: impl FnOnce() -> Arc<str>) -> Origin {
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
