//! The Lambda Invoke API, driven by boto3 itself (from the venv `make test` builds).

mod common;

use std::time::Duration;

use common::{pyproject, Server};
use serde_json::Value;

const HANDLERS: &str = r#"
import os, time

def echo(event, context):
    custom = context.client_context.custom if context.client_context else None
    return {"event": event, "custom": custom, "function": context.function_name}

def boom(event, context):
    raise KeyError("missing-key")

def sleepy(event, context):
    time.sleep(5)

def chatty(event, context):
    for i in range(3):
        print("working on step", i)
    print("the last line, printed right before the result", flush=True)
    return {"done": True}

def loud_failure(event, context):
    print("about to fail")
    raise ValueError("loudly")

def flaky(event, context):
    attempts = len(open("attempts").read()) if os.path.exists("attempts") else 0
    with open("attempts", "a") as log:
        log.write("x")
    if attempts < event.get("fail_times", 0):
        raise RuntimeError("attempt %d fails" % (attempts + 1))
    return {"ok": True}
"#;

/// `call(**kw)`: an invoke's status, error, version and payload, or its error; a script fills `out`.
const CALL: &str = r#"
def call(**kwargs):
    try:
        r = client.invoke(**kwargs)
        payload = r["Payload"].read()
        return {"status": r["StatusCode"], "error": r.get("FunctionError"), "version": r.get("ExecutedVersion"),
                "payload": json.loads(payload) if payload else None}
    except client.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
                "http": e.response["ResponseMetadata"]["HTTPStatusCode"]}
out = {}
"#;

/// Runs a boto3 script with `client` and `call` ready; the `out` it fills.
fn boto3(server: &Server, script: &str) -> Option<Value> {
    let python = common::tools::python()?;
    Some(common::tools::boto3(&python, server, &format!("{CALL}{script}\nprint(json.dumps(out))"), &[]))
}

fn serve() -> Server {
    let handlers = r#"
[tool.smyth.handlers.echo]
handler_path = "app.echo"
url_path = "/echo"

[tool.smyth.handlers.boom]
handler_path = "app.boom"
url_path = "/boom"

[tool.smyth.handlers.sleepy]
handler_path = "app.sleepy"
url_path = "/sleepy"
timeout = 0.5

[tool.smyth.handlers.chatty]
handler_path = "app.chatty"
url_path = "/chatty"

[tool.smyth.handlers.loud]
handler_path = "app.loud_failure"
url_path = "/loud"

[tool.smyth.handlers.zero]
handler_path = "app.echo"
url_path = "/zero"
reserved_concurrency = 0

[tool.smyth.handlers.flaky]
handler_path = "app.flaky"
url_path = "/flaky"
retry_delay = 0.2

[tool.smyth.handlers.once]
handler_path = "app.flaky"
url_path = "/once"
maximum_retry_attempts = 0
"#;
    Server::start(&[("pyproject.toml", &pyproject(handlers)), ("app.py", HANDLERS)])
}

