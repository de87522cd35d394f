//! Every `event_format` other than the default, end to end with real Python handlers: the event a
//! handler receives for `apigw-v1` (REST API proxy), `alb`, `raw` and `function-url`, and how each format maps the
//! handler's result (and a malformed one) back to HTTP. Errors answer alike for every format.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{pyproject, Reply, Server};
use serde_json::{json, Value};

const APP: &str = r#"
import base64, json

CALLS = "calls.log"


def rest_echo(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}


def alb_echo(event, context):
    return {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "headers": {"content-type": "application/json"},
        "body": json.dumps(event),
        "isBase64Encoded": False,
    }


def raw_echo(event, context):
    with open(CALLS, "a") as calls:
        calls.write(json.dumps(event) + "\n")
    return {"received": event, "request_id": context.aws_request_id}


CASES = {
    "rest_proxy": {
        "statusCode": 201,
        "headers": {"X-One": "1", "Content-Type": "text/plain"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": "made",
    },
    "no_content_type": {"statusCode": 200, "body": "{\"ok\": true}"},
    "alb_proxy": {
        "statusCode": 202,
        "statusDescription": "202 Accepted",
        "headers": {"content-type": "text/plain", "x-one": "1"},
        "body": "queued",
        "isBase64Encoded": False,
    },
    "base64": {
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "body": base64.b64encode(b"decoded bytes").decode("ascii"),
        "isBase64Encoded": True,
    },
    "plain_dict": {"hello": "world"},
    "string": "just text",
    "status_only": {"statusCode": 418, "body": "teapot"},
}


def respond(event, context):
    case = event["case"] if "case" in event else event["path"].rsplit("/", 1)[-1]
    if case == "raise":
        raise ValueError("no luck")
    return CASES[case]
"#;

/// (name, handler, url_path, extra keys)
const HANDLERS: &[(&str, &str, &str, &str)] = &[
    ("rest", "app.rest_echo", "/rest/{id:int}", "event_format = \"apigw-v1\""),
    ("rest_files", "app.rest_echo", "/rest-files/{rest:path}", "event_format = \"apigw-v1\""),
    ("rest_respond", "app.respond", "/rest-respond/{case}", "event_format = \"apigw-v1\""),
    ("http_v1", "app.rest_echo", "/http-v1/{id}", "event_format = \"apigw-http-v1\""),
    ("lb", "app.alb_echo", "/alb/{name}", "event_format = \"alb\""),
    ("lb_respond", "app.respond", "/alb-respond/{case}", "event_format = \"alb\""),
    ("raw", "app.raw_echo", "/raw", "event_format = \"raw\""),
    ("raw_respond", "app.respond", "/raw-respond", "event_format = \"raw\""),
    ("url", "app.raw_echo", "/url/{id}", "event_format = \"function-url\""),
    (
        "smyth_raw",
        "app.raw_echo",
        "/smyth-raw",
        "event_data_function_path = \"smyth.event.generate_lambda_invocation_event_data\"",
    ),
];

fn start() -> Server {
    let tables: String = HANDLERS
        .iter()
        .map(|(name, handler, url, extra)| {
            format!(
                "[tool.smyth.handlers.{name}]\nhandler_path = \"{handler}\"\nurl_path = \"{url}\"\n{extra}\n\n"
            )
        })
        .collect();
    Server::start(&[("pyproject.toml", &pyproject(&tables)), ("app.py", APP)])
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The event the echo handler behind `path` received (its proxy response's body).
fn event_of(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Value {
    let reply = server.request(method, path, headers, body);
    assert_eq!(reply.status, 200, "{method} {path}: {reply:?}\n{}", server.log());
    reply.json()
}

fn post_json(server: &Server, path: &str, body: &str) -> Reply {
    server.request("POST", path, &[("content-type", "application/json")], Some(body.as_bytes()))
}

fn assert_handler_error(reply: &Reply) {
    assert_eq!(reply.status, 502, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"message": "Internal Server Error", "errorType": "ValueError", "errorMessage": "no luck"})
    );
}

#[test]
fn apigw_v1_events_have_the_rest_api_shape() {
    let server = start();
    let before = now_ms();
    let event = event_of(
        &server,
        "GET",
        "/rest/7?a=1&a=2&q=x%20y",
        &[
            ("X-Custom", "one"),
            ("Accept", "text/html"),
            ("Accept", "application/json"),
            ("User-Agent", "tests/1"),
        ],
        None,
    );
    assert_eq!(event["resource"], "/rest/{id}");
    assert_eq!(event["path"], "/rest/7");
    assert_eq!(event["httpMethod"], "GET");
    // Names as the client sent them: ureq sends them lower case (tests/header_case.rs has the rest).
    assert_eq!(event["headers"]["x-custom"], "one");
    assert_eq!(event["headers"]["accept"], "application/json", "the last value wins");
    assert_eq!(event["multiValueHeaders"]["accept"], json!(["text/html", "application/json"]));
    assert_eq!(event["headers"]["X-Forwarded-For"], "127.0.0.1");
    assert_eq!(event["queryStringParameters"], json!({"a": "2", "q": "x y"}));
    assert_eq!(event["multiValueQueryStringParameters"], json!({"a": ["1", "2"], "q": ["x y"]}));
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["stageVariables"], Value::Null);
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);

    let ctx = &event["requestContext"];
    assert_eq!(ctx["accountId"], "000000000000");
    assert_eq!(ctx["resourcePath"], "/rest/{id}");
    assert_eq!(ctx["httpMethod"], "GET");
    assert_eq!(ctx["path"], "/rest/7");
    assert_eq!(ctx["stage"], "local");
    assert_eq!(ctx["protocol"], "HTTP/1.1");
    assert_eq!(ctx["domainName"], "127.0.0.1");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "tests/1");
    assert_eq!(ctx["identity"]["user"], Value::Null);
    assert_eq!(ctx["requestId"].as_str().unwrap().len(), 36);
    assert_eq!(ctx["resourceId"].as_str().unwrap().len(), 6);
    let epoch = ctx["requestTimeEpoch"].as_u64().unwrap();
    assert!((before..=now_ms()).contains(&epoch), "{epoch}");
    assert!(ctx["requestTime"].as_str().unwrap().ends_with(" +0000"));

    let event = event_of(&server, "GET", "/rest-files/a/b/c.txt", &[], None);
    assert_eq!(event["resource"], "/rest-files/{rest+}");
    assert_eq!(event["pathParameters"], json!({"rest": "a/b/c.txt"}));
    assert_eq!(event["queryStringParameters"], Value::Null);
    assert_eq!(event["multiValueQueryStringParameters"], Value::Null);

    let event = event_of(&server, "POST", "/rest/1", &[("content-type", "text/plain")], Some(b"hello"));
    assert_eq!((event["body"].as_str(), event["isBase64Encoded"].as_bool()), (Some("hello"), Some(false)));
}

