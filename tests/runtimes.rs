//! The worker protocol is the public Lambda Runtime API: its error cases, a hand-written client
//! (`runtime = "command"`), and the official awslambdaric as a worker.

mod common;

use common::{pyproject, Server};

/// A Runtime API client written by hand: it probes the API's error cases during its first
/// invocation, reports what it saw as the second invocation's result, and fails the third with its
/// own error.
const PROBE: &str = r#"
import http.client, json, os, sys
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")

def call(method, path, body=None, headers={}):
    conn = http.client.HTTPConnection(host, int(port))
    try:
        conn.request(method, "/2018-06-01/runtime" + path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    except OSError as err:
        return "error: %s" % err, {}, b""
    finally:
        conn.close()

def next_invocation():
    status, headers, body = call("GET", "/invocation/next")
    assert status == 200, status
    return headers, json.loads(body)

headers, event = next_invocation()
rid = headers["Lambda-Runtime-Aws-Request-Id"]
seen = {
    "deadline": headers["Lambda-Runtime-Deadline-Ms"],
    "arn": headers["Lambda-Runtime-Invoked-Function-Arn"],
    "trace": headers["Lambda-Runtime-Trace-Id"],
    "content_type": headers["Content-Type"],
    "second_next": call("GET", "/invocation/next")[0],
    "wrong_id": call("POST", "/invocation/not-the-id/response", b"{}")[0],
    "late_init_error": call("POST", "/init/error", b"{}", {"Lambda-Runtime-Function-Error-Type": "X"})[0],
    "oversize": call("POST", "/invocation/%s/response" % rid, b"[" + b"1," * 3_200_000 + b"1]")[0],
}
seen["after_oversize"] = call("POST", "/invocation/%s/response" % rid, b"{}")[0]
seen["wrong_id_body"] = json.loads(call("POST", "/invocation/nope/error", b"{}")[2])

headers, event = next_invocation()
seen["ok"] = call("POST", "/invocation/%s/response" % headers["Lambda-Runtime-Aws-Request-Id"], json.dumps(seen))[0]

headers, event = next_invocation()
error = {"errorMessage": "custom failure", "errorType": "CustomError", "stackTrace": []}
call("POST", "/invocation/%s/error" % headers["Lambda-Runtime-Aws-Request-Id"], json.dumps(error),
     {"Lambda-Runtime-Function-Error-Type": "Unhandled"})

while True:
    headers, event = next_invocation()
    call("POST", "/invocation/%s/response" % headers["Lambda-Runtime-Aws-Request-Id"], json.dumps({"echo": event["rawPath"]}))
"#;

#[test]
fn the_runtime_api_answers_each_error_case_as_aws_does() {
    let python = std::env::var("SMYTH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let config = pyproject(&format!(
        "[tool.smyth.handlers.probe]\nhandler_path = \"probe.unused\"\nurl_path = \"/probe\"\nruntime = \"command\"\ncommand = [\"{python}\", \"probe.py\"]\n"
    ));
    let server = Server::start(&[("pyproject.toml", &config), ("probe.py", PROBE)]);

    let first = server.get("/probe");
    assert_eq!(first.status, 502, "{first:?}");
    assert_eq!(first.json()["errorType"], "Function.ResponseSizeTooLarge");

    let second = server.get("/probe");
    assert_eq!(second.status, 200, "{second:?}");
    let seen = second.json();
    assert_eq!(seen["second_next"], 403, "{seen}");
    assert_eq!(seen["wrong_id"], 400, "{seen}");
    assert_eq!(seen["wrong_id_body"]["errorType"], "InvalidRequestID", "{seen}");
    assert_eq!(seen["late_init_error"], 403, "{seen}");
    assert_eq!(seen["oversize"], 413, "{seen}");
    assert_eq!(seen["after_oversize"], 400, "the failed invocation is over: {seen}");
    assert_eq!(seen["content_type"], "application/json");
    assert!(seen["arn"].as_str().unwrap().ends_with(":000000000000:function:probe"), "{seen}");
    assert!(seen["trace"].as_str().unwrap().starts_with("Root=1-"), "{seen}");
    let deadline: u64 = seen["deadline"].as_str().unwrap().parse().unwrap();
    assert!(deadline > 1_600_000_000_000, "{seen}");

    let third = server.get("/probe");
    assert_eq!(third.status, 502);
    assert_eq!(third.json()["errorType"], "CustomError");
    assert_eq!(third.json()["errorMessage"], "custom failure");

    assert_eq!(server.get("/probe").json()["echo"], "/probe");
    let worker = &server.workers("probe")[0];
    assert_eq!(worker["cold_starts"], 1, "one process served everything: {worker}");
    assert_eq!(worker["invocations"], 4);
}

#[test]
fn the_official_awslambdaric_serves_as_a_worker() {
    let Some(python) = common::tools::python() else { return };
    let app = "import os\nCOUNT = 0\n\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    return {\"count\": COUNT, \"path\": event[\"rawPath\"], \"fn\": context.function_name, \"pid\": os.getpid()}\n";
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n[tool.smyth.handlers.ric]\nhandler_path = \"app.handler\"\nurl_path = \"/ric\"\nruntime = \"awslambdaric\"\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    let first = server.get("/ric");
    assert_eq!(first.status, 200, "{first:?}\n{}", server.log());
    let second = server.get("/ric").json();
    assert_eq!(first.json()["count"], 1);
    assert_eq!(second["count"], 2, "warm reuse under awslambdaric");
    assert_eq!(second["path"], "/ric");
    assert_eq!(second["fn"], "ric");
    assert_eq!(first.json()["pid"], second["pid"]);
}

/// The bundled runtime parses events and encodes results through `_json`, so a handler that imports
/// neither `json` nor `re` runs in a process that never loaded them (15–20 ms of a cold start), and
/// the JSON is still `json`'s: unicode, NaN, nesting and whitespace as `json.loads`/`dumps` have them.
#[test]
fn the_bundled_runtime_loads_neither_json_nor_re_for_a_handler_that_does_not() {
    let Some(python) = common::tools::python() else { return };
    let app = "import sys\nLOADED = sorted(m for m in (\"json\", \"re\") if m in sys.modules)\n\n\
               def handler(event, context):\n    return {\"loaded\": LOADED, \"event\": event, \"nan\": float(\"nan\")}\n";
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n[tool.smyth.handlers.lean]\nhandler_path = \"app.handler\"\n\
         url_path = \"/lean\"\nevent_format = \"raw\"\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    let event = " {\"é😀\": [1, 2.5, -3e3, true, null, {\"deep\": \"\\u0000\"}]}\n";
    let path = "/2015-03-31/functions/lean/invocations";
    let reply = server.request("POST", path, &[], Some(event.as_bytes()));
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, server.log());
    assert!(reply.body.contains("\"nan\": NaN"), "json.dumps's NaN and separators: {}", reply.body);
    let body: serde_json::Value = serde_json::from_str(&reply.body.replace("NaN", "null")).unwrap();
    assert_eq!(body["loaded"], serde_json::json!([]), "{}", reply.body);
    let sent: serde_json::Value = serde_json::from_str(event).unwrap();
    assert_eq!(body["event"], sent);
}
