//! `smyth export sam`: the template of `examples/` and of a config that sets every key passes
//! `cfn-lint` (from the test venv) with zero errors; routes convert as the table says; whatever cannot
//! be expressed is listed both atop the template and on stderr.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test venv's interpreter (with cfn-lint).
fn test_python() -> Option<PathBuf> {
    common::tools::python().map(PathBuf::from)
}

fn export(dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_smyth"))
        .args(["export", "sam"])
        .args(extra)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run smyth export sam");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs cfn-lint on `template`; asserts it found nothing (exit 0: no error, warning or note).
fn cfn_lint(python: &Path, template: &Path) {
    let cfn_lint = python.parent().unwrap().join("cfn-lint");
    assert!(cfn_lint.exists(), "cfn-lint is not in the test venv: make venv installs tests/requirements.txt");
    let out = Command::new(&cfn_lint).arg(template).output().expect("run cfn-lint");
    assert!(
        out.status.success(),
        "cfn-lint found problems in {}:\n{}\n{}",
        template.display(),
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(template).unwrap()
    );
}

#[test]
fn the_examples_template_passes_cfn_lint() {
    let Some(python) = test_python() else { return };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let out = tempfile::tempdir().unwrap();
    let template = out.path().join("template.yaml");
    let run = export(&examples, &["-o", template.to_str().unwrap()]);
    cfn_lint(&python, &template);
    let text = std::fs::read_to_string(&template).unwrap();
    assert_eq!(text.matches("Type: AWS::Serverless::Function").count(), 5, "{text}");
    assert!(
        text.contains("ProvisionedConcurrentExecutions: 1") && text.contains("AutoPublishAlias: live"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("strategy = \"round_robin\""));
}

/// A project whose config sets every key, global and handler, and every event format and runtime.
const EVERY_KEY: &str = r#"[tool.smyth]
host = "127.0.0.1"
port = 9000
log_level = "DEBUG"
smyth_path_prefix = "/_local"
env_file = "settings.env"
python = "PYTHON"
python_path = ["src", "tools"]
reload = false
account_concurrency = 50
allowed_hosts = ["dev.local"]
async_queue_size = 100
log_format = "json"

[tool.smyth.env]
STAGE = "dev"
AWS_REGION = "eu-west-1"

[tool.smyth.handlers.orders]
handler_path = "pkg.orders.handler"
url_path = "/orders/{id:int}/{rest:path}"
timeout = 2.5
init_timeout = 5
reserved_concurrency = 4
provisioned_concurrency = 2
queue_size = 10
maximum_retry_attempts = 1
retry_delay = 5
maximum_event_age = 3600
strategy = "round_robin"
memory_size = 512
idle_timeout = 30
debugpy_port = 5678
event_format = "apigw-v2"
runtime = "python"
log_level = "WARNING"
env = { TABLE = "orders", "bad-name" = "x" }
on_success = "handler:rest"
on_failure = "file:failed.jsonl"

[tool.smyth.handlers.webhook]
handler_path = "pkg.orders.handler"
url_path = "/webhook"
event_format = "apigw-http-v1"
log_format = "JSON"
application_log_level = "DEBUG"
system_log_level = "WARN"
snap_start = true

[tool.smyth.handlers.legacy]
handler_path = "pkg.orders.handler"
url_path = "/legacy/{name}.json"
concurrency = 3
event_format = "apigw-v1"
runtime = "awslambdaric"
strategy_generator_path = "smyth.runner.strategy.first_warm"
context_data_function_path = "smyth.context.generate_context_data"
fake_coldstart = true

[tool.smyth.handlers.rest]
handler_path = "pkg.orders.handler"
url_path = "/rest/{item:uuid}"
event_format = "apigw-v1"
strategy_function_path = "smyth.runner.strategy.round_robin"

[tool.smyth.handlers.balancer]
handler_path = "pkg.orders.handler"
url_path = "/lb/{path:path}"
event_format = "alb"
strategy = "always_cold"

[tool.smyth.handlers.direct]
handler_path = "pkg.orders.handler"
url_path = "/direct"
event_data_function_path = "smyth.event.generate_lambda_invocation_event_data"

[tool.smyth.handlers.tenants]
handler_path = "pkg.orders.handler"
url_path = "/tenants"
tenant_isolation = true
tenant_id_header = "x-org"

[tool.smyth.handlers.url]
handler_path = "pkg.orders.handler"
url_path = "/{path:path}"
event_format = "function-url"

[tool.smyth.handlers.custom]
handler_path = "bootstrap.handler"
url_path = "/custom"
runtime = "command"
command = ["./bootstrap"]
"#;

fn every_key_project(python: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("pyproject.toml", EVERY_KEY.replace("PYTHON", python.to_str().unwrap())),
        ("settings.env", "SECRET=abc\n".into()),
        ("src/pkg/__init__.py", String::new()),
        ("src/pkg/orders.py", "def handler(event, context):\n    return event\n".into()),
        ("tools/helpers.py", String::new()),
    ];
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn a_template_of_every_key_passes_cfn_lint() {
    let Some(python) = test_python() else { return };
    let project = every_key_project(&python);
    for extra in [&[][..], &["--include-env-file"][..]] {
        export(project.path(), extra);
        let template = project.path().join("template.yaml");
        cfn_lint(&python, &template);
        let text = std::fs::read_to_string(&template).unwrap();
        for expected in [
            "CodeUri: src",
            "Runtime: python3.",
            "Runtime: provided.al2023",
            "Timeout: 3",
            "MemorySize: 512",
            "ReservedConcurrentExecutions: 4",
            "AutoPublishAlias: live",
            "ProvisionedConcurrentExecutions: 2",
            "MaximumRetryAttempts: 1",
            "MaximumEventAgeInSeconds: 3600",
            "TABLE: orders",
            "STAGE: dev",
            "Type: HttpApi",
            "Type: Api",
            "Type: AWS::ElasticLoadBalancingV2::ListenerRule",
            "AlbListenerArn:",
            "PayloadFormatVersion: '1.0'",
            "LogFormat: JSON",
            "ApplicationLogLevel: DEBUG",
            "SystemLogLevel: WARN",
            "ApplyOn: PublishedVersions",
            "OnSuccess:",
            "Type: Lambda",
            "- Rest",
            "TenantIsolationMode: PER_TENANT",
            "AuthType: NONE",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
        assert_eq!(text.contains("SECRET: abc"), !extra.is_empty(), "env_file only when asked:\n{text}");
        let body: String = text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
        assert!(!body.contains("AWS_REGION") && !body.contains("bad-name"), "{text}");
    }
}

#[test]
fn routes_convert_as_the_table_says() {
    let Some(python) = test_python() else { return };
    let table = [
        ("/slow", "/slow"),
        ("/orders/{id}", "/orders/{id}"),
        ("/orders/{id:int}", "/orders/{id}"),
        ("/files/{p:path}", "/files/{p+}"),
        ("/u/{user:uuid}/x/{v:float}", "/u/{user}/x/{v}"),
        ("/a/{b:str}/{rest:path}", "/a/{b}/{rest+}"),
    ];
    let mut config = format!("[tool.smyth]\npython = {:?}\n", python.to_str().unwrap());
    for (i, (pattern, _)) in table.iter().enumerate() {
        config.push_str(&format!(
            "[tool.smyth.handlers.h{i}]\nhandler_path = \"app.handler\"\nurl_path = \"{pattern}\"\n"
        ));
    }
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("pyproject.toml"), config).unwrap();
    let out = export(project.path(), &["-o", "-"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let paths: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("Path: ")).collect();
    let expected: Vec<&str> = table.iter().map(|(_, path)| *path).collect();
    assert_eq!(paths, expected, "{text}");
}

#[test]
fn what_cannot_be_expressed_is_listed_atop_the_template_and_on_stderr() {
    let Some(python) = test_python() else { return };
    let project = every_key_project(&python);
    let out = export(project.path(), &["-o", "-"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let template = String::from_utf8(out.stdout).unwrap();
    let reported: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("  - ")).collect();
    for expected in [
        "handler `orders`: strategy = \"round_robin\"",
        "handler `orders`: idle_timeout = 30",
        "handler `balancer`: strategy = \"always_cold\"",
        "handler `orders`: queue_size = 10",
        "handler `orders`: init_timeout = 5",
        "handler `orders`: retry_delay = 5",
        "handler `orders`: timeout = 2.5 is rounded up to 3 s",
        "handler `legacy`: concurrency = 3",
        "handler `legacy`: no Api event",
        "handler `direct`: event_format = \"raw\"",
        "handler `custom`: runtime = \"command\"",
        "handler `tenants`: tenant_id_header = \"x-org\"",
        "env `AWS_REGION` is reserved",
        "handler `orders`: env `bad-name`",
        "the 1 env_file variables are left out",
        "account_concurrency = 50",
        "log_format = \"json\"",
        "handler `orders`: OnFailure destination `file:failed.jsonl`",
    ] {
        assert!(
            reported.iter().any(|line| line.starts_with(expected)),
            "`{expected}` not reported:\n{stderr}"
        );
    }
    // The same list, word for word, is the comment atop the template.
    let comment: Vec<&str> = template.lines().filter_map(|l| l.strip_prefix("#   - ")).collect();
    assert_eq!(comment, reported, "{template}");
    assert!(template.lines().next().unwrap().starts_with("# Exported by `smyth export sam`"), "{template}");
}
