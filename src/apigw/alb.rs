//! Application Load Balancer, Lambda target with multi-value headers off: the event and the response
//! rules.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};
use smyth_actors::messages::RouteMatch;

use super::event::{text_or_base64, ACCOUNT_ID};
use super::request::RequestSnapshot;
use super::response::{append_header, header_text, status_code, strict_body};
use super::short_id;

/// The region in the target group ARN (the workers' default `AWS_REGION`).
const REGION: &str = "eu-central-1";
/// The most JSON a Lambda target may answer with; a larger response is a 502.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// The ALB event for one request.
///
/// As the load balancer sends it: header names lower case and, for a repeated name, the last value;
/// `queryStringParameters` always present and *not* decoded (keys nor values), the last value of a
/// repeated name; `body` `""` when empty, the text for `text/*`, JSON, JavaScript and XML, base64
/// (`isBase64Encoded` true) for other content types.
pub fn alb_event(request: &RequestSnapshot, route: &RouteMatch) -> Value {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), Value::String(value.clone()));
    }
    let added = request.forwarded_headers().into_iter().chain([("x-amzn-trace-id", request.trace_id())]);
    for (name, value) in added {
        headers.entry(name).or_insert(Value::String(value));
    }
    let mut query = Map::new();
    for pair in request.query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let (body, is_base64) = text_or_base64(&request.body, is_text(request.content_type()));
    json!({
        "requestContext": {"elb": {"targetGroupArn": target_group_arn(&route.handler)}},
        "httpMethod": request.method,
        "path": request.path,
        "queryStringParameters": query,
        "headers": headers,
        "body": body.unwrap_or_default(),
        "isBase64Encoded": is_base64,
    })
}

