//! `event_format = "function-url"`: the event a Lambda function URL sends, checked by AWS Lambda
//! Powertools' own `LambdaFunctionUrlModel` parser in the handler, and the function URL's response
//! inference (the HTTP API 2.0 rules), row by row.

mod common;

use base64::Engine as _;
use common::Server;
use serde_json::{json, Value};

const APP: &str = r#"
import base64, json
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel


def parsed(event, context):
    model = parse(event=event, model=LambdaFunctionUrlModel)
    ctx = model.requestContext
    return {
        "routeKey": model.routeKey,
        "rawPath": model.rawPath,
        "query": model.queryStringParameters,
        "pathParameters": model.pathParameters,
        "stage": ctx.stage,
        "apiId": ctx.apiId,
        "domainName": ctx.domainName,
        "domainPrefix": ctx.domainPrefix,
        "accountId": ctx.accountId,
        "method": ctx.http.method,
        "body": model.body,
        "keys": sorted(event),
    }


CASES = {
    "dict": {"hello": "world"},
    "list": [1, 2],
    "string": "just text",
    "number": 7,
    "status_only": {"statusCode": 418, "body": "teapot"},
    "full": {"statusCode": 201, "headers": {"content-type": "text/plain", "x-one": "1"}, "body": "made",
             "cookies": ["a=1", "b=2; Path=/"]},
    "base64": {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
               "body": base64.b64encode(b"\x00\x01bytes").decode("ascii"), "isBase64Encoded": True},
}


def respond(event, context):
    return CASES[event["rawPath"].rsplit("/", 1)[-1]]
"#;

fn start(python: &str) -> Server {
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n\
         [tool.smyth.handlers.parsed]\nhandler_path = \"app.parsed\"\nurl_path = \"/parsed/{{rest:path}}\"\nevent_format = \"function-url\"\n\n\
         [tool.smyth.handlers.respond]\nhandler_path = \"app.respond\"\nurl_path = \"/respond/{{case}}\"\nevent_format = \"function-url\"\n"
    );
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

#[test]
fn powertools_parses_the_event_as_a_function_urls() {
    let Some(python) = common::tools::python() else { return };
    let server = start(&python);
    let reply = server.request("POST", "/parsed/a/b?x=1", &[("content-type", "text/plain")], Some(b"hi"));
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    let got = reply.json();
    let id = got["apiId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{got}");
    assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{got}");
    assert_eq!(got["routeKey"], "$default");
    assert_eq!(got["stage"], "$default");
    assert_eq!(got["domainPrefix"], id.as_str());
    assert_eq!(got["domainName"], format!("{id}.lambda-url.eu-central-1.on.aws"));
    assert_eq!(got["rawPath"], "/parsed/a/b");
    assert_eq!(got["query"], json!({"x": "1"}));
    assert_eq!(got["method"], "POST");
    assert_eq!(got["body"], "hi");
    // A function URL has no routes: no path parameters, no stage variables.
    assert_eq!(got["pathParameters"], Value::Null);
    let keys: Vec<&str> = got["keys"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!keys.contains(&"pathParameters") && !keys.contains(&"stageVariables"), "{keys:?}");
}

#[test]
fn responses_are_inferred_as_a_function_url_infers_them() {
    let Some(python) = common::tools::python() else { return };
    let server = start(&python);
    // (case, status, content-type, body)
    let rows = [
        ("dict", 200, Some("application/json"), r#"{"hello":"world"}"#),
        ("list", 200, Some("application/json"), "[1,2]"),
        ("number", 200, Some("application/json"), "7"),
        ("status_only", 418, None, "teapot"),
        ("full", 201, Some("text/plain"), "made"),
    ];
    for (case, status, content_type, body) in rows {
        let reply = server.get(&format!("/respond/{case}"));
        assert_eq!(reply.status, status, "{case}: {reply:?}");
        if let Some(content_type) = content_type {
            assert_eq!(reply.header("content-type"), Some(content_type), "{case}: {reply:?}");
        }
        let same = if body.starts_with(['{', '[']) {
            serde_json::from_str::<Value>(&reply.body).ok() == serde_json::from_str::<Value>(body).ok()
        } else {
            reply.body == body
        };
        assert!(same, "{case}: {reply:?}");
    }
    let text = server.get("/respond/string");
    assert_eq!((text.status, text.body.as_str()), (200, "just text"), "{text:?}");
    let full = server.get("/respond/full");
    assert_eq!(full.header("x-one"), Some("1"));
    assert_eq!(full.header_all("set-cookie"), vec!["a=1", "b=2; Path=/"], "{full:?}");
    let encoded = server.get("/respond/base64");
    let expected = base64::engine::general_purpose::STANDARD.encode(b"\x00\x01bytes");
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(encoded.body.as_bytes()), expected);
}
