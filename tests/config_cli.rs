//! `smyth check` as a user runs it: on the example project, and on broken configs; `smyth run` on
//! configs whose values once panicked or hung it, and at the edge of every range.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{pyproject, Server};

fn smyth_check(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smyth"))
        .arg("check")
        .args(args)
        .current_dir(cwd)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run smyth")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_example_project_and_prints_each_handler() {
    let out = smyth_check(&examples(), &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    for (name, route) in [
        ("order_handler", "/orders/{path:path}"),
        ("product_handler", "/products/{path:path}"),
        ("products_api", "/api/products/{id:int}"),
        ("slow", "/slow"),
        ("broken", "/broken"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(name) && l.contains(route))
            .unwrap_or_else(|| panic!("{name} {route} in\n{stdout}"));
        assert!(line.contains("concurrency="), "{line}");
        assert!(line.contains("strategy="), "{line}");
    }
    assert!(stdout.contains("strategy=round_robin"), "{stdout}");
}

#[test]
fn check_from_a_subdirectory_finds_the_project() {
    let out = smyth_check(&examples().join("app"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("order_handler"));
}

#[test]
fn check_reports_every_problem_with_its_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[tool.smyth]\nport = 8080\n\n[tool.smyth.handlers.orders]\nhandler_path = \"app.orders\"\n\
         url_path = \"/orders\"\nconcurency = 2\ntimeout = -1\n",
    )
    .unwrap();
    let out = smyth_check(dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("pyproject.toml:7: key `handlers.orders.concurency`"), "{stderr}");
    assert!(stderr.contains("did you mean `concurrency`?"), "{stderr}");
    assert!(stderr.contains("pyproject.toml:8: key `handlers.orders.timeout`"), "{stderr}");
}

#[test]
fn check_with_an_explicit_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("local.toml"),
        "[handlers.a]\nhandler_path = \"app.a\"\nurl_path = \"/a/{id:integer}\"\n",
    )
    .unwrap();
    let out = smyth_check(dir.path(), &["--config", "local.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("local.toml:3: key `handlers.a.url_path`"), "{stderr}");
    assert!(stderr.contains("unknown converter `integer`"), "{stderr}");
}

#[test]
fn check_without_a_config_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = smyth_check(dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("no smyth config found"), "{stderr}");
}

/// `smyth ARGS` in `cwd`, killed (and the test failed) when it runs past `limit`.
fn smyth_bounded(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smyth"));
    command.args(args).current_dir(cwd).env_remove("VIRTUAL_ENV");
    common::tools::run_bounded(&mut command, limit)
}

fn project(globals: &str, handler_keys: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[tool.smyth]\nport = 0\n{globals}\n[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n{handler_keys}\n"
    );
    std::fs::write(dir.path().join("pyproject.toml"), text).unwrap();
    std::fs::write(dir.path().join("app.py"), "def h(event, context):\n    return {\"ok\": True}\n").unwrap();
    dir
}

/// Exit code 2 within 5 s, the key named on its line, and no panic.
fn assert_refused(dir: &Path, command: &str, wanted: &str) {
    let out = smyth_bounded(dir, &[command], Duration::from_secs(5));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "smyth {command}: stderr:\n{stderr}");
    assert!(stderr.contains(wanted), "smyth {command}: {wanted} in\n{stderr}");
    assert!(!stderr.contains("panicked"), "smyth {command}:\n{stderr}");
}

#[test]
fn an_overflowing_timeout_is_refused_by_check_and_run() {
    let dir = project("", "timeout = 1.8e19");
    for command in ["check", "run"] {
        assert_refused(
            dir.path(),
            command,
            "pyproject.toml:7: key `handlers.h.timeout`: must be a number of seconds above 0 and at most 900",
        );
    }
}

#[test]
fn env_file_dev_zero_is_refused_at_once() {
    let dir = project("env_file = \"/dev/zero\"", "");
    for command in ["check", "run"] {
        assert_refused(
            dir.path(),
            command,
            "pyproject.toml:3: key `env_file`: /dev/zero: not a regular file (a device)",
        );
    }
}

#[test]
fn a_prefix_actix_would_read_as_a_pattern_is_refused() {
    let dir = project("smyth_path_prefix = \"/_s{x\"", "");
    assert_refused(dir.path(), "run", "key `smyth_path_prefix`");
}

#[test]
fn run_starts_and_serves_with_every_value_at_its_bound() {
    let handlers = "[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n\
        timeout = 900\ninit_timeout = 900\nidle_timeout = 86400\nretry_delay = 21600\n\
        maximum_event_age = 21600\nqueue_size = 1000000\nconcurrency = 1000\nmaximum_retry_attempts = 2\n\
        [tool.smyth.handlers.r]\nhandler_path = \"app.h\"\nurl_path = \"/r\"\nreserved_concurrency = 1000\n";
    let config = pyproject(handlers)
        .replace("port = 0\n", "port = 0\naccount_concurrency = 100000\nasync_queue_size = 1000000\n");
    let app = "def h(event, context):\n    return {\"remaining\": context.get_remaining_time_in_millis()}\n";
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    // The 900 s deadline reached the handler intact; `r` keeps the default 3 s.
    for (path, deadline) in [("/h", 900_000), ("/r", 3_000)] {
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}: {}\n{}", reply.body, server.log());
        let remaining = reply.json()["remaining"].as_u64().unwrap();
        assert!((deadline - 10_000.min(deadline / 2)..=deadline).contains(&remaining), "{path}: {remaining}");
    }
    let event = server.request(
        "POST",
        "/2015-03-31/functions/h/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        Some(b"{}"),
    );
    assert_eq!(event.status, 202, "{}", event.body);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