/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID`, one per handler.
pub fn target_group_arn(handler: &str) -> String {
    // A target group name: at most 32 letters, digits and hyphens.
    let name: String =
        handler.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(32).collect();
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:targetgroup/{name}/{}", short_id(handler, 16))
}

/// The content types the load balancer passes as text; a body with no content type that is valid
/// UTF-8 is text too.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(essence.as_str(), "" | "application/json" | "application/javascript" | "application/xml")
}

/// The HTTP response for a handler's JSON result, by the load balancer's rules: an object with
/// `statusCode` (required), `statusDescription`, `headers` (the last value wins; `multiValueHeaders`
/// is ignored, as it is with multi-value headers off), `body` (a string) and `isBase64Encoded`.
/// Anything else, or a result over 1 MB, is the load balancer's `502 Bad Gateway` page.
///
/// `statusDescription` is checked but not sent: the reason phrase is the standard one for the code.
pub fn map_result(result: &[u8]) -> HttpResponse {
    match target_response(result) {
        Ok(response) => response,
        Err(why) => {
            tracing::warn!("malformed Lambda response (ALB): {why}");
            bad_gateway()
        }
    }
}

fn target_response(result: &[u8]) -> Result<HttpResponse, String> {
    if result.len() > MAX_RESPONSE {
        return Err(format!("{} bytes, over the 1 MB a Lambda target may answer", result.len()));
    }
    let value: Value = serde_json::from_slice(result).map_err(|e| format!("the result is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!("the result is not an object: {value}"));
    };
    let status = map
        .get("statusCode")
        .and_then(status_code)
        .ok_or_else(|| format!("bad or missing statusCode {:?}", map.get("statusCode")))?;
    if let Some(description) = map.get("statusDescription").filter(|d| !d.is_null() && !d.is_string()) {
        return Err(format!("statusDescription is not a string: {description}"));
    }
    let body = strict_body(&map)?;
    let mut response = HttpResponse::build(status);
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                match value {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                        append_header(&mut response, name, &header_text(value).unwrap_or_default())
                    }
                    other => return Err(format!("headers.{name} is not a string: {other}")),
                }
            }
        }
        Some(other) => return Err(format!("headers is not an object: {other}")),
    }
    Ok(response.body(body))
}

/// What the load balancer answers when its target fails.
fn bad_gateway() -> HttpResponse {
    const PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                        <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
    HttpResponse::BadGateway().insert_header((CONTENT_TYPE, "text/html")).body(PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apigw::tests::{answer, curl_get, route, snapshot};
    use actix_web::test::TestRequest;

    #[test]
    fn the_whole_event_for_a_get() {
        let req = curl_get("/items/7?q=a%20b&q=last&plus=a+b&flag")
            .append_header(("Accept", "text/html"))
            .append_header(("Accept", "application/json"))
            .append_header(("Cookie", "a=1"));
        let got = alb_event(&snapshot(req, b""), &route("/items/{id:int}", &[("id", "7")]));
        let want = json!({
            "requestContext": {"elb": {"targetGroupArn": target_group_arn("items")}},
            "httpMethod": "GET",
            "path": "/items/7",
            "queryStringParameters": {"q": "last", "plus": "a+b", "flag": ""},
            "headers": {
                "accept": "application/json",
                "cookie": "a=1",
                "host": "localhost:8080",
                "user-agent": "curl/8.5.0",
                "x-amzn-trace-id": "Root=1-6b0553a1-0123456789abcdef01234567",
                "x-forwarded-for": "10.1.2.3",
                "x-forwarded-port": "8080",
                "x-forwarded-proto": "http",
            },
            "body": "",
            "isBase64Encoded": false,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn query_strings_are_not_decoded() {
        for (query, want) in [
            ("", json!({})),
            ("a=%20x", json!({"a": "%20x"})),
            ("caf%C3%A9=1", json!({"caf%C3%A9": "1"})),
            ("a=1&a=2", json!({"a": "2"})),
        ] {
            let req = TestRequest::get().uri(&format!("/x?{query}"));
            let got = alb_event(&snapshot(req, b""), &route("/x", &[]));
            assert_eq!(got["queryStringParameters"], want, "{query}");
        }
    }

    #[test]
    fn target_group_arns() {
        let arn = target_group_arn("my_handler.v2");
        let (head, id) = arn.rsplit_once('/').unwrap();
        assert_eq!(head, "arn:aws:elasticloadbalancing:eu-central-1:000000000000:targetgroup/my-handler-v2");
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(arn, target_group_arn("my_handler.v2"), "stable");
        assert_ne!(arn, target_group_arn("other"));
    }

    #[test]
    fn bodies_by_content_type() {
        for (content_type, body, want_body, want_b64) in [
            (Some("application/json"), &b"{}"[..], "{}", false),
            (Some("text/csv; charset=utf-8"), b"a,b", "a,b", false),
            (Some("application/javascript"), b"x()", "x()", false),
            (Some("application/xml"), b"<a/>", "<a/>", false),
            (None, b"plain", "plain", false),
            (Some("application/vnd.api+json"), b"{}", "e30=", true),
            (Some("application/x-www-form-urlencoded"), b"a=1", "YT0x", true),
            (Some("text/plain"), &[0xff][..], "/w==", true),
        ] {
            let mut req = TestRequest::post().uri("/x");
            if let Some(ct) = content_type {
                req = req.insert_header(("Content-Type", ct));
            }
            let got = alb_event(&snapshot(req, body), &route("/x", &[]));
            assert_eq!(got["body"], want_body, "{content_type:?}");
            assert_eq!(got["isBase64Encoded"], want_b64, "{content_type:?}");
        }
    }

    #[test]
    fn target_responses() {
        let got = answer(map_result(
            br#"{"statusCode":201,"statusDescription":"201 Created","headers":{"Content-Type":"text/plain","X-N":7},"multiValueHeaders":{"x-ignored":["1"]},"body":"made"}"#,
        ));
        assert_eq!(got.status, 201);
        assert_eq!(got.values("content-type"), ["text/plain"]);
        assert_eq!(got.values("x-n"), ["7"]);
        assert!(got.values("x-ignored").is_empty(), "multi-value headers are off");
        assert_eq!(got.body, b"made");
        let got = answer(map_result(br#"{"statusCode":200,"isBase64Encoded":true,"body":"/wAQgA=="}"#));
        assert_eq!(got.body, [0xff, 0x00, 0x10, 0x80]);
        let got = answer(map_result(br#"{"statusCode":204}"#));
        assert_eq!((got.status, got.body.len()), (204, 0));
        assert!(got.values("content-type").is_empty());
    }

    #[test]
    fn malformed_responses_are_the_load_balancers_502() {
        let big = format!(r#"{{"statusCode":200,"body":"{}"}}"#, "x".repeat(MAX_RESPONSE));
        for result in [
            "",
            "nope",
            r#""string""#,
            "[]",
            r#"{"body":"no status"}"#,
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":200,"statusDescription":5}"#,
            r#"{"statusCode":200,"body":{"a":1}}"#,
            r#"{"statusCode":200,"headers":{"x":["a"]}}"#,
            r#"{"statusCode":200,"isBase64Encoded":true,"body":"!!"}"#,
            &big,
        ] {
            let got = answer(map_result(result.as_bytes()));
            assert_eq!(got.status, 502, "{:.60}", result);
            assert_eq!(got.values("content-type"), ["text/html"]);
            assert!(String::from_utf8_lossy(&got.body).contains("<h1>502 Bad Gateway</h1>"));
        }
    }
}
