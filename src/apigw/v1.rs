//! API Gateway REST API, Lambda proxy integration (payload format 1.0): the event and the response
//! rules.

use actix_web::http::{header::CONTENT_TYPE, StatusCode};
use actix_web::HttpResponse;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use smyth_actors::messages::RouteMatch;

use super::event::{
    clf_time, decoded_query, path_parameters, resource_path, text_or_base64, ACCOUNT_ID, API_ID,
};
use super::request::RequestSnapshot;
use super::response::{append_header, header_text, json_error, status_code, strict_body, JSON};
use super::short_id;

/// The stage in `requestContext.stage`. Requests reach smyth without a stage in the path, as they reach
/// a REST API through a custom domain, so `requestContext.path` is the path as sent.
pub const STAGE: &str = "local";

/// The REST API proxy event for one request.
///
/// As AWS sends it: `headers` and `queryStringParameters` keep the last value of a repeated name,
/// `multiValueHeaders` and `multiValueQueryStringParameters` keep them all; the query is decoded;
/// `queryStringParameters`, `multiValueQueryStringParameters`, `pathParameters`, `stageVariables`
/// and `body` are `null` when there is nothing to put in them. Header names are spelled as the client
/// sent them (`X-GitHub-Event`, `content-type`; a name sent in several spellings keeps the first),
/// lower case over HTTP/2; when the edge could not tell the spelling, and for the headers API Gateway
/// adds, title case (`X-Forwarded-For`). A REST API without binary media types passes bodies as
/// text; smyth does too, and base64-encodes only a body that is not UTF-8.
pub fn v1_event(request: &RequestSnapshot, route: &RouteMatch) -> Value {
    let http2 = request.protocol.starts_with("HTTP/2");
    let spell = |name: &str| match request.spelling.get(name) {
        _ if http2 => name.to_owned(),
        Some(sent) => sent.to_owned(),
        None => title_case(name),
    };
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    let added: Vec<(String, String)> = request
        .forwarded_headers()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain([("x-amzn-trace-id".to_owned(), request.trace_id())])
        .filter(|(name, _)| request.header(name).is_none())
        .collect();
    for (name, value) in request.headers.iter().chain(&added) {
        let name = spell(name);
        push(&mut multi_headers, &name, value);
        headers.insert(name, Value::String(value.clone()));
    }
    let user_agent = request.user_agent();

    let pairs = decoded_query(&request.query);
    let (query, multi_query) = if pairs.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let mut last = Map::new();
        let mut all = Map::new();
        for (name, value) in pairs {
            push(&mut all, &name, &value);
            last.insert(name, Value::String(value));
        }
        (Value::Object(last), Value::Object(all))
    };
    let path_params =
        if route.path_params.is_empty() { Value::Null } else { path_parameters(&route.path_params) };
    let resource = resource_path(&route.url_path);
    let domain = request.domain();
    let (body, is_base64) = text_or_base64(&request.body, true);
    json!({
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_params,
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or(domain),
            "extendedRequestId": extended_request_id(&request.request_id),
            "httpMethod": request.method,
            "identity": {
                "accessKey": null,
                "accountId": null,
                "caller": null,
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "sourceIp": request.source_ip,
                "user": null,
                "userAgent": user_agent,
                "userArn": null,
            },
            "path": request.path,
            "protocol": request.protocol,
            "requestId": request.request_id,
            "requestTime": clf_time(request.received_ms / 1000),
            "requestTimeEpoch": request.received_ms,
            "resourceId": short_id(&route.url_path, 6),
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The HTTP response for a handler's JSON result, by the REST API's proxy rules: the result must be
/// an object of `statusCode` (required), `headers`, `multiValueHeaders`, `body` (a string) and
/// `isBase64Encoded`, and nothing else; anything else is AWS's "Malformed Lambda proxy response",
/// a 502 `{"message": "Internal server error"}`. A response without `Content-Type` gets
/// `application/json`, as API Gateway sends it.
pub fn map_result(result: &[u8]) -> HttpResponse {
    match proxy_response(result) {
        Ok(response) => response,
        Err(why) => {
            tracing::warn!("malformed Lambda proxy response (REST API): {why}");
            let mut response =
                json_error(StatusCode::BAD_GATEWAY, json!({"message": "Internal server error"}));
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("x-amzn-errortype"),
                actix_web::http::header::HeaderValue::from_static("InternalServerErrorException"),
            );
            response
        }
    }
}

fn proxy_response(result: &[u8]) -> Result<HttpResponse, String> {
    let value: Value = serde_json::from_slice(result).map_err(|e| format!("the result is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!("the result is not an object: {value}"));
    };
    const KEYS: [&str; 5] = ["statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"];
    if let Some(key) = map.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(format!("unexpected key {key:?}"));
    }
    let status = map
        .get("statusCode")
        .and_then(status_code)
        .ok_or_else(|| format!("bad or missing statusCode {:?}", map.get("statusCode")))?;
    let body = strict_body(&map)?;
    let lines = header_lines(&map)?;
    let mut response = HttpResponse::build(status);
    for (name, value) in &lines {
        append_header(&mut response, name, value);
    }
    if !lines.iter().any(|(name, _)| name.eq_ignore_ascii_case(CONTENT_TYPE.as_str())) {
        response.insert_header((CONTENT_TYPE, JSON));
    }
    Ok(response.body(body))
}

/// `multiValueHeaders` merged with `headers`: a name's values from `multiValueHeaders`, then the
/// `headers` value unless `multiValueHeaders` already has that pair.
fn header_lines(map: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut lines = Vec::new();
    match map.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, values) in headers {
                let Value::Array(values) = values else {
                    return Err(format!("multiValueHeaders.{name} is not a list"));
                };
                for value in values {
                    let value = scalar(value).ok_or_else(|| format!("multiValueHeaders.{name}: {value}"))?;
                    lines.push((name.clone(), value));
                }
            }
        }
        Some(other) => return Err(format!("multiValueHeaders is not an object: {other}")),
    }
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let value = scalar(value).ok_or_else(|| format!("headers.{name}: {value}"))?;
                if !lines.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && *v == value) {
                    lines.push((name.clone(), value));
                }
            }
        }
        Some(other) => return Err(format!("headers is not an object: {other}")),
    }
    Ok(lines)
}

