//! Lambda result → HTTP response by API Gateway v2 rules, and every error a `url_path` route answers.

use actix_web::{
    http::{
        header::{HeaderName, HeaderValue, SET_COOKIE},
        StatusCode,
    },
    HttpResponse, HttpResponseBuilder, ResponseError,
};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use smyth_actors::invocation::MAX_PAYLOAD;
use smyth_actors::invocation::{FailureKind, Outcome, Rejection};

pub(super) const JSON: &str = "application/json";

/// The HTTP response for a handler's JSON result, by API Gateway's payload 2.0 rules.
///
/// - an object with `statusCode` is a response: `headers`, `multiValueHeaders`, `cookies`
///   (each a `Set-Cookie`), `body`, `isBase64Encoded`;
/// - a JSON string is a 200 with that string as the body;
/// - any other JSON (an object without `statusCode`, a number, a list, `null`, a bool) is a 200
///   with the result itself as an `application/json` body;
/// - anything else (not JSON, a bad status, bad base64) is a 502, as API Gateway answers a
///   malformed Lambda response.
pub fn map_result(result: &[u8]) -> HttpResponse {
    let value: Value = match serde_json::from_slice(result) {
        Ok(value) => value,
        Err(error) => return malformed(&format!("the result is not JSON: {error}")),
    };
    match value {
        Value::Object(map) if map.contains_key("statusCode") => proxy_response(map),
        Value::String(body) => HttpResponse::Ok().content_type(JSON).body(body),
        _ => HttpResponse::Ok().content_type(JSON).body(actix_web::web::Bytes::copy_from_slice(result)),
    }
}

pub(super) fn proxy_response(map: Map<String, Value>) -> HttpResponse {
    let status = match map.get("statusCode").and_then(status_code) {
        Some(status) => status,
        None => return malformed(&format!("bad statusCode {}", map["statusCode"])),
    };
    let mut response = HttpResponse::build(status);
    if let Some(Value::Object(headers)) = map.get("headers") {
        for (name, value) in headers {
            if let Some(value) = header_text(value) {
                append_header(&mut response, name, &value);
            }
        }
    }
    if let Some(Value::Object(headers)) = map.get("multiValueHeaders") {
        for (name, values) in headers {
            let values = match values {
                Value::Array(values) => values.as_slice(),
                single => std::slice::from_ref(single),
            };
            for value in values.iter().filter_map(header_text) {
                append_header(&mut response, name, &value);
            }
        }
    }
    if let Some(Value::Array(cookies)) = map.get("cookies") {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            append_header(&mut response, SET_COOKIE.as_str(), cookie);
        }
    }
    let body: Vec<u8> = match map.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(body)) if map.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            match base64::engine::general_purpose::STANDARD.decode(body.trim()) {
                Ok(bytes) => bytes,
                Err(error) => return malformed(&format!("body is not valid base64: {error}")),
            }
        }
        Some(Value::String(body)) => body.clone().into_bytes(),
        // Not a string: API Gateway wants one; be kind and send it as JSON.
        Some(other) => other.to_string().into_bytes(),
    };
    response.body(body)
}

/// A Lambda response's `statusCode`: a number (or numeric string) from 100 to 599.
/// The `body` of a REST API or ALB result, which must be a string (base64 when `isBase64Encoded`).
pub(super) fn strict_body(map: &serde_json::Map<String, Value>) -> Result<Vec<u8>, String> {
    let base64 = match map.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("isBase64Encoded is not a boolean: {other}")),
    };
    match map.get("body") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(body)) if base64 => base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("body is not valid base64: {e}")),
        Some(Value::String(body)) => Ok(body.clone().into_bytes()),
        Some(other) => Err(format!("body is not a string: {other}")),
    }
}

pub(super) fn status_code(value: &Value) -> Option<StatusCode> {
    let code = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if !(100..=599).contains(&code) {
        return None;
    }
    StatusCode::from_u16(code as u16).ok()
}

pub(super) fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(items.iter().filter_map(header_text).collect::<Vec<_>>().join(",")),
        Value::Null | Value::Object(_) => None,
    }
}

