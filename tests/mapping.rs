//! API Gateway HTTP API (payload 2.0) mapping through a real server and real Python handlers: every
//! event-building rule (README: "Handler routes") seen from inside the handler, every response-mapping rule seen
//! from the client, and the errors of `url_path` routes.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{pyproject, Server};
use serde_json::{json, Value};

const APP: &str = r#"
import base64, json, os

def echo(event, context):
    # The proxy shape on purpose: event tests must not depend on the "dict without statusCode" rule.
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}


class PaymentDeclined(Exception):
    pass


BINARY = bytes(range(256))

CASES = {
    "proxy": lambda: {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Thing": "yes", "X-Count": 7},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "made",
    },
    "teapot": lambda: {"statusCode": 418, "body": "short and stout"},
    "no_content": lambda: {"statusCode": 204},
    "base64": lambda: {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "isBase64Encoded": True,
        "body": base64.b64encode(BINARY).decode("ascii"),
    },
    "not_base64": lambda: {"statusCode": 200, "isBase64Encoded": False, "body": "/wAQgA=="},
    "dict": lambda: {"a": 1, "nested": {"b": [1, 2]}, "s": "zażółć"},
    "list": lambda: [1, "two", None, {"three": 3}],
    "number": lambda: 42,
    "float": lambda: 2.5,
    "string": lambda: "hello, world",
}


def respond(event, context):
    case = event["pathParameters"]["case"]
    if case == "raise":
        raise PaymentDeclined("card 4242 declined")
    if case == "pid":
        return {"pid": os.getpid()}
    return CASES[case]()
"#;

/// Every routed handler of these tests; all but `respond` echo the event back.
const HANDLERS: &[(&str, &str, &str)] = &[
    ("echo", "app.echo", "/echo"),
    ("items", "app.echo", "/items/{id:int}"),
    ("files", "app.echo", "/files/{name}"),
    ("assets", "app.echo", "/assets/{rest:path}"),
    ("num", "app.echo", "/num/{x:float}"),
    ("things", "app.echo", "/things/{u:uuid}"),
    ("respond", "app.respond", "/respond/{case}"),
];

