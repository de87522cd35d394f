//! Tenant isolation (`tenant_isolation = true`): the tenant id reaches `context.tenant_id` from boto3,
//! the AWS CLI, `smyth invoke` and a route's header, with both runtimes; two tenants never share a
//! process; the pool stays at `concurrency` workers by reclaiming the least recently used idle one;
//! the 400s AWS answers; the status shows each worker's tenant; the config errors.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use common::{alive, Server};
use serde_json::{json, Value};

const APP: &str = r#"
import json, os, time

def who(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("record"):
        with open(event["record"], "w") as out:
            json.dump({"tenant": context.tenant_id}, out)
    return {"tenant": context.tenant_id, "pid": os.getpid(), "path": event.get("rawPath")}
"#;

fn config(python: Option<&str>, handlers: &str) -> String {
    let python = python.map(|p| format!("python = \"{p}\"\n")).unwrap_or_default();
    format!("[tool.smyth]\nport = 0\n{python}\n{handlers}")
}

fn handler(name: &str, url_path: &str, extra: &str) -> String {
    format!(
        "[tool.smyth.handlers.{name}]\nhandler_path = \"app.who\"\nurl_path = \"{url_path}\"\n{extra}\n\n"
    )
}

fn start(python: Option<&str>, handlers: &str) -> Server {
    Server::start(&[("pyproject.toml", &config(python, handlers)), ("app.py", APP)])
}

/// A raw Invoke API call with `headers`.
fn invoke(server: &Server, name: &str, headers: &[(&str, &str)], body: &Value) -> common::Reply {
    let path = format!("/2015-03-31/functions/{name}/invocations");
    server.request("POST", &path, headers, Some(body.to_string().as_bytes()))
}

/// An invocation of `name` for `tenant`: the pid that served it (the handler reports its tenant).
fn pid_for(server: &Server, name: &str, tenant: &str) -> u64 {
    let reply = invoke(server, name, &[("X-Amz-Tenant-Id", tenant)], &json!({}));
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    let out = reply.json();
    assert_eq!(out["tenant"], tenant, "{out}");
    out["pid"].as_u64().unwrap()
}

/// boto3 with `TenantId`: an older botocore than the AWS CLI's lacks the parameter, so the session
/// loads the Lambda model the venv's AWS CLI carries (`AWS_DATA_PATH`), as a newer boto3 has it.
const TENANT_CLIENT: &str = r#"
import os, awscli, boto3.session
if "TenantId" not in client.meta.service_model.operation_model("Invoke").input_shape.members:
    os.environ["AWS_DATA_PATH"] = os.path.join(os.path.dirname(awscli.__file__), "botocore", "data")
    client = boto3.session.Session().client(
        "lambda", endpoint_url=sys.argv[1], region_name="eu-central-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"max_attempts": 0}, read_timeout=60))
def call(**kwargs):
    try:
        r = client.invoke(**kwargs)
        return {"status": r["StatusCode"], "payload": json.loads(r["Payload"].read() or b"null")}
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "http": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": e.response["Error"].get("Message", "")}
"#;

#[test]
fn boto3_and_the_cli_pass_the_tenant_id_to_context_tenant_id_with_both_runtimes() {
    let Some(python) = common::tools::python() else { return };
    let handlers = handler("iso", "/iso", "tenant_isolation = true")
        + &handler("ric", "/ric", "tenant_isolation = true\nruntime = \"awslambdaric\"");
    let server = start(Some(&python), &handlers);
    let script = format!(
        "{TENANT_CLIENT}\nout = {{\n  'iso': call(FunctionName='iso', TenantId='blue', Payload=b'{{}}'),\n  \
         'ric': call(FunctionName='ric', TenantId='org/7 a=b+c@d:e.f_g-h', Payload=b'{{}}'),\n  \
         'missing': call(FunctionName='iso', Payload=b'{{}}'),\n  \
         'event': call(FunctionName='iso', TenantId='green', InvocationType='Event', \
         Payload=json.dumps({{'record': 'event.json'}}).encode()),\n}}\nprint(json.dumps(out))"
    );
    let out = common::tools::boto3(&python, &server, &script, &[]);
    assert_eq!(out["iso"]["payload"]["tenant"], "blue", "{out}\n{}", server.log());
    assert_eq!(out["ric"]["payload"]["tenant"], "org/7 a=b+c@d:e.f_g-h", "awslambdaric: {out}");
    assert_eq!(out["missing"]["code"], "InvalidParameterValueException", "{out}");
    assert_eq!(out["missing"]["http"], 400, "{out}");
    assert_eq!(out["event"]["status"], 202, "{out}");
    // The asynchronous invocation carries its tenant through the queue.
    let record = server.path().join("event.json");
    server.wait_for("the Event invocation", Duration::from_secs(20), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains("green"))
    });
    // The AWS CLI's `--tenant-id`.
    let answer = server.path().join("cli.json");
    let cli = common::tools::aws_lambda(
        &python,
        &server,
        &["invoke", "--function-name", "iso", "--tenant-id", "cli-tenant", answer.to_str().unwrap()],
    );
    assert_eq!(cli.unwrap()["StatusCode"], 200);
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&answer).unwrap()).unwrap();
    assert_eq!(got["tenant"], "cli-tenant");
}