#[test]
fn boto3_invokes_synchronously_with_aws_shapes() {
    let server = serve();
    let Some(out) = boto3(
        &server,
        r#"
out["sync"] = call(FunctionName="echo", Payload=json.dumps({"a": 1}))
out["arn"] = call(FunctionName="arn:aws:lambda:eu-central-1:000000000000:function:echo", Payload=b"{}")
out["empty"] = call(FunctionName="echo")
context = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
out["context"] = call(FunctionName="echo", ClientContext=context, Payload=b"{}")
out["raised"] = call(FunctionName="boom", Payload=b"{}")
out["timeout"] = call(FunctionName="sleepy", Payload=b"{}")
out["missing"] = call(FunctionName="nope", Payload=b"{}")
out["qualifier"] = call(FunctionName="echo", Qualifier="prod", Payload=b"{}")
out["throttled"] = call(FunctionName="zero", Payload=b"{}")
out["bad_json"] = call(FunctionName="echo", Payload=b"not json")
out["dry_run"] = call(FunctionName="echo", InvocationType="DryRun")
"#,
    ) else {
        return;
    };
    assert_eq!(out["sync"]["status"], 200, "{out}");
    assert_eq!(out["sync"]["payload"]["event"], serde_json::json!({"a": 1}));
    assert_eq!(out["sync"]["payload"]["function"], "echo");
    assert_eq!(out["sync"]["version"], "$LATEST");
    assert!(out["sync"]["error"].is_null());
    assert_eq!(out["arn"]["status"], 200, "{out}");
    assert_eq!(out["empty"]["payload"]["event"], serde_json::json!({}), "{out}");
    assert_eq!(out["context"]["payload"]["custom"], serde_json::json!({"tenant": "t1"}), "{out}");

    assert_eq!(out["raised"]["status"], 200, "{out}");
    assert_eq!(out["raised"]["error"], "Unhandled");
    assert_eq!(out["raised"]["payload"]["errorType"], "KeyError");
    assert!(out["raised"]["payload"]["stackTrace"].is_array());

    assert_eq!(out["timeout"]["error"], "Unhandled", "{out}");
    assert_eq!(out["timeout"]["payload"]["errorType"], "Sandbox.Timedout");
    let message = out["timeout"]["payload"]["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("RequestId: ") && message.ends_with("Error: Task timed out after 0.50 seconds"),
        "{message}"
    );

    assert_eq!(out["missing"]["code"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["missing"]["http"], 404);
    assert!(out["missing"]["message"].as_str().unwrap().contains("function:nope:$LATEST"), "{out}");
    assert_eq!(out["qualifier"]["code"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["throttled"]["code"], "TooManyRequestsException", "{out}");
    assert_eq!(out["throttled"]["http"], 429);
    assert_eq!(out["bad_json"]["code"], "InvalidRequestContentException", "{out}");
    assert_eq!(out["dry_run"]["status"], 204, "{out}");
    assert_eq!(server.workers("echo")[0]["invocations"], 4, "DryRun must not invoke");
}

#[test]
fn log_type_tail_returns_the_invocations_log() {
    let server = serve();
    let Some(out) = boto3(
        &server,
        r#"
for name in ["chatty", "chatty", "loud"]:
    r = client.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    out.setdefault(name, []).append({"log": base64.b64decode(r["LogResult"]).decode(),
                                     "error": r.get("FunctionError"), "id": r["ResponseMetadata"]["RequestId"]})
r = client.invoke(FunctionName="chatty", Payload=b"{}")
out["untailed"] = "LogResult" in r
"#,
    ) else {
        return;
    };
    for run in out["chatty"].as_array().unwrap() {
        let log = run["log"].as_str().unwrap();
        let id = run["id"].as_str().unwrap();
        assert!(log.starts_with(&format!("START RequestId: {id} Version: $LATEST\n")), "{log}");
        for i in 0..3 {
            assert!(log.contains(&format!("working on step {i}\n")), "{log}");
        }
        assert!(log.contains("the last line, printed right before the result\nEND RequestId: "), "{log}");
        assert!(log.contains(&format!("END RequestId: {id}\nREPORT RequestId: {id}\tDuration: ")), "{log}");
    }
    let loud = &out["loud"][0];
    assert_eq!(loud["error"], "Unhandled");
    let log = loud["log"].as_str().unwrap();
    assert!(log.contains("about to fail") && log.contains("ValueError: loudly"), "{log}");
    assert_eq!(out["untailed"], false, "no LogResult unless asked");
}

#[test]
fn event_invocations_answer_202_and_retry_failures() {
    let server = serve();
    let Some(out) = boto3(
        &server,
        r#"
out["flaky"] = call(FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail_times": 2}))
"#,
    ) else {
        return;
    };
    assert_eq!(out["flaky"]["status"], 202, "{out}");
    let attempts = || std::fs::read_to_string(server.path().join("attempts")).map(|s| s.len()).unwrap_or(0);
    server.wait_for("two retries after two failures", Duration::from_secs(10), || attempts() == 3);
    server.wait_for("the third attempt to succeed", Duration::from_secs(5), || {
        server.workers("flaky")[0]["state"] == "warm"
    });
    assert!(server.log().contains("retrying in"), "{}", server.log());
}

#[test]
fn event_invocations_respect_maximum_retry_attempts() {
    let server = serve();
    let Some(out) = boto3(
        &server,
        r#"
out["once"] = call(FunctionName="once", InvocationType="Event", Payload=json.dumps({"fail_times": 5}))
out["throttled"] = call(FunctionName="zero", InvocationType="Event", Payload=b"{}")
"#,
    ) else {
        return;
    };
    assert_eq!(out["once"]["status"], 202, "{out}");
    assert_eq!(out["throttled"]["status"], 202, "accepted even when throttled: {out}");
    server.wait_for("the single attempt to fail for good", Duration::from_secs(10), || {
        server.log().contains("asynchronous invocation failed for good")
    });
    let attempts = std::fs::read_to_string(server.path().join("attempts")).unwrap();
    assert_eq!(attempts.len(), 1, "maximum_retry_attempts = 0 means one attempt");
}