#[test]
fn apigw_v1_results_follow_the_rest_api_proxy_rules() {
    let server = start();
    let reply = server.get("/rest-respond/rest_proxy");
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("x-one"), Some("1"));
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header_all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(reply.body, "made");

    let reply = server.get("/rest-respond/no_content_type");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"), "API Gateway's default");
    assert_eq!(reply.json(), json!({"ok": true}));

    let reply = server.get("/rest-respond/base64");
    assert_eq!((reply.status, reply.body.as_str()), (200, "decoded bytes"));

    // Not a proxy response: AWS's "Malformed Lambda proxy response".
    for case in ["plain_dict", "string", "alb_proxy"] {
        let reply = server.get(&format!("/rest-respond/{case}"));
        assert_eq!(reply.status, 502, "{case}: {reply:?}");
        assert_eq!(reply.json(), json!({"message": "Internal server error"}), "{case}");
        assert_eq!(reply.header("x-amzn-errortype"), Some("InternalServerErrorException"));
    }

    assert_handler_error(&server.get("/rest-respond/raise"));
    assert_eq!(server.get("/rest/not-a-number").status, 404);
}

#[test]
fn alb_events_have_the_load_balancer_shape() {
    let server = start();
    let event = event_of(
        &server,
        "GET",
        "/alb/lb?q=a%20b&q=last&plus=a+b",
        &[("X-Custom", "one"), ("Accept", "text/html"), ("Accept", "application/json")],
        None,
    );
    let arn = event["requestContext"]["elb"]["targetGroupArn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:elasticloadbalancing:eu-central-1:000000000000:targetgroup/lb/"),
        "{arn}"
    );
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["path"], "/alb/lb");
    assert_eq!(event["queryStringParameters"], json!({"q": "last", "plus": "a+b"}), "not decoded");
    assert_eq!(event["headers"]["x-custom"], "one");
    assert_eq!(event["headers"]["accept"], "application/json", "the last value wins");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(event["headers"]["x-amzn-trace-id"].as_str().unwrap().starts_with("Root=1-"));
    assert_eq!(event["body"], "");
    assert_eq!(event["isBase64Encoded"], false);
    assert!(event.get("multiValueHeaders").is_none() && event.get("pathParameters").is_none());

    let event = event_of(&server, "GET", "/alb/x", &[], None);
    assert_eq!(event["queryStringParameters"], json!({}));

    let event =
        event_of(&server, "POST", "/alb/x", &[("content-type", "application/json")], Some(b"{\"a\":1}"));
    assert_eq!(
        (event["body"].as_str(), event["isBase64Encoded"].as_bool()),
        (Some("{\"a\":1}"), Some(false))
    );
    let event = event_of(
        &server,
        "PUT",
        "/alb/x",
        &[("content-type", "application/octet-stream")],
        Some(b"\x00\x01abc"),
    );
    assert_eq!((event["body"].as_str(), event["isBase64Encoded"].as_bool()), (Some("AAFhYmM="), Some(true)));
}

