//! The Lambda API beyond Invoke (issue 14): reading the functions and changing their concurrency and
//! asynchronous settings while the server runs, each call driven by boto3 and by the AWS CLI (both
//! from the test venv, `SMYTH_TEST_PYTHON`).

mod common;

use std::time::Duration;

use common::tools::{aws_lambda as aws, python};
use common::Server;
use serde_json::{json, Value};

const HANDLERS: &str = r#"
import os

def echo(event, context):
    return {"event": event}

def flaky(event, context):
    with open("attempts", "a") as log:
        log.write("x")
    raise RuntimeError("always fails")
"#;

/// A project of three functions; `echo` has a pool of 3 and its own `env`, the global `env` holds
/// a value that must not show as a function's variable.
fn serve(python: &str, account_concurrency: usize) -> Server {
    let config = format!(
        r#"[tool.smyth]
port = 0
python = "{python}"
account_concurrency = {account_concurrency}
env = {{ GLOBAL_ONLY = "global-value" }}

[tool.smyth.handlers.echo]
handler_path = "app.echo"
url_path = "/echo"
concurrency = 3
timeout = 2.5
memory_size = 256
env = {{ GREETING = "hi" }}

[tool.smyth.handlers.other]
handler_path = "app.echo"
url_path = "/other"

[tool.smyth.handlers.flaky]
handler_path = "app.flaky"
url_path = "/flaky"
retry_delay = 0.2
"#
    );
    Server::start_with_env(
        &[("pyproject.toml", &config), ("app.py", HANDLERS)],
        &[("SMYTH_SERVER_ONLY", "server-env-value")],
    )
}

/// `call(fn, **kw)`: the call's result, or its error; a script fills `out`.
const CALL: &str = r#"
def call(fn, **kwargs):
    try:
        r = getattr(client, fn)(**kwargs)
        status = r.pop("ResponseMetadata")["HTTPStatusCode"]
        r.pop("Payload", None)
        return {"http": status, **r}
    except client.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
                "http": e.response["ResponseMetadata"]["HTTPStatusCode"]}
out = {}
"#;

/// Runs a boto3 script with `client` and `call` ready; the `out` it fills.
fn boto3(python: &str, server: &Server, script: &str) -> Value {
    common::tools::boto3(python, server, &format!("{CALL}{script}\nprint(json.dumps(out, default=str))"), &[])
}

fn names(functions: &Value) -> Vec<&str> {
    functions.as_array().unwrap().iter().map(|f| f["FunctionName"].as_str().unwrap()).collect()
}

fn invoke_status(server: &Server, name: &str) -> u16 {
    server.request("POST", &format!("/2015-03-31/functions/{name}/invocations"), &[], Some(b"{}")).status
}

