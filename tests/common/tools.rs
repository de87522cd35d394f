//! The outside tools the tests drive smyth with — the test venv's Python (boto3, the AWS CLI v1,
//! awslambdaric) and Chromium — found once, and required where they must be: under CI or `make test`
//! (`SMYTH_REQUIRE_TOOLS`) a missing tool fails the test instead of skipping it.

use std::process::Command;

use serde_json::Value;

use super::Server;

/// The tool named by `var`, or None (the test skips) outside CI and `make test`.
pub fn tool(var: &str, what: &str) -> Option<String> {
    if let Ok(path) = std::env::var(var) {
        return Some(path);
    }
    let required = ["CI", "SMYTH_REQUIRE_TOOLS"].iter().any(|v| std::env::var_os(v).is_some());
    assert!(!required, "{var} ({what}) must be set under CI and `make test`");
    eprintln!("skipped: {var} ({what}) is not set");
    None
}

/// The test venv's interpreter (`make test` builds it: boto3, awscli, awslambdaric, …).
pub fn python() -> Option<String> {
    tool("SMYTH_TEST_PYTHON", "the venv `make test` builds")
}

/// Chromium, for the dashboard's tests.
pub fn browser() -> Option<String> {
    tool("SMYTH_TEST_BROWSER", "the Chromium `make test` installs")
}

/// A boto3 Lambda client aimed at the server (`sys.argv[1]`), with no retries.
const CLIENT: &str = r#"
import base64, json, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="eu-central-1",
                      aws_access_key_id="test", aws_secret_access_key="test",
                      config=Config(retries={"max_attempts": 0}, read_timeout=60))
"#;

/// Runs `script` with `client` ready and `args` in `sys.argv[2:]`; the JSON it prints.
pub fn boto3(python: &str, server: &Server, script: &str, args: &[&str]) -> Value {
    let output = Command::new(python)
        .args(["-c", &format!("{CLIENT}{script}"), &server.url("")])
        .args(args)
        .output()
        .expect("run python");
    assert!(output.status.success(), "boto3 script failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON from the boto3 script")
}

/// Runs `aws lambda ARGS` (the AWS CLI v1 from the venv) against the server: its JSON output (Null
/// when it prints none), or the error text when it fails.
pub fn aws_lambda(python: &str, server: &Server, args: &[&str]) -> Result<Value, String> {
    let output = Command::new(python)
        .args(["-m", "awscli", "lambda"])
        .args(args)
        .args(["--endpoint-url", &server.url(""), "--region", "eu-central-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "")
        .output()
        .expect("run the AWS CLI");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{}{stdout}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).expect("CLI JSON") })
}

/// Runs `command` to its end, killed (and the test failed) past `limit`; its output (the first MiB
/// of each stream) goes through files, so a flood cannot block it on a full pipe.
pub fn run_bounded(command: &mut Command, limit: std::time::Duration) -> std::process::Output {
    use std::io::{Read, Seek};
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let read = |mut f: std::fs::File| {
        let mut bytes = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.take(1 << 20).read_to_end(&mut bytes).unwrap();
        bytes
    };
    std::process::Output { status, stdout: read(out), stderr: read(err) }
}

/// The page at `url` as headless Chromium renders it once its scripts ran (its DOM), or None where
/// the browser may be missing (see [`browser`]). Bounded: a hung browser is killed.
pub fn rendered_dom(url: &str) -> Option<String> {
    let browser = browser()?;
    let profile = tempfile::tempdir().unwrap();
    let output = run_bounded(
        Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--virtual-time-budget=3000", "--dump-dom"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url),
        std::time::Duration::from_secs(60),
    );
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}