fn start() -> Server {
    let tables: String = HANDLERS
        .iter()
        .map(|(name, handler, url)| {
            format!("[tool.smyth.handlers.{name}]\nhandler_path = \"{handler}\"\nurl_path = \"{url}\"\n\n")
        })
        .collect();
    // `api.example.test` stands for a custom domain in the Host-header tests.
    let config = pyproject(&format!("allowed_hosts = [\"api.example.test\"]\n\n{tables}"));
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

/// A response read byte for byte (the harness's `Reply` holds its body as a `String`).
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 exchange on a fresh connection, written exactly as given: the request target is not
/// normalised, header names keep their case, and repeated headers stay separate lines. A `Host`
/// header is added unless `headers` has one.
fn raw(server: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{}\r\n", server.port));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).unwrap();

    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", server.log()));
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Raw { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

/// The event the echo handler at `target` received.
fn event_of(server: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let reply = raw(server, method, target, headers, body);
    assert_eq!(reply.status, 200, "{method} {target}: {reply:?}\n{}", server.log());
    reply.json()
}

fn get_event(server: &Server, target: &str) -> Value {
    event_of(server, "GET", target, &[], b"")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `requestContext.time`'s format for an epoch second: `24/Nov/2026:09:06:41 +0000`.
fn clf(epoch_secs: u64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = (epoch_secs / 86_400) as i64;
    let secs = epoch_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[test]
fn clf_helper_matches_known_dates() {
    assert_eq!(clf(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(clf(1_795_511_201), "24/Nov/2026:09:06:41 +0000");
    assert_eq!(clf(951_782_400), "29/Feb/2000:00:00:00 +0000");
}

#[test]
fn a_plain_get_has_the_whole_v2_shape() {
    let server = start();
    let before = now_ms();
    let event = event_of(&server, "GET", "/echo", &[("User-Agent", "mapping-test/1.0")], b"");
    let after = now_ms();

    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "ANY /echo");
    assert_eq!(event["rawPath"], "/echo");
    assert_eq!(event["rawQueryString"], "");
    assert_eq!(event["isBase64Encoded"], false);
    for absent in ["cookies", "queryStringParameters", "pathParameters", "body"] {
        assert!(event.get(absent).is_none(), "{absent} must be absent: {event}");
    }

    let context = &event["requestContext"];
    assert_eq!(context["accountId"], "000000000000");
    assert_eq!(context["apiId"], "smyth");
    assert_eq!(context["domainName"], "127.0.0.1");
    assert_eq!(context["stage"], "$default");
    assert_eq!(context["routeKey"], "ANY /echo");
    assert_eq!(
        context["http"],
        json!({
            "method": "GET",
            "path": "/echo",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "mapping-test/1.0",
        })
    );
    let request_id = context["requestId"].as_str().expect("requestId");
    assert!(is_uuid(request_id), "{request_id}");
    let epoch = context["timeEpoch"].as_u64().expect("timeEpoch in ms");
    assert!((before..=after).contains(&epoch), "{before} <= {epoch} <= {after}");
    assert_eq!(context["time"], clf(epoch / 1000));

    let headers = &event["headers"];
    assert_eq!(headers["host"], format!("127.0.0.1:{}", server.port));
    assert_eq!(headers["user-agent"], "mapping-test/1.0");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-port"], server.port.to_string());
    assert_eq!(headers["x-forwarded-proto"], "http");
}

#[test]
fn domain_name_and_prefix_come_from_the_host_header() {
    let server = start();
    let event = event_of(&server, "GET", "/echo", &[("Host", "api.example.test:8443")], b"");
    assert_eq!(event["requestContext"]["domainName"], "api.example.test");
    assert_eq!(event["requestContext"]["domainPrefix"], "api");
    assert_eq!(event["headers"]["host"], "api.example.test:8443");
    assert_eq!(event["headers"]["x-forwarded-port"], "8443");
}

#[test]
fn headers_are_lower_cased_and_repeated_ones_comma_joined() {
    let server = start();
    let event = event_of(
        &server,
        "GET",
        "/echo",
        &[("X-Custom-Thing", "One"), ("X-Multi", "a"), ("x-multi", "b"), ("X-MULTI", "c")],
        b"",
    );
    let headers = event["headers"].as_object().unwrap();
    assert_eq!(headers["x-custom-thing"], "One", "values keep their case");
    assert_eq!(headers["x-multi"], "a,b,c");
    for name in headers.keys() {
        assert_eq!(name, &name.to_ascii_lowercase(), "header names must be lower case: {headers:?}");
    }
}

#[test]
fn cookies_are_split_out_of_the_cookie_header() {
    let server = start();
    let event = event_of(
        &server,
        "GET",
        "/echo",
        &[("Cookie", "session=abc; theme=dark"), ("Cookie", "lang=pl")],
        b"",
    );
    assert_eq!(event["cookies"], json!(["session=abc", "theme=dark", "lang=pl"]));
    assert!(event["headers"].get("cookie").is_none(), "cookie must not stay in headers: {event}");
}

#[test]
fn query_strings_are_raw_and_parsed_with_repeats_comma_joined() {
    let server = start();
    let event = get_event(&server, "/echo?a=1&b=x%20y&a=2&flag&a=3");
    assert_eq!(event["rawQueryString"], "a=1&b=x%20y&a=2&flag&a=3");
    assert_eq!(event["queryStringParameters"], json!({"a": "1,2,3", "b": "x y", "flag": ""}));
    assert_eq!(event["rawPath"], "/echo", "the query is not part of the path");
    assert_eq!(event["requestContext"]["http"]["path"], "/echo");
}

#[test]
fn request_ids_are_distinct_per_request_even_in_parallel() {
    let server = start();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let reply = server.get("/echo");
                    assert_eq!(reply.status, 200, "{reply:?}");
                    reply.json()["requestContext"]["requestId"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    assert!(ids.iter().all(|id| is_uuid(id)), "{ids:?}");
}

#[test]
fn every_method_reaches_the_handler() {
    let server = start();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let event = event_of(&server, method, "/items/5", &[], b"");
        assert_eq!(event["requestContext"]["http"]["method"], method);
        assert_eq!(event["routeKey"], "ANY /items/{id}", "{method}");
    }
}

#[test]
fn text_bodies_arrive_as_text() {
    let server = start();
    for (content_type, body) in [
        (Some("application/json"), r#"{"k": "v", "n": [1, 2]}"#),
        (Some("text/plain; charset=utf-8"), "zażółć gęślą jaźń"),
        (Some("application/vnd.api+json"), r#"{"data": null}"#),
        (None, "no content type, valid UTF-8"),
    ] {
        let headers: Vec<(&str, &str)> = content_type.iter().map(|ct| ("Content-Type", *ct)).collect();
        let event = event_of(&server, "POST", "/echo", &headers, body.as_bytes());
        assert_eq!(event["body"], body, "{content_type:?}");
        assert_eq!(event["isBase64Encoded"], false, "{content_type:?}");
        if let Some(ct) = content_type {
            assert_eq!(event["headers"]["content-type"], ct);
        }
        assert_eq!(event["headers"]["content-length"], body.len().to_string());
    }
}

#[test]
fn binary_bodies_arrive_base64_encoded() {
    let server = start();
    let bytes: &[u8] = &[0xff, 0x00, 0x10, 0x80, 0xfe];
    let event = event_of(&server, "POST", "/echo", &[("Content-Type", "application/octet-stream")], bytes);
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "/wAQgP4=");

    // Not UTF-8 and no content type: base64 too.
    let event = event_of(&server, "PUT", "/echo", &[], &[0xc3, 0x28, 0x00]);
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "wygA");

    // An image is binary even when its bytes happen to be ASCII.
    let event = event_of(&server, "POST", "/echo", &[("Content-Type", "image/png")], b"PNGish");
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "UE5HaXNo");
}

#[test]
fn int_params_give_route_key_and_path_parameters() {
    let server = start();
    let event = get_event(&server, "/items/42?x=1");
    assert_eq!(event["routeKey"], "ANY /items/{id}");
    assert_eq!(event["requestContext"]["routeKey"], "ANY /items/{id}");
    assert_eq!(event["pathParameters"], json!({"id": "42"}), "parameters are strings, as on AWS");
    assert_eq!(event["rawPath"], "/items/42");
}

#[test]
fn path_params_take_the_rest_of_the_path() {
    let server = start();
    let event = get_event(&server, "/assets/css/site/main.css");
    assert_eq!(event["routeKey"], "ANY /assets/{rest+}");
    assert_eq!(event["requestContext"]["routeKey"], "ANY /assets/{rest+}");
    assert_eq!(event["pathParameters"], json!({"rest": "css/site/main.css"}));
    assert_eq!(event["rawPath"], "/assets/css/site/main.css");
}

#[test]
fn float_and_uuid_params() {
    let server = start();
    let event = get_event(&server, "/num/2.75");
    assert_eq!(event["routeKey"], "ANY /num/{x}");
    assert_eq!(event["pathParameters"], json!({"x": "2.75"}));
    let event = get_event(&server, "/num/3");
    assert_eq!(event["pathParameters"], json!({"x": "3"}));

    let uuid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let event = get_event(&server, &format!("/things/{uuid}"));
    assert_eq!(event["routeKey"], "ANY /things/{u}");
    assert_eq!(event["pathParameters"], json!({"u": uuid}));

    for path in ["/num/abc", "/num/1e3", "/things/not-a-uuid"] {
        assert_eq!(server.get(path).status, 404, "{path}");
    }
}

#[test]
fn percent_encoded_paths_match_routes_decoded() {
    let server = start();
    let event = get_event(&server, "/files/a%20b");
    assert_eq!(event["routeKey"], "ANY /files/{name}");
    assert_eq!(event["pathParameters"], json!({"name": "a b"}));

    let event = get_event(&server, "/files/za%C5%BC%C3%B3%C5%82%C4%87.txt");
    assert_eq!(event["pathParameters"], json!({"name": "zażółć.txt"}));

    // `{rest:path}` parameters are decoded too.
    let event = get_event(&server, "/assets/dir%20one/file.txt");
    assert_eq!(event["pathParameters"], json!({"rest": "dir one/file.txt"}));
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn a_proxy_response_is_used_as_given() {
    let server = start();
    let reply = server.get("/respond/proxy");
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body, "made");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("x-thing"), Some("yes"));
    assert_eq!(reply.header("x-count"), Some("7"), "non-string header values are stringified");
    assert_eq!(reply.header_all("set-cookie"), ["a=1; Path=/", "b=2; HttpOnly"]);

    let reply = server.get("/respond/teapot");
    assert_eq!(reply.status, 418);
    assert_eq!(reply.body, "short and stout");

    let reply = server.get("/respond/no_content");
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, "");
}

#[test]
fn base64_encoded_responses_arrive_as_bytes() {
    let server = start();
    let reply = raw(&server, "GET", "/respond/base64", &[], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/octet-stream"));
    assert_eq!(reply.body, (0..=255u8).collect::<Vec<u8>>());

    let reply = server.get("/respond/not_base64");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/wAQgA==", "isBase64Encoded false leaves the body alone");
}

#[test]
fn results_without_status_code_are_200_json() {
    let server = start();
    for (case, want) in [
        ("dict", json!({"a": 1, "nested": {"b": [1, 2]}, "s": "zażółć"})),
        ("list", json!([1, "two", null, {"three": 3}])),
        ("number", json!(42)),
        ("float", json!(2.5)),
    ] {
        let reply = server.get(&format!("/respond/{case}"));
        assert_eq!(reply.status, 200, "{case}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"), "{case}");
        assert_eq!(reply.json(), want, "{case}");
    }
}

#[test]
fn a_string_result_is_a_200_with_that_body() {
    let server = start();
    let reply = server.get("/respond/string");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "hello, world", "the string itself, not its JSON encoding");
}

#[test]
fn a_raising_handler_is_a_502_and_the_worker_keeps_serving() {
    let server = start();
    let before = server.get("/respond/pid");
    assert_eq!(before.status, 200, "{before:?}");
    let pid = before.json()["pid"].as_u64().unwrap();

    let reply = server.get("/respond/raise");
    assert_eq!(reply.status, 502, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({
            "message": "Internal Server Error",
            "errorType": "PaymentDeclined",
            "errorMessage": "card 4242 declined",
        })
    );
    server.wait_for("the traceback in the server log", Duration::from_secs(10), || {
        let log = server.log();
        log.contains("[ERROR] PaymentDeclined: card 4242 declined")
            && log.contains("Traceback (most recent call last):")
            && log.contains("raise PaymentDeclined(\"card 4242 declined\")")
    });

    let after = server.get("/respond/pid");
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.json()["pid"].as_u64(), Some(pid), "the same worker process serves on");
    let worker = &server.workers("respond")[0];
    assert_eq!(worker["invocations"], 3);
    assert_eq!(worker["cold_starts"], 1);
    assert_eq!(worker["restarts"], 0);
    assert_eq!(worker["pid"].as_u64(), Some(pid));
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn no_route_is_a_json_404() {
    let server = start();
    for (method, path) in
        [("GET", "/nothing/here"), ("POST", "/echo/extra"), ("GET", "/items/abc"), ("DELETE", "/")]
    {
        let reply = raw(&server, method, path, &[], b"");
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"), "{method} {path}");
        assert_eq!(reply.json(), json!({"message": "Not Found"}), "{method} {path}");
    }
    let invocations: u64 = HANDLERS
        .iter()
        .flat_map(|(name, _, _)| server.workers(name))
        .map(|w| w["invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(invocations, 0, "a 404 must not reach any worker");
}
