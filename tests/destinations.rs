//! Async destinations: `on_success` / `on_failure` send AWS's invocation record to another handler
//! (invoked asynchronously) or to a JSON-lines file, for success, retries exhausted and event age
//! exceeded; an event lost with no destination is logged with its payload. Events are sent by boto3
//! and the AWS CLI.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tools::python;
use common::{pyproject, Server};
use serde_json::Value;

const APP: &str = r#"
import json

def ok(event, context):
    return {"echo": event}

def fail(event, context):
    raise RuntimeError("always fails")

def audit(event, context):
    with open("audit.jsonl", "a") as f:
        f.write(json.dumps(event) + "\n")
"#;

/// `name` runs `function` with async settings `extra`.
fn handler(name: &str, function: &str, extra: &str) -> String {
    format!(
        "[tool.smyth.handlers.{name}]\nhandler_path = \"app.{function}\"\nurl_path = \"/{name}\"\n{extra}\n"
    )
}

fn serve() -> Server {
    let quick = "maximum_retry_attempts = 2\nretry_delay = 0.05\n";
    // A retry 61 s away would land past the 60 s maximum age: the first failure ends the event.
    let aging = "maximum_retry_attempts = 2\nretry_delay = 61\nmaximum_event_age = 60\n";
    let handlers = [
        handler("ok_file", "ok", "on_success = \"file:ok.jsonl\"\non_failure = \"file:never.jsonl\""),
        handler("ok_handler", "ok", "on_success = \"handler:audit\""),
        handler("fail_file", "fail", &format!("{quick}on_failure = \"file:failed.jsonl\"")),
        handler("fail_handler", "fail", &format!("{quick}on_failure = \"handler:audit\"")),
        handler("old_file", "fail", &format!("{aging}on_failure = \"file:old.jsonl\"")),
        handler(
            "old_handler",
            "fail",
            &format!("{aging}on_failure = \"arn:aws:lambda:eu-central-1:000000000000:function:audit\""),
        ),
        handler("lost", "fail", "maximum_retry_attempts = 0"),
        handler("audit", "audit", ""),
    ];
    let config = pyproject(&handlers.concat());
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

/// Sends `{"n": N}` events with boto3; the request id of each (function → id).
fn send_with_boto3(server: &Server, python: &str, functions: &[&str]) -> Value {
    let script = r#"
ids = {}
for n, name in enumerate(sys.argv[2:]):
    r = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": n, "to": name}))
    assert r["StatusCode"] == 202, r
    ids[name] = r["ResponseMetadata"]["RequestId"]
print(json.dumps(ids))
"#;
    common::tools::boto3(python, server, script, functions)
}

/// The records in the project file `name`.
fn records(server: &Server, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(server.path().join(name)).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn wait_records(server: &Server, name: &str, count: usize) -> Vec<Value> {
    server.wait_for(&format!("{count} records in {name}"), Duration::from_secs(30), || {
        records(server, name).len() >= count
    });
    records(server, name)
}

fn arn(function: &str) -> String {
    format!("arn:aws:lambda:eu-central-1:000000000000:function:{function}:$LATEST")
}

/// The record's fixed parts: version, timestamp, request context, request payload.
fn assert_record(record: &Value, function: &str, request_id: &str, condition: &str, invokes: u64) {
    assert_eq!(record["version"], "1.0", "{record}");
    let timestamp = record["timestamp"].as_str().expect("a timestamp");
    assert!(
        timestamp.len() == 24 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{record}"
    );
    let context = &record["requestContext"];
    assert_eq!(context["requestId"], request_id, "{record}");
    assert_eq!(context["functionArn"], arn(function), "{record}");
    assert_eq!(context["condition"], condition, "{record}");
    assert_eq!(context["approximateInvokeCount"], invokes, "{record}");
    assert_eq!(record["requestPayload"]["to"], function, "{record}");
}

fn assert_failure_response(record: &Value) {
    assert_eq!(
        record["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}),
        "{record}"
    );
    assert_eq!(record["responsePayload"]["errorType"], "RuntimeError", "{record}");
    assert_eq!(record["responsePayload"]["errorMessage"], "always fails", "{record}");
}

#[test]
fn records_reach_files_and_handlers_for_each_condition() {
    let Some(python) = python() else { return };
    let server = serve();
    let functions = ["ok_file", "ok_handler", "fail_file", "fail_handler", "old_file", "old_handler"];
    let ids = send_with_boto3(&server, &python, &functions);
    let id = |f: &str| ids[f].as_str().unwrap().to_string();

    let ok = wait_records(&server, "ok.jsonl", 1);
    assert_eq!(ok.len(), 1);
    assert_record(&ok[0], "ok_file", &id("ok_file"), "Success", 1);
    assert_eq!(
        ok[0]["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST"})
    );
    assert_eq!(ok[0]["responsePayload"], serde_json::json!({"echo": {"n": 0, "to": "ok_file"}}));

    let failed = wait_records(&server, "failed.jsonl", 1);
    assert_record(&failed[0], "fail_file", &id("fail_file"), "RetriesExhausted", 3);
    assert_failure_response(&failed[0]);

    let old = wait_records(&server, "old.jsonl", 1);
    assert_record(&old[0], "old_file", &id("old_file"), "EventAgeExceeded", 1);
    assert_failure_response(&old[0]);

    let audited = wait_records(&server, "audit.jsonl", 3);
    let by = |f: &str| {
        audited
            .iter()
            .find(|r| r["requestContext"]["functionArn"] == arn(f))
            .cloned()
            .unwrap_or_else(|| panic!("no record of {f} in {audited:?}"))
    };
    assert_record(&by("ok_handler"), "ok_handler", &id("ok_handler"), "Success", 1);
    assert_record(&by("fail_handler"), "fail_handler", &id("fail_handler"), "RetriesExhausted", 3);
    assert_failure_response(&by("fail_handler"));
    assert_record(&by("old_handler"), "old_handler", &id("old_handler"), "EventAgeExceeded", 1);
    assert!(records(&server, "never.jsonl").is_empty(), "a success never reaches on_failure");
}

#[test]
fn the_aws_cli_sends_an_event_whose_record_reaches_the_file() {
    let Some(python) = python() else { return };
    let server = serve();
    let out = server.path().join("cli-out.json");
    let payload = r#"{"to": "ok_file", "via": "cli"}"#;
    let args = ["invoke", "--function-name", "ok_file", "--invocation-type", "Event", "--payload", payload];
    let args = [&args[..], &[out.to_str().unwrap()]].concat();
    let reply = common::tools::aws_lambda(&python, &server, &args).unwrap_or_else(|err| panic!("aws: {err}"));
    assert_eq!(reply["StatusCode"], 202);
    let ok = wait_records(&server, "ok.jsonl", 1);
    assert_eq!(ok[0]["requestContext"]["condition"], "Success");
    assert_eq!(ok[0]["requestPayload"]["via"], "cli");
}

#[test]
fn an_event_lost_with_no_destination_is_logged_with_its_payload() {
    let server = serve();
    let reply = server.request(
        "POST",
        "/2015-03-31/functions/lost/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        Some(br#"{"order": "unseen-4711"}"#),
    );
    assert_eq!(reply.status, 202);
    let request_id = reply.header("x-amzn-RequestId").expect("a request id").to_string();
    server.wait_for("the lost event's payload in the log", Duration::from_secs(30), || {
        server.log().lines().any(|l| l.contains("unseen-4711") && l.contains(&request_id))
    });
}

#[test]
fn an_unknown_destination_handler_is_a_config_error() {
    let config = pyproject(&handler("ok", "ok", "on_failure = \"handler:nope\""));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), config).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_smyth")).arg("check").current_dir(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("handlers.ok.on_failure") && stderr.contains("names no handler"), "{stderr}");
}
