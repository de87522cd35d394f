//! Details checked against AWS's own clients and runtime: the Invoke payload limits and their 413s
//! (boto3), the context object attribute by attribute against awslambdaric, the environment AWS
//! sets, the caller's ARN, the result's JSON bytes, `x-amzn-trace-id` in HTTP API events, trailing
//! slashes, and where a provisioned worker's init duration is logged.

mod common;

use std::time::Duration;

use common::tools::python;
use common::{pyproject, Server};
use serde_json::{json, Value};

const APP: &str = r#"
import os

def describe(event, context):
    scalars = ["function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb",
               "log_group_name", "log_stream_name", "aws_request_id", "tenant_id"]
    out = {name: [type(getattr(context, name)).__name__, getattr(context, name)] for name in scalars}
    out["public"] = sorted(n for n in dir(context) if not n.startswith("_"))
    out["remaining"] = type(context.get_remaining_time_in_millis()).__name__
    out["w3c"] = context.w3c()
    cc = context.client_context
    out["client_context"] = None if cc is None else {
        "custom": cc.custom, "env": cc.env, "client": repr(cc.client), "has_w3c": hasattr(cc, "w3c")}
    ident = context.identity
    out["identity"] = [type(ident).__name__, ident.cognito_identity_id, ident.cognito_identity_pool_id]
    out["env"] = {k: os.environ.get(k) for k in ["LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"]}
    return out

def result(event, context):
    return {"foo": "bar", "n": [1, 2.5, None], "s": "caf\u00e9"}

def size(event, context):
    return {"bytes": len(event) + 2}

def http(event, context):
    import json
    seen = {"path": event.get("rawPath") or event.get("path"), "headers": event["headers"]}
    return {"statusCode": 200, "body": json.dumps(seen)}
"#;

fn handler(name: &str, function: &str, extra: &str) -> String {
    format!(
        "[tool.smyth.handlers.{name}]\nhandler_path = \"app.{function}\"\nurl_path = \"/{name}\"\n{extra}\n"
    )
}

/// The handlers' project, run by the test venv's interpreter when there is one (awslambdaric is in it).
fn project(handlers: &[String]) -> String {
    let config = pyproject(&handlers.concat());
    match std::env::var("SMYTH_TEST_PYTHON") {
        Ok(python) => config.replacen("port = 0\n", &format!("port = 0\npython = {python:?}\n"), 1),
        Err(_) => config,
    }
}

fn serve(handlers: &[String]) -> Server {
    Server::start(&[("pyproject.toml", &project(handlers)), ("app.py", APP)])
}

/// `error_of(**kw)`: an invoke's status and payload, or its error.
const ERROR_OF: &str = r#"
def error_of(**kwargs):
    try:
        r = client.invoke(**kwargs)
        return {"status": r["StatusCode"], "payload": json.loads(r["Payload"].read() or b"null")}
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
"#;

/// Runs a boto3 script with `client` and `error_of` ready; the JSON it prints.
fn boto3(python: &str, server: &Server, script: &str) -> Value {
    common::tools::boto3(python, server, &format!("{ERROR_OF}\n{script}"), &[])
}

#[test]
fn invoke_payload_limits_and_their_413s_as_aws_sends_them() {
    let Some(python) = python() else { return };
    let server = serve(&[handler("size", "size", "timeout = 60")]);
    let out = boto3(
        &python,
        &server,
        r#"
def payload(n):  # a JSON string of exactly n bytes
    return json.dumps("a" * (n - 2))
print(json.dumps({
    "sync_limit": error_of(FunctionName="size", Payload=payload(6291456)),
    "sync_over": error_of(FunctionName="size", Payload=payload(6291457)),
    "event_limit": error_of(FunctionName="size", InvocationType="Event", Payload=payload(1048576)),
    "event_over": error_of(FunctionName="size", InvocationType="Event", Payload=payload(1048577)),
}))
"#,
    );
    assert_eq!(out["sync_limit"], json!({"status": 200, "payload": {"bytes": 6_291_456}}), "{out}");
    assert_eq!(
        out["sync_over"],
        json!({"code": "RequestEntityTooLargeException", "status": 413,
               "message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"})
    );
    assert_eq!(out["event_limit"]["status"], 202, "{out}");
    assert_eq!(
        out["event_over"],
        json!({"code": "RequestEntityTooLargeException", "status": 413,
               "message": "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"})
    );
}

