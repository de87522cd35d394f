//! The edge's side of recording every invocation: the HTTP request an invocation came from, kept as
//! it is and its parts packed with the invocation's row; `smyth invocations` (`cli.rs`);
//! `/_smyth/invocations` (`endpoints.rs`).

pub mod cli;
pub mod endpoints;

use std::sync::Arc;

use bytes::Bytes;
use smyth_actors::recorder::{HttpParts, HttpRequestRecord, Origin, Source};

use crate::apigw::request::RequestSnapshot;

impl HttpRequestRecord for RequestSnapshot {
    fn parts(&self) -> HttpParts<'_> {
        parts(&self.method, &self.path, &self.query, &self.headers, &self.body)
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
    fn parts(&self) -> HttpParts<'_> {
        parts(&self.method, &self.path, &self.query, &self.headers, &self.body)
    }
}

fn parts<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
) -> HttpParts<'a> {
    let headers = headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    HttpParts { method, path, query, headers, body }
}

/// An origin with its HTTP request, when recording is on.
pub fn origin(
    source: Source,
    recording: bool,
    request: impl FnOnce() -> Arc<dyn HttpRequestRecord>,
) -> Origin {
    Origin { source, http_request: recording.then(request), ..Origin::default() }
}
