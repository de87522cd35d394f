//! HTTP request → API Gateway HTTP API (payload format 2.0) event, as AWS builds it.

#[cfg(test)]
use actix_web::HttpRequest;
use actix_web::{http::header, web};
use base64::Engine as _;
use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::request::RequestSnapshot;
#[cfg(test)]
use super::request::{host_port, strip_port};

/// The account id smyth puts in events and ARNs.
pub const ACCOUNT_ID: &str = "000000000000";
/// The API id smyth puts in `requestContext.apiId`.
pub const API_ID: &str = "smyth";

/// What the router knows about the matched route.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    /// The handler's Starlette-style pattern (`/orders/{id:int}`).
    pub url_path: &'a str,
    /// The pattern's parameters as matched, in pattern order.
    pub path_params: &'a [(String, String)],
}

/// The API Gateway v2 event for one request, serialised straight from borrowed parts (no JSON tree:
/// it is built once per invocation on the hot path). Fields are in the order a JSON object's keys
/// sort, so the bytes are those of the same event as a `serde_json::Value`.
///
/// Absent parts are left out as AWS leaves them out: `cookies`, `queryStringParameters`,
/// `pathParameters` and `body` only appear when there is something to put in them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: BTreeMap<&'a str, Cow<'a, str>>,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    path_parameters: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<String, String>,
    raw_path: &'a str,
    raw_query_string: &'a str,
    request_context: V2Context<'a>,
    route_key: String,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Context<'a> {
    account_id: &'static str,
    api_id: &'static str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: V2Http<'a>,
    request_id: &'a str,
    route_key: String,
    stage: &'static str,
    time: String,
    time_epoch: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Cow<'a, str>,
}

impl V2Event<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

pub fn v2_event<'a>(request: &'a RequestSnapshot, route: &RouteInfo<'a>) -> V2Event<'a> {
    let mut headers = joined_headers(request);
    for (name, value) in request.forwarded_headers() {
        headers.entry(name).or_insert(Cow::Owned(value));
    }
    // API Gateway adds an X-Ray trace header to HTTP API events as it does to REST and ALB ones.
    headers.entry("x-amzn-trace-id").or_insert_with(|| Cow::Owned(request.trace_id()));
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let route_key = route_key(route.url_path);
    let domain = request.domain();
    let (body, is_base64_encoded) = text_or_base64(&request.body, is_text(request.content_type()));
    V2Event {
        body,
        cookies: cookies(request).collect(),
        headers,
        is_base64_encoded,
        path_parameters: route
            .path_params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect(),
        query_string_parameters: query_parameters(&request.query),
        raw_path: &request.path,
        raw_query_string: &request.query,
        request_context: V2Context {
            account_id: ACCOUNT_ID,
            api_id: API_ID,
            domain_name: domain,
            domain_prefix: domain.split('.').next().unwrap_or(domain),
            http: V2Http {
                method: &request.method,
                path: &request.path,
                protocol: &request.protocol,
                source_ip: &request.source_ip,
                user_agent,
            },
            request_id: &request.request_id,
            route_key: route_key.clone(),
            stage: "$default",
            time: clf_time(request.received_ms / 1000),
            time_epoch: request.received_ms,
        },
        route_key,
        version: "2.0",
    }
}

/// [`v2_event`] for an actix request, with a fresh request id and the current time.
#[cfg(test)]
pub fn build_v2_event(req: &HttpRequest, body: &[u8], route: &RouteInfo<'_>) -> Value {
    v2_event(&RequestSnapshot::capture(req, web::Bytes::copy_from_slice(body)), route).to_value()
}

/// [`build_v2_event`] with the clock and the request id given.
#[cfg(test)]
pub fn build_v2_event_at(
    req: &HttpRequest,
    body: &[u8],
    route: &RouteInfo<'_>,
    now_ms: u64,
    request_id: &str,
) -> Value {
    let request = RequestSnapshot::capture_at(req, web::Bytes::copy_from_slice(body), now_ms, request_id);
    v2_event(&request, route).to_value()
}

/// The body as the event carries it: `(None, false)` when empty, the text when `as_text` and it is
/// UTF-8, else base64 with `isBase64Encoded` true.
pub fn text_or_base64(body: &[u8], as_text: bool) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) if as_text => (Some(text.to_owned()), false),
        _ => (Some(base64::engine::general_purpose::STANDARD.encode(body)), true),
    }
}

/// `pathParameters`: the route's parameters as a JSON object.
pub fn path_parameters(params: &[(String, String)]) -> Value {
    Value::Object(params.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect())
}