/// A header value: a string, number or boolean.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Array(_) | Value::Object(_) | Value::Null => None,
        other => header_text(other),
    }
}

fn push(map: &mut Map<String, Value>, name: &str, value: &str) {
    match map.get_mut(name) {
        Some(Value::Array(values)) => values.push(Value::String(value.to_owned())),
        _ => {
            map.insert(name.to_owned(), json!([value]));
        }
    }
}

/// `content-type` → `Content-Type`, `x-api-key` → `X-Api-Key`.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// `extendedRequestId`: AWS's 16-character form (`JJbxmHc5PHcFaWA=`), from the request id.
fn extended_request_id(request_id: &str) -> String {
    let digits: Vec<u8> = request_id.bytes().filter(u8::is_ascii_hexdigit).take(20).collect();
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apigw::tests::{answer, curl_get, route, snapshot};
    use actix_web::test::TestRequest;

    #[test]
    fn the_whole_event_for_a_get_with_parameters() {
        let req = curl_get("/items/7?a=1&a=2&b=x%20y")
            .append_header(("Accept", "text/html"))
            .append_header(("Accept", "application/json"));
        let route = route("/items/{id:int}", &[("id", "7")]);
        let got = v1_event(&snapshot(req, b""), &route);
        let want = json!({
            "resource": "/items/{id}",
            "path": "/items/7",
            "httpMethod": "GET",
            "headers": {
                "Accept": "application/json",
                "Host": "localhost:8080",
                "User-Agent": "curl/8.5.0",
                "X-Amzn-Trace-Id": "Root=1-6b0553a1-0123456789abcdef01234567",
                "X-Forwarded-For": "10.1.2.3",
                "X-Forwarded-Port": "8080",
                "X-Forwarded-Proto": "http",
            },
            "multiValueHeaders": {
                "Accept": ["text/html", "application/json"],
                "Host": ["localhost:8080"],
                "User-Agent": ["curl/8.5.0"],
                "X-Amzn-Trace-Id": ["Root=1-6b0553a1-0123456789abcdef01234567"],
                "X-Forwarded-For": ["10.1.2.3"],
                "X-Forwarded-Port": ["8080"],
                "X-Forwarded-Proto": ["http"],
            },
            "queryStringParameters": {"a": "2", "b": "x y"},
            "multiValueQueryStringParameters": {"a": ["1", "2"], "b": ["x y"]},
            "pathParameters": {"id": "7"},
            "stageVariables": null,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "smyth",
                "domainName": "localhost",
                "domainPrefix": "localhost",
                "extendedRequestId": "ASNFZ4mrze8BIw==",
                "httpMethod": "GET",
                "identity": {
                    "accessKey": null,
                    "accountId": null,
                    "caller": null,
                    "cognitoAuthenticationProvider": null,
                    "cognitoAuthenticationType": null,
                    "cognitoIdentityId": null,
                    "cognitoIdentityPoolId": null,
                    "principalOrgId": null,
                    "sourceIp": "10.1.2.3",
                    "user": null,
                    "userAgent": "curl/8.5.0",
                    "userArn": null,
                },
                "path": "/items/7",
                "protocol": "HTTP/1.1",
                "requestId": "01234567-89ab-cdef-0123-456789abcdef",
                "requestTime": "24/Nov/2026:09:06:41 +0000",
                "requestTimeEpoch": 1_795_511_201_123_u64,
                "resourceId": short_id("/items/{id:int}", 6),
                "resourcePath": "/items/{id}",
                "stage": "local",
            },
            "body": null,
            "isBase64Encoded": false,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn empty_parts_are_null() {
        let got = v1_event(&snapshot(TestRequest::get().uri("/items"), b""), &route("/items", &[]));
        for key in ["queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "body"] {
            assert_eq!(got[key], Value::Null, "{key}");
        }
        assert_eq!(got["stageVariables"], Value::Null);
    }

    #[test]
    fn resources_use_api_gateway_syntax() {
        for (pattern, params, resource) in [
            ("/files/{rest:path}", &[("rest", "a/b.txt")][..], "/files/{rest+}"),
            ("/u/{u:uuid}/x/{f:float}", &[("u", "x"), ("f", "1.5")][..], "/u/{u}/x/{f}"),
        ] {
            let got = v1_event(&snapshot(TestRequest::get().uri("/"), b""), &route(pattern, params));
            assert_eq!(got["resource"], resource);
            assert_eq!(got["requestContext"]["resourcePath"], resource);
            let want: Map<String, Value> =
                params.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
            assert_eq!(got["pathParameters"], Value::Object(want));
        }
    }

    #[test]
    fn cookies_stay_headers_and_the_clients_forwarded_values_are_kept() {
        let req = TestRequest::get()
            .uri("/x")
            .append_header(("Cookie", "a=1; b=2"))
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .insert_header(("x-custom-thing", "v"));
        let got = v1_event(&snapshot(req, b""), &route("/x", &[]));
        assert_eq!(got["headers"]["Cookie"], "a=1; b=2");
        assert_eq!(got["headers"]["X-Forwarded-For"], "1.2.3.4");
        assert_eq!(got["multiValueHeaders"]["X-Forwarded-For"], json!(["1.2.3.4"]));
        assert_eq!(got["headers"]["X-Custom-Thing"], "v");
    }

    #[test]
    fn header_names_keep_the_clients_spelling() {
        let req = TestRequest::post()
            .uri("/x")
            .insert_header(("x-github-event", "push"))
            .insert_header(("content-type", "application/json"))
            .append_header(("x-mixed", "1"))
            .append_header(("x-mixed", "2"));
        let mut request = snapshot(req, b"");
        let sent = ["X-GitHub-Event", "content-type", "X-MiXeD", "x-MIXED"];
        let mut spelling = crate::header_case::Spelling::default();
        for name in sent {
            spelling.0.entry(name.to_ascii_lowercase()).or_insert_with(|| name.to_owned());
        }
        request.spelling = spelling;
        let got = v1_event(&request, &route("/x", &[]));
        assert_eq!(got["headers"]["X-GitHub-Event"], "push");
        assert_eq!(got["headers"]["content-type"], "application/json");
        assert_eq!(got["headers"]["X-MiXeD"], "2");
        assert_eq!(got["multiValueHeaders"]["X-MiXeD"], json!(["1", "2"]));
        assert_eq!(got["headers"]["X-Forwarded-Proto"], "http", "what API Gateway adds is title case");
        let names: Vec<&String> = got["headers"].as_object().unwrap().keys().collect();
        assert_eq!(names.len(), 7, "{names:?}");
    }

    #[test]
    fn http2_header_names_stay_lower_case() {
        let req = TestRequest::get()
            .uri("/x")
            .version(actix_web::http::Version::HTTP_2)
            .insert_header(("Content-Type", "text/plain"));
        let got = v1_event(&snapshot(req, b""), &route("/x", &[]));
        assert_eq!(got["headers"]["content-type"], "text/plain");
        assert_eq!(got["requestContext"]["protocol"], "HTTP/2.0");
    }

    #[test]
    fn bodies_are_text_unless_not_utf8() {
        for (content_type, body, want_body, want_b64) in [
            ("application/json", &b"{\"a\":1}"[..], "{\"a\":1}", false),
            ("application/x-www-form-urlencoded", b"a=1&b=2", "a=1&b=2", false),
            ("image/png", b"PNG", "PNG", false),
            ("application/octet-stream", &[0xff, 0x00][..], "/wA=", true),
        ] {
            let req = TestRequest::post().uri("/x").insert_header(("Content-Type", content_type));
            let got = v1_event(&snapshot(req, body), &route("/x", &[]));
            assert_eq!(got["body"], want_body, "{content_type}");
            assert_eq!(got["isBase64Encoded"], want_b64, "{content_type}");
        }
    }

    #[test]
    fn title_case_names() {
        for (name, want) in [("content-type", "Content-Type"), ("x-api-key", "X-Api-Key"), ("dnt", "Dnt")] {
            assert_eq!(title_case(name), want);
        }
    }

    #[test]
    fn proxy_responses() {
        let got = answer(map_result(
            br#"{"statusCode":201,"headers":{"X-A":"1","x-b":2},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"],"X-A":["1","0"]},"body":"made"}"#,
        ));
        assert_eq!(got.status, 201);
        assert_eq!(got.values("set-cookie"), ["a=1", "b=2"]);
        assert_eq!(got.values("x-a"), ["1", "0"], "a pair in both is sent once");
        assert_eq!(got.values("x-b"), ["2"]);
        assert_eq!(got.values("content-type"), ["application/json"], "API Gateway's default");
        assert_eq!(got.body, b"made");

        let got =
            answer(map_result(br#"{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"x"}"#));
        assert_eq!(got.values("content-type"), ["text/plain"]);
        let got = answer(map_result(br#"{"statusCode":"204"}"#));
        assert_eq!((got.status, got.body.len()), (204, 0));
        let got = answer(map_result(br#"{"statusCode":200,"isBase64Encoded":true,"body":"/wAQgA=="}"#));
        assert_eq!(got.body, [0xff, 0x00, 0x10, 0x80]);
    }

    #[test]
    fn malformed_proxy_responses_are_502() {
        for result in [
            "",
            "not json",
            r#""a string""#,
            "42",
            "[1]",
            "null",
            r#"{"body":"no status"}"#,
            r#"{"a":1}"#,
            r#"{"statusCode":200,"body":{"an":"object"}}"#,
            r#"{"statusCode":200,"cookies":["a=1"]}"#,
            r#"{"statusCode":200,"headers":{"x":{"nested":1}}}"#,
            r#"{"statusCode":200,"headers":["x"]}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"x":"not a list"}}"#,
            r#"{"statusCode":200,"isBase64Encoded":"yes","body":""}"#,
            r#"{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}"#,
            r#"{"statusCode":700}"#,
        ] {
            let got = answer(map_result(result.as_bytes()));
            assert_eq!(got.status, 502, "{result}");
            assert_eq!(got.json(), json!({"message": "Internal server error"}), "{result}");
            assert_eq!(got.values("x-amzn-errortype"), ["InternalServerErrorException"]);
        }
    }
}