pub(super) fn append_header(response: &mut HttpResponseBuilder, name: &str, value: &str) {
    match (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        (Ok(name), Ok(value)) => {
            response.append_header((name, value));
        }
        _ => tracing::warn!(header = name, "dropping a response header that is not valid HTTP"),
    }
}

fn malformed(why: &str) -> HttpResponse {
    tracing::warn!("malformed Lambda proxy response: {why}");
    json_error(StatusCode::BAD_GATEWAY, json!({"message": "Internal Server Error"}))
}

pub(super) fn json_error(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status).content_type(JSON).body(body.to_string())
}

/// The HTTP response for how an invocation ended.
pub fn outcome_response(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Success { body, .. } => map_result(&body),
        Outcome::HandlerError { body, .. } => {
            let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut doc = Map::new();
            doc.insert("message".into(), "Internal Server Error".into());
            for key in ["errorType", "errorMessage"] {
                if let Some(value) = error.get(key).filter(|v| !v.is_null()) {
                    doc.insert(key.into(), value.clone());
                }
            }
            json_error(StatusCode::BAD_GATEWAY, Value::Object(doc))
        }
        Outcome::Failed { error, message, .. } => failure_response(&error, &message),
    }
}

/// The HTTP response for an invocation that failed outside the handler's code.
pub fn failure_response(kind: &FailureKind, message: &str) -> HttpResponse {
    let (status, text) = match kind {
        FailureKind::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
        _ => (StatusCode::BAD_GATEWAY, "Internal Server Error"),
    };
    let mut doc = json!({"message": text, "errorType": kind.error_type()});
    if !message.is_empty() {
        doc["errorMessage"] = message.into();
    }
    json_error(status, doc)
}

/// The HTTP response for an invocation that never reached a worker.
pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
    match rejection {
        Rejection::NotFound(_) => not_found(),
        Rejection::ReservedConcurrency | Rejection::AccountConcurrency | Rejection::QueueFull => {
            json_error(StatusCode::TOO_MANY_REQUESTS, json!({"message": "Too Many Requests"}))
        }
        Rejection::Unavailable => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, json!({"message": "Service Unavailable"}))
        }
    }
}

/// A request the handler's event format cannot carry: 400 `{"message": problem}`.
pub fn bad_request(problem: &str) -> HttpResponse {
    json_error(StatusCode::BAD_REQUEST, json!({ "message": problem }))
}

/// No route matches: 404 `{"message":"Not Found"}`.
pub fn not_found() -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
}

/// A request body over [`MAX_PAYLOAD`]: 413 `{"message":"Request Entity Too Large"}`.
pub fn payload_too_large() -> HttpResponse {
    json_error(StatusCode::PAYLOAD_TOO_LARGE, json!({"message": "Request Entity Too Large"}))
}