/// `ANY /pattern` with Starlette converters in API Gateway's syntax: `{id:int}` → `{id}`,
/// `{rest:path}` → `{rest+}`.
pub fn route_key(url_path: &str) -> String {
    format!("ANY {}", resource_path(url_path))
}

/// The pattern in API Gateway's resource syntax: `/orders/{id:int}` → `/orders/{id}`,
/// `/files/{rest:path}` → `/files/{rest+}`.
pub fn resource_path(url_path: &str) -> String {
    let mut key = String::with_capacity(url_path.len());
    let mut rest = url_path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        key.push_str(&rest[..open]);
        let inner = &rest[open + 1..close];
        let (name, converter) = inner.split_once(':').unwrap_or((inner, "str"));
        key.push('{');
        key.push_str(name.trim());
        if converter.trim() == "path" {
            key.push('+');
        }
        key.push('}');
        rest = &rest[close + 1..];
    }
    key.push_str(rest);
    key
}

/// Request headers with lower-case names, repeated ones joined with `,` (the `cookie` header goes
/// to `cookies` instead, as AWS does).
fn joined_headers(request: &RequestSnapshot) -> BTreeMap<&str, Cow<'_, str>> {
    let mut headers: BTreeMap<&str, Cow<'_, str>> = BTreeMap::new();
    for (name, value) in &request.headers {
        if name == header::COOKIE.as_str() {
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(joined) => {
                let joined = joined.to_mut();
                joined.push(',');
                joined.push_str(value);
            }
            None => {
                headers.insert(name, Cow::Borrowed(value));
            }
        }
    }
    headers
}

/// Every cookie of every `Cookie` header, in order.
fn cookies(request: &RequestSnapshot) -> impl Iterator<Item = &str> {
    request
        .headers
        .iter()
        .filter(|(name, _)| name == header::COOKIE.as_str())
        .flat_map(|(_, value)| value.split(';'))
        .map(str::trim)
        .filter(|cookie| !cookie.is_empty())
}

/// Decoded query parameters, repeated ones joined with `,` in the order given.
fn query_parameters(raw: &str) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in decoded_query(raw) {
        match params.get_mut(&name) {
            Some(joined) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => {
                params.insert(name, value);
            }
        }
    }
    params
}

/// The query string's `(name, value)` pairs, percent- and `+`-decoded, in order.
pub fn decoded_query(raw: &str) -> Vec<(String, String)> {
    if raw.is_empty() {
        return Vec::new();
    }
    web::Query::<Vec<(String, String)>>::from_query(raw).map(web::Query::into_inner).unwrap_or_else(|_| {
        raw.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    })
}

/// Whether a body of this content type travels as text (otherwise base64, `isBase64Encoded`).
///
/// API Gateway HTTP APIs pass JSON and `text/*` as text and base64-encode the rest; smyth also
/// passes the other textual types as text, and a body with no content type that is valid UTF-8.
/// Form posts are base64 on AWS (a classic surprise in production), so they are here too.
pub fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence.is_empty() {
        return true;
    }
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "application" => {
            matches!(subtype, "json" | "xml" | "javascript" | "ecmascript" | "graphql" | "x-ndjson" | "yaml")
                || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
        }
        _ => false,
    }
}