#[test]
fn the_context_matches_awslambdaric_attribute_by_attribute() {
    let Some(python) = python() else { return };
    let server =
        serve(&[handler("ours", "describe", ""), handler("ric", "describe", "runtime = \"awslambdaric\"")]);
    let out = boto3(
        &python,
        &server,
        r#"
context = {"custom": {"k": "v"}, "env": {"e": "1"},
           "w3c": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                   "tracestate": "a=1", "other": "dropped", "baggage": 7}}
encoded = base64.b64encode(json.dumps(context).encode()).decode()
out = {}
for name in ["ours", "ric"]:
    arn = "arn:aws:lambda:us-west-2:123456789012:function:" + name
    r = client.invoke(FunctionName=arn, ClientContext=encoded, Payload=b"{}")
    out[name] = json.loads(r["Payload"].read())
print(json.dumps(out))
"#,
    );
    let (ours, ric) = (&out["ours"], &out["ric"]);
    for key in ["function_version", "memory_limit_in_mb", "tenant_id"] {
        assert_eq!(ours[key], ric[key], "{key}: ours {ours} ric {ric}");
    }
    assert_eq!(ours["memory_limit_in_mb"], json!(["str", "128"]));
    assert_eq!(ours["tenant_id"], json!(["NoneType", null]));
    for key in
        ["function_name", "log_group_name", "log_stream_name", "aws_request_id", "invoked_function_arn"]
    {
        assert_eq!(ours[key][0], ric[key][0], "{key}'s type: ours {ours} ric {ric}");
    }
    for (name, got) in [("ours", ours), ("ric", ric)] {
        let arn = format!("arn:aws:lambda:us-west-2:123456789012:function:{name}");
        assert_eq!(got["invoked_function_arn"][1], arn.as_str(), "the caller's region and account are kept");
    }
    for key in ["remaining", "w3c", "client_context", "identity"] {
        assert_eq!(ours[key], ric[key], "{key}: ours {ours} ric {ric}");
    }
    assert_eq!(
        ours["w3c"],
        json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1"})
    );
    let public = |v: &Value| -> Vec<String> {
        v["public"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
    };
    let ours_public = public(ours);
    for name in public(ric) {
        assert!(
            ours_public.contains(&name),
            "awslambdaric's context has `{name}`, ours does not: {ours_public:?}"
        );
    }
}

#[test]
fn workers_get_the_environment_aws_sets_unless_the_config_overrides_it() {
    let files = project(&[
        handler("plain", "describe", ""),
        handler("zoned", "describe", "env = { TZ = \"Europe/Paris\" }"),
    ]);
    // The developer's own TZ does not leak into the worker; the config's does.
    let server =
        Server::start_with_env(&[("pyproject.toml", &files), ("app.py", APP)], &[("TZ", "Asia/Tokyo")]);
    let invoke = |name: &str| {
        server.request("POST", &format!("/2015-03-31/functions/{name}/invocations"), &[], Some(b"{}")).json()
    };
    let plain = invoke("plain");
    let root = std::fs::canonicalize(server.path()).unwrap();
    let task_root = std::fs::canonicalize(plain["env"]["LAMBDA_TASK_ROOT"].as_str().unwrap()).unwrap();
    assert_eq!(task_root, root, "{plain}");
    let runtime_dir = std::path::PathBuf::from(plain["env"]["LAMBDA_RUNTIME_DIR"].as_str().unwrap());
    assert!(runtime_dir.is_dir(), "{plain}");
    assert_eq!(plain["env"]["TZ"], ":UTC");
    assert_eq!(invoke("zoned")["env"]["TZ"], "Europe/Paris");
}

#[test]
fn the_result_is_serialised_as_awslambdaric_does() {
    let Some(_) = python() else { return };
    let server =
        serve(&[handler("ours", "result", ""), handler("ric", "result", "runtime = \"awslambdaric\"")]);
    let body = |name: &str| {
        server.request("POST", &format!("/2015-03-31/functions/{name}/invocations"), &[], Some(b"{}")).body
    };
    let ours = body("ours");
    assert!(ours.starts_with(r#"{"foo": "bar", "n": [1, 2.5, null]"#), "{ours}");
    assert_eq!(ours, body("ric"), "the same bytes from both runtimes");
}

#[test]
fn http_api_events_carry_a_trace_header_and_trailing_slashes_match() {
    let server =
        serve(&[handler("hello", "http", ""), handler("rest", "http", "event_format = \"apigw-v1\"")]);
    let reply = server.get("/hello/");
    assert_eq!(reply.status, 200, "{reply:?}");
    let event = reply.json();
    assert_eq!(event["path"], "/hello/", "rawPath keeps the slash");
    let trace = event["headers"]["x-amzn-trace-id"].as_str().expect("an x-amzn-trace-id header");
    assert!(trace.starts_with("Root=1-"), "{trace}");
    let rest = server.get("/rest/");
    assert_eq!(rest.status, 200, "{rest:?}");
    assert_eq!(rest.json()["path"], "/rest/");
    assert_eq!(server.get("/hello//").status, 404);
}

#[test]
fn a_provisioned_workers_init_is_in_init_report_not_in_its_first_report() {
    let server = serve(&[handler("warm", "result", "provisioned_concurrency = 1")]);
    server.wait_for("the provisioned worker's INIT_REPORT", Duration::from_secs(20), || {
        server.log().contains("INIT_REPORT Init Duration: ")
    });
    let reply = server.request("POST", "/2015-03-31/functions/warm/invocations", &[], Some(b"{}"));
    assert_eq!(reply.status, 200);
    server.wait_for("the first REPORT", Duration::from_secs(10), || {
        server.log().contains("REPORT RequestId: ")
    });
    let log = server.log();
    let report = log.lines().find(|l| l.contains("REPORT RequestId: ")).unwrap();
    assert!(!report.contains("Init Duration"), "{report}");
}
