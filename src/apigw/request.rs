//! What the event builders need of an HTTP request, captured at the edge.
//!
//! actix-web's `HttpRequest` cannot leave the thread that received it, and the event is built where
//! the route is matched (the router actor), so the edge takes this `Send` snapshot first.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{http::header, web::Bytes, HttpMessage as _, HttpRequest};

use crate::header_case::Spelling;

/// One request, as the client sent it.
#[derive(Debug, Clone)]
pub struct RequestSnapshot {
    pub method: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    /// The query string as sent, without the `?`.
    pub query: String,
    /// Every header line in the order actix-web gives them (a name's values stay together, in the
    /// order sent). Names are lower case: actix-web normalises them as it parses.
    pub headers: Vec<(String, String)>,
    /// How the client spelt each name, when the edge could tell (`header_case`); empty otherwise.
    pub spelling: Spelling,
    pub body: Bytes,
    /// The client's address (`127.0.0.1` when unknown).
    pub source_ip: String,
    /// `Host` as the client gave it, with its port.
    pub host: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub protocol: String,
    /// When the request arrived, in epoch milliseconds.
    pub received_ms: u64,
    /// A fresh id for `requestContext.requestId` and friends.
    pub request_id: String,
}

impl RequestSnapshot {
    pub fn capture(req: &HttpRequest, body: Bytes) -> Self {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Self::capture_at(req, body, now_ms, &uuid::Uuid::new_v4().to_string())
    }

    /// [`RequestSnapshot::capture`] with the clock and the request id given.
    pub fn capture_at(req: &HttpRequest, body: Bytes, now_ms: u64, request_id: &str) -> Self {
        let (host, scheme) = {
            let conn = req.connection_info();
            (conn.host().to_owned(), conn.scheme().to_owned())
        };
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let spelling = req.extensions().get::<Spelling>().cloned().unwrap_or_default();
        RequestSnapshot {
            spelling,
            method: req.method().as_str().to_owned(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers,
            body,
            source_ip: req
                .peer_addr()
                .map(|addr| addr.ip().to_string())
                .unwrap_or_else(|| "127.0.0.1".to_owned()),
            host,
            scheme,
            protocol: format!("{:?}", req.version()),
            received_ms: now_ms,
            request_id: request_id.to_owned(),
        }
    }

    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }

    pub fn user_agent(&self) -> &str {
        self.header(header::USER_AGENT.as_str()).unwrap_or("")
    }

    /// The `x-forwarded-*` headers a load balancer or API Gateway adds, for the ones the client did
    /// not send itself.
    pub fn forwarded_headers(&self) -> [(&'static str, String); 3] {
        [
            ("x-forwarded-for", self.source_ip.clone()),
            ("x-forwarded-port", host_port(&self.host).to_owned()),
            ("x-forwarded-proto", self.scheme.clone()),
        ]
    }

    /// An X-Ray trace header for this request, `Root=1-<epoch seconds, hex>-<24 hex digits>`, as a
    /// load balancer or API Gateway adds it (`x-amzn-trace-id`).
    pub fn trace_id(&self) -> String {
        let digits: String = self.request_id.chars().filter(char::is_ascii_hexdigit).take(24).collect();
        format!("Root=1-{:08x}-{digits:0<24}", self.received_ms / 1000)
    }

    /// The host name without its port: `requestContext.domainName`.
    pub fn domain(&self) -> &str {
        strip_port(&self.host)
    }
}

pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

pub fn host_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && !port.contains(']') && !name.is_empty() => port,
        _ => "80",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn captures_what_the_builders_need() {
        let req = TestRequest::post()
            .uri("/a%20b/c?x=1&y=%20")
            .insert_header(("Host", "api.example.com:9000"))
            .insert_header(("User-Agent", "curl/8"))
            .append_header(("X-Many", "1"))
            .append_header(("X-Many", "2"))
            .peer_addr("10.0.0.9:4000".parse().unwrap())
            .to_http_request();
        let got = RequestSnapshot::capture_at(&req, Bytes::from_static(b"hi"), 42, "rid");
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/a%20b/c");
        assert_eq!(got.query, "x=1&y=%20");
        assert_eq!(got.body, "hi");
        assert_eq!(got.source_ip, "10.0.0.9");
        assert_eq!(got.host, "api.example.com:9000");
        assert_eq!(got.domain(), "api.example.com");
        assert_eq!(got.scheme, "http");
        assert_eq!(got.protocol, "HTTP/1.1");
        assert_eq!((got.received_ms, got.request_id.as_str()), (42, "rid"));
        assert_eq!(got.user_agent(), "curl/8");
        let many: Vec<&str> =
            got.headers.iter().filter(|(n, _)| n == "x-many").map(|(_, v)| v.as_str()).collect();
        assert_eq!(many, ["1", "2"]);
        assert_eq!(got.forwarded_headers()[1], ("x-forwarded-port", "9000".to_owned()));
    }
}