/// `24/Nov/2026:09:06:41 +0000`: the time format of `requestContext.time`.
pub fn clf_time(epoch_secs: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    time::OffsetDateTime::from_unix_timestamp(epoch_secs as i64)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    const NO_PARAMS: &[(String, String)] = &[];

    fn event(req: TestRequest, body: &[u8]) -> Value {
        event_on(req, body, "/orders/{id:int}", NO_PARAMS)
    }

    fn event_on(req: TestRequest, body: &[u8], url_path: &str, params: &[(String, String)]) -> Value {
        let req = req.to_http_request();
        let route = RouteInfo { url_path, path_params: params };
        build_v2_event_at(&req, body, &route, 1_795_511_201_123, "req-1")
    }

    #[test]
    fn the_events_bytes_are_its_json_trees_with_keys_in_order() {
        let req = TestRequest::post()
            .uri("/orders/7?b=2&a=1&a=3")
            .insert_header(("Host", "api.example.com:8080"))
            .insert_header(("Content-Type", "application/json"))
            .append_header(("Cookie", "s=1; t=2"))
            .append_header(("X-Multi", "one"))
            .append_header(("X-Multi", "two"))
            .to_http_request();
        let params = [("id".to_string(), "7".to_string()), ("at".to_string(), "x".to_string())];
        let request =
            RequestSnapshot::capture_at(&req, web::Bytes::from_static(b"{}"), 1_795_511_201_123, "r");
        let event = v2_event(&request, &RouteInfo { url_path: "/orders/{id:int}", path_params: &params });
        let tree = event.to_value();
        assert_eq!(event.to_bytes(), serde_json::to_vec(&tree).unwrap());
        assert_eq!(tree["headers"]["x-multi"], "one,two");
        assert_eq!(tree["queryStringParameters"], json!({"a": "1,3", "b": "2"}));
        assert_eq!(tree["pathParameters"], json!({"at": "x", "id": "7"}));
        assert_eq!(tree["cookies"], json!(["s=1", "t=2"]));
    }

    #[test]
    fn route_keys_use_api_gateway_syntax() {
        for (pattern, key) in [
            ("/", "ANY /"),
            ("/orders", "ANY /orders"),
            ("/orders/{id}", "ANY /orders/{id}"),
            ("/orders/{id:int}", "ANY /orders/{id}"),
            ("/u/{u:uuid}/x/{f:float}", "ANY /u/{u}/x/{f}"),
            ("/files/{rest:path}", "ANY /files/{rest+}"),
            ("/s/{s:str}/t", "ANY /s/{s}/t"),
            ("/broken/{x", "ANY /broken/{x"),
        ] {
            assert_eq!(route_key(pattern), key, "{pattern}");
        }
    }

    #[test]
    fn the_whole_event_for_a_simple_get() {
        let req = crate::apigw::tests::curl_get("/orders/7?a=1");
        let params = [("id".to_owned(), "7".to_owned())];
        let got = event_on(req, b"", "/orders/{id:int}", &params);
        let want = json!({
            "version": "2.0",
            "routeKey": "ANY /orders/{id}",
            "rawPath": "/orders/7",
            "rawQueryString": "a=1",
            "headers": {
                "host": "localhost:8080",
                "user-agent": "curl/8.5.0",
                "x-amzn-trace-id": "Root=1-6b0553a1-e10000000000000000000000",
                "x-forwarded-for": "10.1.2.3",
                "x-forwarded-port": "8080",
                "x-forwarded-proto": "http",
            },
            "queryStringParameters": {"a": "1"},
            "pathParameters": {"id": "7"},
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "smyth",
                "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {
                    "method": "GET",
                    "path": "/orders/7",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "10.1.2.3",
                    "userAgent": "curl/8.5.0",
                },
                "requestId": "req-1",
                "routeKey": "ANY /orders/{id}",
                "stage": "$default",
                "time": "24/Nov/2026:09:06:41 +0000",
                "timeEpoch": 1_795_511_201_123_u64,
            },
            "isBase64Encoded": false,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn optional_parts_are_absent_when_empty() {
        let got = event(TestRequest::get().uri("/orders"), b"");
        for key in ["cookies", "queryStringParameters", "pathParameters", "body"] {
            assert!(got.get(key).is_none(), "{key} should be absent: {got}");
        }
        assert_eq!(got["rawQueryString"], "");
        assert_eq!(got["isBase64Encoded"], false);
        assert_eq!(got["requestContext"]["http"]["userAgent"], "");
    }

    #[test]
    fn headers_are_lower_cased_and_repeated_ones_comma_joined() {
        let req = TestRequest::get()
            .uri("/orders")
            .insert_header(("X-Custom-Thing", "One"))
            .append_header(("Accept", "text/html"))
            .append_header(("accept", "application/json"))
            .insert_header(("X-Forwarded-For", "1.2.3.4"));
        let headers = event(req, b"")["headers"].clone();
        assert_eq!(headers["x-custom-thing"], "One");
        assert_eq!(headers["accept"], "text/html,application/json");
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4", "a client's own value is kept");
        assert!(headers.get("X-Custom-Thing").is_none());
    }

    #[test]
    fn cookies_move_out_of_the_headers() {
        let req = TestRequest::get()
            .uri("/orders")
            .append_header(("Cookie", "a=1; b=2"))
            .append_header(("Cookie", "c=3"));
        let got = event(req, b"");
        assert_eq!(got["cookies"], json!(["a=1", "b=2", "c=3"]));
        assert!(got["headers"].get("cookie").is_none());
    }

    #[test]
    fn query_parameters_are_decoded_and_repeated_ones_comma_joined() {
        for (query, want) in [
            ("a=1&a=2&b=x", json!({"a": "1,2", "b": "x"})),
            ("q=hello%20world&plus=a+b", json!({"q": "hello world", "plus": "a b"})),
            ("flag", json!({"flag": ""})),
            ("e=&e=1", json!({"e": ",1"})),
            ("caf%C3%A9=cr%C3%A8me", json!({"café": "crème"})),
        ] {
            let got = event(TestRequest::get().uri(&format!("/orders?{query}")), b"");
            assert_eq!(got["queryStringParameters"], want, "{query}");
            assert_eq!(got["rawQueryString"], query, "raw query string is kept as sent");
        }
    }

    #[test]
    fn path_parameters_come_from_the_route() {
        let params = [("user".to_owned(), "ann".to_owned()), ("rest".to_owned(), "a/b/c.txt".to_owned())];
        let got = event_on(
            TestRequest::get().uri("/u/ann/files/a/b/c.txt"),
            b"",
            "/u/{user}/files/{rest:path}",
            &params,
        );
        assert_eq!(got["pathParameters"], json!({"user": "ann", "rest": "a/b/c.txt"}));
        assert_eq!(got["routeKey"], "ANY /u/{user}/files/{rest+}");
        assert_eq!(got["requestContext"]["routeKey"], "ANY /u/{user}/files/{rest+}");
    }

    #[test]
    fn bodies_are_text_or_base64_by_content_type() {
        let binary: &[u8] = &[0xff, 0x00, 0x10, 0x80];
        for (content_type, body, want_body, want_b64) in [
            (Some("application/json"), &b"{\"a\":1}"[..], "{\"a\":1}", false),
            (Some("application/json; charset=utf-8"), b"[1]", "[1]", false),
            (Some("text/plain"), b"hi", "hi", false),
            (Some("TEXT/HTML"), b"<p>", "<p>", false),
            (Some("application/vnd.api+json"), b"{}", "{}", false),
            (Some("application/xml"), b"<a/>", "<a/>", false),
            (Some("application/javascript"), b"x()", "x()", false),
            (None, b"plain", "plain", false),
            (Some("application/x-www-form-urlencoded"), b"a=1", "YT0x", true),
            (Some("application/octet-stream"), b"abc", "YWJj", true),
            (Some("image/png"), binary, "/wAQgA==", true),
            (Some("multipart/form-data; boundary=x"), b"--x", "LS14", true),
            (None, binary, "/wAQgA==", true),
            (Some("text/plain"), binary, "/wAQgA==", true),
        ] {
            let mut req = TestRequest::post().uri("/orders");
            if let Some(ct) = content_type {
                req = req.insert_header(("Content-Type", ct));
            }
            let got = event(req, body);
            assert_eq!(got["body"], want_body, "{content_type:?}");
            assert_eq!(got["isBase64Encoded"], want_b64, "{content_type:?}");
        }
    }

    #[test]
    fn request_context_reflects_method_host_and_protocol() {
        let req = TestRequest::with_uri("/orders")
            .method(actix_web::http::Method::PATCH)
            .insert_header(("Host", "api.example.com"));
        let got = event(req, b"");
        let ctx = &got["requestContext"];
        assert_eq!(ctx["http"]["method"], "PATCH");
        assert_eq!(ctx["domainName"], "api.example.com");
        assert_eq!(ctx["domainPrefix"], "api");
        assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(got["headers"]["x-forwarded-port"], "80");
    }

    #[test]
    fn fresh_request_ids_and_current_time() {
        let req = TestRequest::get().uri("/orders").to_http_request();
        let route = RouteInfo { url_path: "/orders", path_params: NO_PARAMS };
        let a = build_v2_event(&req, b"", &route);
        let b = build_v2_event(&req, b"", &route);
        assert_ne!(a["requestContext"]["requestId"], b["requestContext"]["requestId"]);
        let epoch = a["requestContext"]["timeEpoch"].as_u64().unwrap();
        assert!(epoch > 1_700_000_000_000);
        assert_eq!(a["requestContext"]["time"], clf_time(epoch / 1000));
    }

    #[test]
    fn clf_time_formats_like_api_gateway() {
        for (secs, want) in [
            (0, "01/Jan/1970:00:00:00 +0000"),
            (951_782_400, "29/Feb/2000:00:00:00 +0000"),
            (1_583_348_638, "04/Mar/2020:19:03:58 +0000"),
            (1_795_511_201, "24/Nov/2026:09:06:41 +0000"),
            (4_102_444_799, "31/Dec/2099:23:59:59 +0000"),
        ] {
            assert_eq!(clf_time(secs), want);
        }
    }

    #[test]
    fn host_parsing() {
        assert_eq!(strip_port("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(host_port("127.0.0.1:8080"), "8080");
        assert_eq!(host_port("[::1]:9000"), "9000");
        assert_eq!(host_port("[::1]"), "80");
        assert_eq!(host_port("example.com"), "80");
    }
}