#[test]
fn alb_results_follow_the_load_balancer_rules() {
    let server = start();
    let reply = server.get("/alb-respond/alb_proxy");
    assert_eq!(reply.status, 202);
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("x-one"), Some("1"));
    assert_eq!(reply.body, "queued");

    let reply = server.get("/alb-respond/base64");
    assert_eq!((reply.status, reply.body.as_str()), (200, "decoded bytes"));
    let reply = server.get("/alb-respond/status_only");
    assert_eq!((reply.status, reply.body.as_str()), (418, "teapot"));

    for case in ["plain_dict", "string"] {
        let reply = server.get(&format!("/alb-respond/{case}"));
        assert_eq!(reply.status, 502, "{case}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("text/html"));
        assert!(reply.body.contains("502 Bad Gateway"), "{}", reply.body);
    }

    assert_handler_error(&server.get("/alb-respond/raise"));
}

#[test]
fn raw_events_are_the_body_and_results_come_back_as_json() {
    let server = start();
    let reply = post_json(&server, "/raw", r#"{"order": 7, "items": ["a", "b"]}"#);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["received"], json!({"order": 7, "items": ["a", "b"]}));
    assert_eq!(body["request_id"].as_str().unwrap().len(), 36);

    let reply = server.request("POST", "/raw", &[], None);
    assert_eq!(reply.json()["received"], json!({}), "an empty body is {{}}");
    let reply = post_json(&server, "/raw", "[1, 2, 3]");
    assert_eq!(reply.json()["received"], json!([1, 2, 3]));
    let reply = server.get("/raw");
    assert_eq!(reply.json()["received"], json!({}));

    for (case, status, body) in [
        // The runtime's bytes, as awslambdaric writes them (`json.dumps` separators).
        ("plain_dict", 200, r#"{"hello": "world"}"#),
        ("string", 200, r#""just text""#),
        ("status_only", 418, "teapot"),
    ] {
        let reply = post_json(&server, "/raw-respond", &format!(r#"{{"case": "{case}"}}"#));
        assert_eq!((reply.status, reply.body.as_str()), (status, body), "{case}");
    }
    assert_handler_error(&post_json(&server, "/raw-respond", r#"{"case": "raise"}"#));
}

#[test]
fn a_raw_body_that_is_not_json_is_a_400_and_never_reaches_the_handler() {
    let server = start();
    for body in ["{not json", "a=1&b=2"] {
        let reply = post_json(&server, "/raw", body);
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("the request body is not valid JSON: "), "{message}");
    }
    // The handler has one worker, so this request runs after anything the refused ones left behind.
    let reply = post_json(&server, "/raw", r#"{"n": 1}"#);
    assert_eq!(reply.status, 200, "{reply:?}");
    let calls = std::fs::read_to_string(server.path().join("calls.log")).unwrap();
    assert_eq!(calls.lines().collect::<Vec<_>>(), [r#"{"n": 1}"#], "only the JSON request ran the handler");
}

#[test]
fn smyths_invocation_event_data_function_selects_raw() {
    let server = start();
    let reply = post_json(&server, "/smyth-raw", r#"{"from": "smyth"}"#);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["received"], json!({"from": "smyth"}));
    assert_eq!(post_json(&server, "/smyth-raw", "nope").status, 400);
}

#[test]
fn apigw_http_v1_is_the_v1_shape_with_the_http_apis_base64_rule() {
    let server = start();
    let form = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n";
    let headers = [("Content-Type", "multipart/form-data; boundary=xyz"), ("X-Custom", "v")];
    let event = event_of(&server, "POST", "/http-v1/7?q=1", &headers, Some(form));
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["resource"], "/http-v1/{id}");
    assert_eq!(event["path"], "/http-v1/7");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["queryStringParameters"], json!({"q": "1"}));
    assert_eq!(event["multiValueQueryStringParameters"], json!({"q": ["1"]}));
    assert_eq!(event["headers"]["x-custom"], "v", "{event}");
    assert_eq!(event["multiValueHeaders"]["x-custom"], json!(["v"]));
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["isBase64Encoded"], true, "multipart is not text to an HTTP API");
    let decoded = base64::engine::general_purpose::STANDARD.decode(event["body"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, form);
    let text = event_of(&server, "POST", "/http-v1/8", &[("Content-Type", "text/plain")], Some(b"hi"));
    assert_eq!((text["body"].clone(), text["isBase64Encoded"].clone()), (json!("hi"), json!(false)));
}

#[test]
fn function_url_events_are_the_v2_payload_a_function_url_sends() {
    let server = start();
    let reply = server.get("/url/7?q=1");
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    let event = &reply.json()["received"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/url/7");
    assert!(event.get("pathParameters").is_none() && event.get("stageVariables").is_none(), "{event}");
    let context = &event["requestContext"];
    let id = context["apiId"].as_str().unwrap();
    assert_eq!((context["stage"].as_str(), context["domainPrefix"].as_str()), (Some("$default"), Some(id)));
    assert_eq!(context["domainName"], format!("{id}.lambda-url.eu-central-1.on.aws"));
}