#[test]
fn two_tenants_never_share_a_process() {
    let server = start(None, &handler("iso", "/iso", "tenant_isolation = true\nconcurrency = 2"));
    let mut pids: HashMap<&str, HashSet<u64>> = HashMap::new();
    for tenant in ["a", "b", "a", "b", "b", "a"] {
        pids.entry(tenant).or_default().insert(pid_for(&server, "iso", tenant));
    }
    assert!(pids["a"].is_disjoint(&pids["b"]), "{pids:?}");
    // With a worker each, each tenant keeps its warm worker.
    assert_eq!((pids["a"].len(), pids["b"].len()), (1, 1), "{pids:?}");
}

#[test]
fn three_tenants_on_two_workers_reclaim_the_least_recently_used() {
    let server = start(None, &handler("iso", "/iso", "tenant_isolation = true\nconcurrency = 2"));
    let live = |seen: &[u64]| seen.iter().filter(|pid| alive(**pid as u32)).count();
    let a = pid_for(&server, "iso", "a");
    let b = pid_for(&server, "iso", "b");
    // `c` takes a's worker (used longest ago) in a fresh process; b's stays.
    let c = pid_for(&server, "iso", "c");
    assert!(![a, b].contains(&c));
    server.wait_for("a's process to end", Duration::from_secs(10), || !alive(a as u32));
    assert!(alive(b as u32));
    assert_eq!(pid_for(&server, "iso", "b"), b, "b's worker was not reclaimed");
    // Now c's is the least recently used: `a` comes back in a new process in c's slot.
    let a2 = pid_for(&server, "iso", "a");
    assert!(![a, b, c].contains(&a2));
    server.wait_for("c's process to end", Duration::from_secs(10), || !alive(c as u32));
    let seen = [a, b, c, a2];
    assert!(live(&seen) <= 2, "more than concurrency processes: {seen:?}");
    assert!(server.worker_pids().len() <= 2);
    let tenants: HashSet<String> =
        server.workers("iso").iter().filter_map(|w| w["tenant"].as_str().map(String::from)).collect();
    assert_eq!(tenants, HashSet::from(["a".to_string(), "b".to_string()]), "{:?}", server.workers("iso"));
}

#[test]
fn a_tenant_waits_while_every_worker_is_busy_with_others() {
    let server =
        start(None, &handler("iso", "/iso", "tenant_isolation = true\nconcurrency = 2\ntimeout = 10"));
    let (a, b) = (pid_for(&server, "iso", "a"), pid_for(&server, "iso", "b"));
    let url = server.url("/2015-03-31/functions/iso/invocations");
    let busy: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|tenant| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                agent.post(&url).header("X-Amz-Tenant-Id", tenant).send(r#"{"sleep": 1}"#).unwrap().status()
            })
        })
        .collect();
    server.wait_for("both workers busy", Duration::from_secs(10), || {
        server.workers("iso").iter().all(|w| w["state"] == "busy")
    });
    // `c` is queued until one of them is done, then reclaims that worker.
    let c = pid_for(&server, "iso", "c");
    for handle in busy {
        assert_eq!(handle.join().unwrap(), 200);
    }
    assert!(![a, b].contains(&c));
    assert!(server.worker_pids().len() <= 2);
}