/// Errors of a `url_path` route that never produced an outcome, for `?` in actix handlers.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("request body over {MAX_PAYLOAD} bytes")]
    PayloadTooLarge,
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.error_response().status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            GatewayError::PayloadTooLarge => payload_too_large(),
            GatewayError::Rejected(rejection) => rejection_response(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{body::MessageBody, http::header::CONTENT_TYPE};
    use std::time::Duration;

    /// (status, content-type, set-cookies, all headers as (name, value), body).
    struct Got {
        status: u16,
        content_type: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Got {
        fn header_values(&self, name: &str) -> Vec<&str> {
            self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
        }
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    fn got(response: HttpResponse) -> Got {
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().try_into_bytes().unwrap().to_vec();
        Got { status, content_type, headers, body }
    }

    fn mapped(result: &str) -> Got {
        got(map_result(result.as_bytes()))
    }

    #[test]
    fn results_without_status_code_are_200_json() {
        for (result, body) in [
            (r#"{"a":1,"z":[1,2]}"#, r#"{"a":1,"z":[1,2]}"#),
            (r#"{"zeta":1,"alpha":2}"#, r#"{"zeta":1,"alpha":2}"#),
            ("42", "42"),
            ("1.5", "1.5"),
            ("[1,\"two\"]", "[1,\"two\"]"),
            ("null", "null"),
            ("true", "true"),
            (r#""hello world""#, "hello world"),
            (r#""{\"a\":1}""#, r#"{"a":1}"#),
            (r#""""#, ""),
        ] {
            let got = mapped(result);
            assert_eq!(got.status, 200, "{result}");
            assert_eq!(got.content_type.as_deref(), Some(JSON), "{result}");
            assert_eq!(String::from_utf8(got.body).unwrap(), body, "{result}");
        }
    }

    #[test]
    fn proxy_responses_are_used_as_given() {
        let got = mapped(
            r#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-N":7,"X-B":true},"body":"made"}"#,
        );
        assert_eq!(got.status, 201);
        assert_eq!(got.content_type.as_deref(), Some("text/plain"));
        assert_eq!(got.header_values("x-n"), ["7"]);
        assert_eq!(got.header_values("x-b"), ["true"]);
        assert_eq!(got.body, b"made");
    }

    #[test]
    fn status_code_shapes() {
        for (result, status) in [
            (r#"{"statusCode":204}"#, 204),
            (r#"{"statusCode":"302","headers":{"location":"/x"}}"#, 302),
            (r#"{"statusCode":599}"#, 599),
            (r#"{"statusCode":100}"#, 100),
            (r#"{"statusCode":99}"#, 502),
            (r#"{"statusCode":600}"#, 502),
            (r#"{"statusCode":-1}"#, 502),
            (r#"{"statusCode":200.5}"#, 502),
            (r#"{"statusCode":null}"#, 502),
            (r#"{"statusCode":"abc"}"#, 502),
        ] {
            assert_eq!(mapped(result).status, status, "{result}");
        }
        let got = mapped(r#"{"statusCode":204}"#);
        assert!(got.body.is_empty());
        assert_eq!(got.content_type, None, "no content type is invented");
    }

    #[test]
    fn cookies_become_set_cookie_headers() {
        let got = mapped(
            r#"{"statusCode":200,"cookies":["a=1; Path=/","b=2; HttpOnly"],"headers":{"set-cookie":"c=3"},"body":""}"#,
        );
        assert_eq!(got.header_values("set-cookie"), ["c=3", "a=1; Path=/", "b=2; HttpOnly"]);
    }

    #[test]
    fn multi_value_headers_are_tolerated() {
        let got = mapped(
            r#"{"statusCode":200,"headers":{"x-a":"1"},"multiValueHeaders":{"x-a":["2","3"],"x-b":"4","vary":["a","b"]}}"#,
        );
        assert_eq!(got.header_values("x-a"), ["1", "2", "3"]);
        assert_eq!(got.header_values("x-b"), ["4"]);
        assert_eq!(got.header_values("vary"), ["a", "b"]);
    }

    #[test]
    fn invalid_headers_are_dropped_not_fatal() {
        let got = mapped(
            r#"{"statusCode":200,"headers":{"bad name":"x","x-ok":"y","x-nl":"a\nb","x-null":null},"body":"b"}"#,
        );
        assert_eq!(got.status, 200);
        assert_eq!(got.header_values("x-ok"), ["y"]);
        assert!(got.header_values("x-nl").is_empty());
        assert!(got.header_values("x-null").is_empty());
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let got = mapped(r#"{"statusCode":200,"isBase64Encoded":true,"body":"/wAQgA=="}"#);
        assert_eq!(got.body, [0xff, 0x00, 0x10, 0x80]);
        let got = mapped(r#"{"statusCode":200,"isBase64Encoded":false,"body":"/wAQgA=="}"#);
        assert_eq!(got.body, b"/wAQgA==");
        let got = mapped(r#"{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}"#);
        assert_eq!(got.status, 502);
        assert_eq!(got.json(), json!({"message": "Internal Server Error"}));
    }

    #[test]
    fn odd_bodies() {
        let got = mapped(r#"{"statusCode":200,"body":{"a":1}}"#);
        assert_eq!(got.body, br#"{"a":1}"#);
        let got = mapped(r#"{"statusCode":200,"body":null}"#);
        assert!(got.body.is_empty());
        let got = mapped(r#"{"statusCode":200,"body":"zażółć"}"#);
        assert_eq!(got.body, "zażółć".as_bytes());
    }

    #[test]
    fn a_result_that_is_not_json_is_a_502() {
        for result in ["", "{", "nope", "\"unterminated"] {
            let got = mapped(result);
            assert_eq!(got.status, 502, "{result:?}");
            assert_eq!(got.json(), json!({"message": "Internal Server Error"}));
        }
    }

    fn outcome(outcome: Outcome) -> Got {
        got(outcome_response(outcome))
    }

    #[test]
    fn success_outcomes_are_mapped() {
        let got = outcome(Outcome::Success {
            request_id: "r".into(),
            body: r#"{"statusCode":418,"body":"teapot"}"#.into(),
        });
        assert_eq!(got.status, 418);
        assert_eq!(got.body, b"teapot");
    }

    #[test]
    fn handler_errors_are_502_with_type_and_message() {
        let got = outcome(Outcome::HandlerError {
            request_id: "r".into(),
            body: r#"{"errorMessage":"boom","errorType":"ValueError","requestId":"r","stackTrace":["  File x"]}"#.into(),
        });
        assert_eq!(got.status, 502);
        assert_eq!(got.content_type.as_deref(), Some(JSON));
        assert_eq!(
            got.json(),
            json!({"message": "Internal Server Error", "errorType": "ValueError", "errorMessage": "boom"})
        );
        let got = outcome(Outcome::HandlerError { request_id: "r".into(), body: "garbage".into() });
        assert_eq!(got.status, 502);
        assert_eq!(got.json(), json!({"message": "Internal Server Error"}));
    }

    #[test]
    fn failures_by_kind() {
        for (kind, status, message, error_type) in [
            (
                FailureKind::Timeout(Duration::from_secs(3)),
                504,
                "Endpoint request timed out",
                "Sandbox.Timedout",
            ),
            (FailureKind::Exited, 502, "Internal Server Error", "Runtime.ExitError"),
            (FailureKind::OutOfMemory, 502, "Internal Server Error", "Runtime.OutOfMemory"),
            (FailureKind::ResponseTooLarge, 502, "Internal Server Error", "Function.ResponseSizeTooLarge"),
            (
                FailureKind::Init("Runtime.ImportModuleError".into()),
                502,
                "Internal Server Error",
                "Runtime.ImportModuleError",
            ),
        ] {
            let got = outcome(Outcome::Failed {
                request_id: "r".into(),
                error: kind.clone(),
                message: "details".into(),
            });
            assert_eq!(got.status, status, "{kind:?}");
            assert_eq!(
                got.json(),
                json!({"message": message, "errorType": error_type, "errorMessage": "details"}),
                "{kind:?}"
            );
        }
        let got = got(failure_response(&FailureKind::Exited, ""));
        assert_eq!(got.json(), json!({"message": "Internal Server Error", "errorType": "Runtime.ExitError"}));
    }

    #[test]
    fn rejections() {
        for (rejection, status, body) in [
            (Rejection::NotFound("x".into()), 404, json!({"message": "Not Found"})),
            (Rejection::ReservedConcurrency, 429, json!({"message": "Too Many Requests"})),
            (Rejection::AccountConcurrency, 429, json!({"message": "Too Many Requests"})),
            (Rejection::QueueFull, 429, json!({"message": "Too Many Requests"})),
            (Rejection::Unavailable, 503, json!({"message": "Service Unavailable"})),
        ] {
            let got = got(rejection_response(&rejection));
            assert_eq!(got.status, status, "{rejection:?}");
            assert_eq!(got.content_type.as_deref(), Some(JSON));
            assert_eq!(got.json(), body, "{rejection:?}");
        }
    }

    #[test]
    fn gateway_errors_answer_like_the_functions() {
        for (error, status, body) in [
            (GatewayError::from(Rejection::NotFound("/x".into())), 404, json!({"message": "Not Found"})),
            (GatewayError::PayloadTooLarge, 413, json!({"message": "Request Entity Too Large"})),
            (GatewayError::from(Rejection::QueueFull), 429, json!({"message": "Too Many Requests"})),
        ] {
            assert_eq!(error.status_code().as_u16(), status);
            let got = got(error.error_response());
            assert_eq!(got.status, status);
            assert_eq!(got.json(), body);
        }
        assert_eq!(MAX_PAYLOAD, 6_291_556);
    }
}