#[test]
fn functions_read_through_boto3_and_the_cli() {
    let Some(python) = python() else { return };
    let server = serve(&python, 1000);
    let out = boto3(
        &python,
        &server,
        r#"
out["all"] = call("list_functions")
out["first"] = call("list_functions", MaxItems=1)
out["rest"] = call("list_functions", MaxItems=5, Marker=out["first"]["NextMarker"])
out["paginated"] = [f["FunctionName"] for page in client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1}) for f in page["Functions"]]
out["function"] = call("get_function", FunctionName="echo")
out["by_arn"] = call("get_function_configuration", FunctionName="arn:aws:lambda:eu-central-1:000000000000:function:echo")
out["account"] = call("get_account_settings")
out["concurrency"] = call("get_function_concurrency", FunctionName="echo")
out["missing"] = call("get_function", FunctionName="ghost")
out["missing_configuration"] = call("get_function_configuration", FunctionName="ghost")
out["bad_qualifier"] = call("get_function_configuration", FunctionName="echo", Qualifier="prod")
out["python"] = "python%d.%d" % sys.version_info[:2]
"#,
    );
    assert_eq!(names(&out["all"]["Functions"]), ["echo", "other", "flaky"], "{out}");
    assert!(out["all"].get("NextMarker").is_none(), "{out}");
    assert_eq!(names(&out["first"]["Functions"]), ["echo"], "{out}");
    assert_eq!(names(&out["rest"]["Functions"]), ["other", "flaky"], "{out}");
    assert!(out["rest"].get("NextMarker").is_none(), "{out}");
    assert_eq!(out["paginated"], json!(["echo", "other", "flaky"]), "{out}");

    let config = &out["function"]["Configuration"];
    assert_eq!(config["FunctionName"], "echo");
    assert_eq!(config["FunctionArn"], "arn:aws:lambda:eu-central-1:000000000000:function:echo");
    assert_eq!(config["Runtime"], out["python"], "{config}");
    assert_eq!(config["Handler"], "app.echo");
    assert_eq!(config["Timeout"], 3, "2.5 s rounds up to whole seconds: {config}");
    assert_eq!(config["MemorySize"], 256);
    assert_eq!(config["Environment"]["Variables"], json!({"GREETING": "hi"}), "the handler's own env only");
    assert_eq!(config["State"], "Active");
    assert_eq!(config["PackageType"], "Zip");
    assert_eq!(config["Architectures"].as_array().unwrap().len(), 1);
    assert_eq!(config["SnapStart"]["ApplyOn"], "None");
    assert_eq!(config["LoggingConfig"]["LogGroup"], "/aws/lambda/echo");
    assert!(config["LastModified"].as_str().unwrap().ends_with("+0000"), "{config}");
    let text = out.to_string();
    assert!(!text.contains("global-value") && !text.contains("server-env-value"), "{text}");
    assert!(out["all"]["Functions"][1].get("Environment").is_none(), "no env, no Environment: {out}");
    assert_eq!(out["by_arn"]["FunctionName"], "echo", "{out}");

    assert_eq!(out["account"]["AccountLimit"]["ConcurrentExecutions"], 1000, "{out}");
    assert_eq!(out["account"]["AccountLimit"]["UnreservedConcurrentExecutions"], 1000, "{out}");
    assert_eq!(out["account"]["AccountUsage"]["FunctionCount"], 3, "{out}");
    assert_eq!(out["concurrency"], json!({"http": 200}), "no reserved concurrency: {out}");
    for missing in ["missing", "missing_configuration", "bad_qualifier"] {
        assert_eq!(out[missing]["code"], "ResourceNotFoundException", "{missing}: {out}");
        assert_eq!(out[missing]["http"], 404, "{missing}: {out}");
    }

    // The AWS CLI: its own paging over MaxItems / Marker, and the same shapes.
    let all = aws(&python, &server, &["list-functions", "--page-size", "1"]).unwrap();
    assert_eq!(names(&all["Functions"]), ["echo", "other", "flaky"], "{all}");
    let one = aws(&python, &server, &["list-functions", "--max-items", "1"]).unwrap();
    assert_eq!(names(&one["Functions"]), ["echo"], "{one}");
    let token = one["NextToken"].as_str().expect("a next token").to_string();
    let next =
        aws(&python, &server, &["list-functions", "--max-items", "1", "--starting-token", &token]).unwrap();
    assert_eq!(names(&next["Functions"]), ["other"], "{next}");
    let config = aws(&python, &server, &["get-function-configuration", "--function-name", "echo"]).unwrap();
    assert_eq!(config["Environment"]["Variables"], json!({"GREETING": "hi"}), "{config}");
    let function = aws(&python, &server, &["get-function", "--function-name", "other"]).unwrap();
    assert_eq!(function["Configuration"]["Handler"], "app.echo", "{function}");
    let account = aws(&python, &server, &["get-account-settings"]).unwrap();
    assert_eq!(account["AccountUsage"]["FunctionCount"], 3, "{account}");
    let concurrency =
        aws(&python, &server, &["get-function-concurrency", "--function-name", "echo"]).unwrap();
    // The CLI prints nothing for an empty answer.
    assert!(concurrency.get("ReservedConcurrentExecutions").is_none(), "{concurrency}");
    let missing = aws(&python, &server, &["get-function", "--function-name", "ghost"]).unwrap_err();
    assert!(missing.contains("ResourceNotFoundException"), "{missing}");
}