#[test]
fn tenant_ids_are_checked_as_aws_checks_them() {
    let handlers = handler("iso", "/iso", "tenant_isolation = true") + &handler("open", "/open", "");
    let server = start(None, &handlers);
    let long = "t".repeat(257);
    let longest = "t".repeat(256);
    // (function, headers, words of the message)
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let refused: &[Row] = &[
        ("iso", &[], "needs a tenant id"),
        ("open", &[("X-Amz-Tenant-Id", "blue")], "does not have tenant isolation"),
        ("iso", &[("X-Amz-Tenant-Id", "semi;colon")], "1 to 256 characters"),
        ("iso", &[("X-Amz-Tenant-Id", &long)], "1 to 256 characters"),
    ];
    for (name, headers, needle) in refused {
        let reply = invoke(&server, name, headers, &json!({}));
        assert_eq!(reply.status, 400, "{name} {headers:?}: {reply:?}");
        assert_eq!(reply.header("x-amzn-ErrorType"), Some("InvalidParameterValueException"), "{reply:?}");
        assert!(reply.json()["message"].as_str().unwrap().contains(needle), "{reply:?}");
    }
    // The longest id AWS accepts reaches the handler (pid_for checks its tenant).
    pid_for(&server, "iso", &longest);
    assert_eq!(invoke(&server, "open", &[], &json!({})).status, 200);
}

#[test]
fn url_path_routes_take_the_tenant_from_the_configured_header() {
    let handlers = handler("default", "/default", "tenant_isolation = true")
        + &handler("custom", "/custom", "tenant_isolation = true\ntenant_id_header = \"X-Org\"")
        + &handler("open", "/open", "");
    let server = start(None, &handlers);
    let blue = server.request("GET", "/default", &[("x-tenant-id", "blue")], None);
    assert_eq!((blue.status, blue.json()["tenant"].clone()), (200, json!("blue")), "{blue:?}");
    let org = server.request("GET", "/custom", &[("X-Org", "org-9")], None);
    assert_eq!(org.json()["tenant"], "org-9", "{org:?}");
    for (path, headers) in [("/default", &[][..]), ("/custom", &[("x-tenant-id", "blue")][..])] {
        let reply = server.request("GET", path, headers, None);
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert!(reply.body.contains("InvalidParameterValueException"), "{reply:?}");
    }
    let bad = server.request("GET", "/default", &[("x-tenant-id", "a;b")], None);
    assert_eq!(bad.status, 400, "{bad:?}");
    // Without isolation the header is only a header.
    let open = server.request("GET", "/open", &[("x-tenant-id", "blue")], None);
    assert_eq!((open.status, open.json()["tenant"].clone()), (200, Value::Null), "{open:?}");
}

#[test]
fn the_status_and_smyth_status_show_each_workers_tenant() {
    let server = start(None, &handler("iso", "/iso", "tenant_isolation = true\nconcurrency = 2"));
    assert_eq!(server.workers("iso")[0]["tenant"], Value::Null);
    pid_for(&server, "iso", "blue");
    let tenants: Vec<Value> = server.workers("iso").iter().map(|w| w["tenant"].clone()).collect();
    assert_eq!(tenants, vec![json!("blue"), Value::Null], "{:?}", server.workers("iso"));
    let port = server.url("").rsplit(':').next().unwrap().to_string();
    let out = common::tools::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_smyth"))
            .args(["status", "--port", &port])
            .current_dir(server.path()),
        Duration::from_secs(20),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}{}", String::from_utf8_lossy(&out.stderr));
    let header = table.lines().next().unwrap();
    assert!(header.contains("TENANT"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("iso") && l.contains("blue")), "{table}");
}

#[test]
fn smyth_invoke_takes_a_tenant_id() {
    let project = tempfile::tempdir().unwrap();
    let text = config(None, &handler("iso", "/iso", "tenant_isolation = true"));
    std::fs::write(project.path().join("pyproject.toml"), text).unwrap();
    std::fs::write(project.path().join("app.py"), APP).unwrap();
    let run = |args: &[&str]| {
        common::tools::run_bounded(
            Command::new(env!("CARGO_BIN_EXE_smyth")).arg("invoke").args(args).current_dir(project.path()),
            Duration::from_secs(30),
        )
    };
    let ok = run(&["iso", "--tenant-id", "blue"]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["tenant"], "blue", "{stdout}");
    let missing = run(&["iso"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("needs a tenant id"));
}

#[test]
fn aws_refusals_are_config_errors() {
    let cases = [
        ("provisioned_concurrency = 1\ntenant_isolation = true", "provisioned concurrency"),
        ("event_format = \"function-url\"\ntenant_isolation = true", "function URLs"),
    ];
    for (keys, needle) in cases {
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("pyproject.toml"), config(None, &handler("iso", "/iso", keys)))
            .unwrap();
        let out = common::tools::run_bounded(
            Command::new(env!("CARGO_BIN_EXE_smyth")).arg("check").current_dir(project.path()),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{keys}: {stderr}");
        assert!(stderr.contains("tenant_isolation") && stderr.contains(needle), "{keys}: {stderr}");
    }
}