#[test]
fn reserved_concurrency_changes_throttling_at_once() {
    let Some(python) = python() else { return };
    // 102: the account keeps 100 unreserved, so at most 2 can be reserved.
    let server = serve(&python, 102);
    assert_eq!(invoke_status(&server, "echo"), 200);
    let out = boto3(
        &python,
        &server,
        r#"
out["too_many"] = call("put_function_concurrency", FunctionName="echo", ReservedConcurrentExecutions=3)
out["beyond_pool"] = call("put_function_concurrency", FunctionName="other", ReservedConcurrentExecutions=2)
out["missing"] = call("put_function_concurrency", FunctionName="ghost", ReservedConcurrentExecutions=1)
out["two"] = call("put_function_concurrency", FunctionName="echo", ReservedConcurrentExecutions=2)
out["provisioned_above"] = call("put_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST", ProvisionedConcurrentExecutions=3)
out["account"] = call("get_account_settings")
out["zero"] = call("put_function_concurrency", FunctionName="echo", ReservedConcurrentExecutions=0)
out["get"] = call("get_function_concurrency", FunctionName="echo")
out["function"] = call("get_function", FunctionName="echo")
out["throttled"] = call("invoke", FunctionName="echo", Payload=b"{}")
"#,
    );
    assert_eq!(out["too_many"]["code"], "InvalidParameterValueException", "{out}");
    assert_eq!(out["too_many"]["http"], 400, "{out}");
    assert!(out["too_many"]["message"].as_str().unwrap().contains("minimum value of [100]"), "{out}");
    assert_eq!(out["beyond_pool"]["code"], "InvalidParameterValueException", "pool of 1: {out}");
    assert_eq!(out["missing"]["code"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["missing"]["http"], 404, "{out}");
    assert_eq!(out["two"]["ReservedConcurrentExecutions"], 2, "{out}");
    assert_eq!(out["provisioned_above"]["code"], "InvalidParameterValueException", "{out}");
    assert_eq!(out["provisioned_above"]["http"], 400, "{out}");
    assert_eq!(out["account"]["AccountLimit"]["UnreservedConcurrentExecutions"], 100, "{out}");
    assert_eq!(out["zero"]["ReservedConcurrentExecutions"], 0, "{out}");
    assert_eq!(out["get"]["ReservedConcurrentExecutions"], 0, "{out}");
    assert_eq!(out["function"]["Concurrency"]["ReservedConcurrentExecutions"], 0, "{out}");
    assert_eq!(out["throttled"]["code"], "TooManyRequestsException", "{out}");
    assert_eq!(out["throttled"]["http"], 429, "{out}");
    let status = server.status();
    assert_eq!(status["handlers"]["echo"]["reserved_concurrency"], 0, "{status}");
    assert!(server.log().contains("reserved concurrency set to 0"), "{}", server.log());
    assert!(server.log().contains("the config file is not changed"), "{}", server.log());

    let out = boto3(
        &python,
        &server,
        r#"
out["delete"] = call("delete_function_concurrency", FunctionName="echo")
out["get"] = call("get_function_concurrency", FunctionName="echo")
out["invoke"] = call("invoke", FunctionName="echo", Payload=b"{}")
"#,
    );
    assert_eq!(out["delete"]["http"], 204, "{out}");
    assert_eq!(out["get"], json!({"http": 200}), "{out}");
    assert_eq!(out["invoke"]["http"], 200, "{out}");
    assert!(server.status()["handlers"]["echo"]["reserved_concurrency"].is_null());

    // The same through the AWS CLI.
    let put = aws(
        &python,
        &server,
        &["put-function-concurrency", "--function-name", "echo", "--reserved-concurrent-executions", "0"],
    )
    .unwrap();
    assert_eq!(put["ReservedConcurrentExecutions"], 0, "{put}");
    assert_eq!(invoke_status(&server, "echo"), 429);
    assert_eq!(invoke_status(&server, "other"), 200, "other functions are not affected");
    let got = aws(&python, &server, &["get-function-concurrency", "--function-name", "echo"]).unwrap();
    assert_eq!(got["ReservedConcurrentExecutions"], 0, "{got}");
    let refused = aws(
        &python,
        &server,
        &["put-function-concurrency", "--function-name", "echo", "--reserved-concurrent-executions", "3"],
    )
    .unwrap_err();
    assert!(refused.contains("InvalidParameterValueException"), "{refused}");
    aws(&python, &server, &["delete-function-concurrency", "--function-name", "echo"]).unwrap();
    assert_eq!(invoke_status(&server, "echo"), 200);
}

fn warm_workers(server: &Server, handler: &str) -> usize {
    server.workers(handler).iter().filter(|w| w["state"] == "warm" && w["pid"].is_u64()).count()
}

#[test]
fn provisioned_concurrency_starts_and_stops_workers_live() {
    let Some(python) = python() else { return };
    let server = serve(&python, 1000);
    assert_eq!(warm_workers(&server, "echo"), 0);
    let out = boto3(
        &python,
        &server,
        r#"
out["none"] = call("get_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST")
out["beyond_pool"] = call("put_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST", ProvisionedConcurrentExecutions=4)
out["alias"] = call("put_provisioned_concurrency_config", FunctionName="echo", Qualifier="prod", ProvisionedConcurrentExecutions=1)
out["put"] = call("put_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST", ProvisionedConcurrentExecutions=2)
"#,
    );
    assert_eq!(out["none"]["code"], "ProvisionedConcurrencyConfigNotFoundException", "{out}");
    assert_eq!(out["none"]["http"], 404, "{out}");
    assert_eq!(out["beyond_pool"]["code"], "InvalidParameterValueException", "{out}");
    assert_eq!(out["alias"]["code"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["put"]["http"], 202, "{out}");
    assert_eq!(out["put"]["RequestedProvisionedConcurrentExecutions"], 2, "{out}");
    assert_eq!(out["put"]["Status"], "IN_PROGRESS", "no worker is warm the moment it is asked: {out}");
    server.wait_for("two provisioned workers warm", Duration::from_secs(20), || {
        warm_workers(&server, "echo") == 2
    });
    let status = server.status();
    assert_eq!(status["handlers"]["echo"]["provisioned_concurrency"], 2, "{status}");
    assert!(server.log().contains("provisioned concurrency set to 2"), "{}", server.log());

    let out = boto3(
        &python,
        &server,
        r#"
out["ready"] = call("get_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST")
out["fewer"] = call("put_provisioned_concurrency_config", FunctionName="echo", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
"#,
    );
    assert_eq!(out["ready"]["Status"], "READY", "{out}");
    assert_eq!(out["ready"]["AllocatedProvisionedConcurrentExecutions"], 2, "{out}");
    assert_eq!(out["fewer"]["http"], 202, "{out}");
    server.wait_for("the released worker to stop", Duration::from_secs(10), || {
        server.workers("echo")[1]["pid"].is_null()
    });
    assert_eq!(warm_workers(&server, "echo"), 1);

    // The AWS CLI raises it to the whole pool and removes it.
    let put = aws(
        &python,
        &server,
        &[
            "put-provisioned-concurrency-config",
            "--function-name",
            "echo",
            "--qualifier",
            "$LATEST",
            "--provisioned-concurrent-executions",
            "3",
        ],
    )
    .unwrap();
    assert_eq!(put["RequestedProvisionedConcurrentExecutions"], 3, "{put}");
    server.wait_for("three provisioned workers warm", Duration::from_secs(20), || {
        warm_workers(&server, "echo") == 3
    });
    let got = aws(
        &python,
        &server,
        &["get-provisioned-concurrency-config", "--function-name", "echo", "--qualifier", "$LATEST"],
    )
    .unwrap();
    assert_eq!(got["Status"], "READY", "{got}");
    aws(
        &python,
        &server,
        &["delete-provisioned-concurrency-config", "--function-name", "echo", "--qualifier", "$LATEST"],
    )
    .unwrap();
    server.wait_for("the workers to stop", Duration::from_secs(10), || warm_workers(&server, "echo") == 0);
    let gone = aws(
        &python,
        &server,
        &["get-provisioned-concurrency-config", "--function-name", "echo", "--qualifier", "$LATEST"],
    )
    .unwrap_err();
    assert!(gone.contains("ProvisionedConcurrencyConfigNotFoundException"), "{gone}");
    assert_eq!(server.status()["handlers"]["echo"]["provisioned_concurrency"], 0);
}

#[test]
fn event_invoke_config_is_stored_validated_and_applied() {
    let Some(python) = python() else { return };
    let server = serve(&python, 1000);
    let out = boto3(
        &python,
        &server,
        r#"
arn = "arn:aws:lambda:eu-central-1:000000000000:function:other"
out["default"] = call("get_function_event_invoke_config", FunctionName="flaky")
out["put"] = call("put_function_event_invoke_config", FunctionName="flaky", MaximumRetryAttempts=0,
                  DestinationConfig={"OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": "file:failures.jsonl"}})
out["get"] = call("get_function_event_invoke_config", FunctionName="flaky")
out["update"] = call("update_function_event_invoke_config", FunctionName="flaky", MaximumEventAgeInSeconds=60)
out["sqs"] = call("put_function_event_invoke_config", FunctionName="flaky",
                  DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:eu-central-1:000000000000:dlq"}})
out["unknown_handler"] = call("put_function_event_invoke_config", FunctionName="flaky",
                  DestinationConfig={"OnFailure": {"Destination": "handler:ghost"}})
out["missing"] = call("get_function_event_invoke_config", FunctionName="ghost")
out["event"] = call("invoke", FunctionName="flaky", InvocationType="Event", Payload=b"{}")
"#,
    );
    assert_eq!(out["default"]["MaximumRetryAttempts"], 2, "the config file's values: {out}");
    assert_eq!(out["default"]["MaximumEventAgeInSeconds"], 21600, "{out}");
    assert_eq!(out["put"]["MaximumRetryAttempts"], 0, "{out}");
    assert_eq!(out["put"]["MaximumEventAgeInSeconds"], 21600, "{out}");
    let destinations = &out["get"]["DestinationConfig"];
    assert_eq!(
        destinations["OnSuccess"]["Destination"],
        "arn:aws:lambda:eu-central-1:000000000000:function:other"
    );
    assert_eq!(destinations["OnFailure"]["Destination"], "file:failures.jsonl", "{out}");
    assert_eq!(out["get"]["FunctionArn"], "arn:aws:lambda:eu-central-1:000000000000:function:flaky:$LATEST");
    assert_eq!(out["update"]["MaximumRetryAttempts"], 0, "update keeps what it does not name: {out}");
    assert_eq!(out["update"]["MaximumEventAgeInSeconds"], 60, "{out}");
    for refused in ["sqs", "unknown_handler"] {
        assert_eq!(out[refused]["code"], "InvalidParameterValueException", "{refused}: {out}");
        assert_eq!(out[refused]["http"], 400, "{refused}: {out}");
    }
    assert_eq!(out["missing"]["code"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["event"]["http"], 202, "{out}");
    // MaximumRetryAttempts = 0 applies to the running queue: one attempt, no retry.
    server.wait_for("the single attempt to fail for good", Duration::from_secs(10), || {
        server.log().contains("asynchronous invocation failed for good")
    });
    assert_eq!(std::fs::read_to_string(server.path().join("attempts")).unwrap(), "x");
    assert!(server.log().contains("asynchronous invocation settings changed"), "{}", server.log());

    // Out-of-range values botocore would refuse before sending are refused by the server too.
    let path = "/2019-09-25/functions/flaky/event-invoke-config";
    for body in [r#"{"MaximumRetryAttempts": 3}"#, r#"{"MaximumEventAgeInSeconds": 59}"#] {
        let reply =
            server.request("PUT", path, &[("content-type", "application/json")], Some(body.as_bytes()));
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.header("x-amzn-ErrorType"), Some("InvalidParameterValueException"), "{body}");
    }

    // The AWS CLI; Delete goes back to the config file's values.
    let put = aws(
        &python,
        &server,
        &["put-function-event-invoke-config", "--function-name", "flaky", "--maximum-retry-attempts", "1"],
    )
    .unwrap();
    assert_eq!(put["MaximumRetryAttempts"], 1, "{put}");
    assert!(put["DestinationConfig"]["OnFailure"].get("Destination").is_none(), "put replaces: {put}");
    let got =
        aws(&python, &server, &["get-function-event-invoke-config", "--function-name", "flaky"]).unwrap();
    assert_eq!(got["MaximumRetryAttempts"], 1, "{got}");
    aws(&python, &server, &["delete-function-event-invoke-config", "--function-name", "flaky"]).unwrap();
    let got =
        aws(&python, &server, &["get-function-event-invoke-config", "--function-name", "flaky"]).unwrap();
    assert_eq!(got["MaximumRetryAttempts"], 2, "{got}");
}
