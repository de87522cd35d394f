//! Errors that say how to fix them: a `src/` layout's missing `python_path`, the `sys.path` of any
//! other missing module, a did-you-mean for a handler name, a port in use, and `smyth check` importing
//! every handler. One init failure is one ERROR line and one INFO line in the log.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pyproject, Server};

const SRC_LAYOUT: &[(&str, &str)] = &[
    ("src/smyth_test_app/__init__.py", ""),
    ("src/smyth_test_app/handlers.py", "def handler(event, context):\n    return {'ok': True}\n"),
];

fn handler_table(handler_path: &str) -> String {
    pyproject(&format!("[tool.smyth.handlers.app]\nhandler_path = \"{handler_path}\"\nurl_path = \"/app\"\n"))
}

#[test]
fn a_src_layout_without_python_path_says_to_add_it_in_one_error_line() {
    let config = handler_table("smyth_test_app.handlers.handler");
    let mut files = vec![("pyproject.toml", config.as_str())];
    files.extend_from_slice(SRC_LAYOUT);
    let server = Server::start(&files);
    let reply = server.get("/app");
    assert_eq!(reply.status, 502, "{reply:?}");
    let error = reply.json();
    assert_eq!(error["errorType"], "Runtime.ImportModuleError");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("No module named 'smyth_test_app'"), "{message}");
    assert!(message.contains("add python_path = [\"src\"] to [tool.smyth]"), "{message}");
    assert!(message.contains("install the project into the interpreter smyth uses, /"), "{message}");

    server.wait_for("the backoff line", Duration::from_secs(20), || {
        server.log().contains("next start of app:0")
    });
    let log = server.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one init failure, one ERROR line:\n{log}");
    assert!(errors[0].contains("Runtime.ImportModuleError"), "{}", errors[0]);
    assert!(errors[0].contains("add python_path = [\"src\"] to [tool.smyth]"), "{}", errors[0]);
    let backoff: Vec<&str> = log.lines().filter(|l| l.contains("next start of app:0")).collect();
    assert_eq!(backoff.len(), 1, "{log}");
    assert!(backoff[0].contains("INFO"), "{}", backoff[0]);
    assert!(!log.contains("Traceback"), "the traceback is not repeated line by line:\n{log}");
    assert!(!log.contains(" WARN "), "no extra warnings:\n{log}");
}

#[test]
fn an_init_failure_line_names_the_users_file_and_line() {
    let config = handler_table("app.handler");
    let app = "import json\nimport not_installed_anywhere\n\ndef handler(event, context):\n    return 1\n";
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    let reply = server.get("/app");
    assert_eq!(reply.status, 502, "{reply:?}");
    let message = reply.json()["errorMessage"].as_str().unwrap().to_string();
    assert!(message.contains("No module named 'not_installed_anywhere'; sys.path was ["), "{message}");
    assert!(
        message.contains(&format!("'{}'", server.path().display())),
        "the project root is listed: {message}"
    );
    server.wait_for("the init failure", Duration::from_secs(20), || server.log().contains("init failed"));
    let log = server.log();
    let line = log.lines().find(|l| l.contains("init failed")).unwrap();
    assert!(line.contains("ERROR") && line.contains("(app.py:2)"), "{line}");
}

#[test]
fn a_misspelt_handler_gets_a_did_you_mean() {
    let config = handler_table("app.handle");
    let app = "def handler(event, context):\n    return 1\n\ndef helper():\n    return 2\n";
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    let reply = server.get("/app");
    assert_eq!(reply.status, 502, "{reply:?}");
    let error = reply.json();
    assert_eq!(error["errorType"], "Runtime.HandlerNotFound");
    assert_eq!(error["errorMessage"], "Handler 'handle' missing on module 'app'. Did you mean 'handler'?");
}

/// `smyth ARGS` in `cwd`, killed (and the test failed) past 60 s.
fn smyth(cwd: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smyth"))
        .args(args)
        .current_dir(cwd)
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smyth");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("smyth {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn a_port_in_use_is_an_error_line_naming_the_ways_out() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = project(&[
        ("pyproject.toml", &handler_table("app.handler")),
        ("app.py", "def handler(e, c):\n    return 1\n"),
    ]);
    let out = smyth(dir.path(), &["run", "--port", &port]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&format!("port {port} on 127.0.0.1 is already in use")), "{line}");
    assert!(line.contains("--port") && line.contains("port = 0"), "{line}");
}

#[test]
fn check_imports_every_handler_and_reports_a_missing_module_with_exit_2() {
    let config = pyproject(
        "[tool.smyth.handlers.good]\nhandler_path = \"good.handler\"\nurl_path = \"/good\"\n\n\
         [tool.smyth.handlers.app]\nhandler_path = \"smyth_test_app.handlers.handler\"\nurl_path = \"/app\"\n",
    );
    let mut files =
        vec![("pyproject.toml", config.as_str()), ("good.py", "def handler(e, c):\n    return 1\n")];
    files.extend_from_slice(SRC_LAYOUT);
    let dir = project(&files);
    let out = smyth(dir.path(), &["check"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("import   good: ok"), "{stdout}");
    let line = stderr.lines().find(|l| l.contains("handler `app`")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.starts_with("error: ") && line.contains("Runtime.ImportModuleError"), "{line}");
    assert!(line.contains("add python_path = [\"src\"] to [tool.smyth]"), "{line}");

    let out = smyth(dir.path(), &["check", "--no-import"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // With the hint followed, the same check passes.
    let fixed = config.replace("port = 0\n", "port = 0\npython_path = [\"src\"]\n");
    std::fs::write(dir.path().join("pyproject.toml"), fixed).unwrap();
    let out = smyth(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("import   app: ok"));
}

#[test]
fn check_bounds_a_hanging_import_by_the_handlers_timeout() {
    let config = pyproject(
        "[tool.smyth.handlers.slow]\nhandler_path = \"slow.handler\"\nurl_path = \"/slow\"\ntimeout = 1\n",
    );
    let dir = project(&[("pyproject.toml", &config), ("slow.py", "import time\ntime.sleep(600)\n")]);
    let out = smyth(dir.path(), &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("handler `slow`") && stderr.contains("Sandbox.Timedout"), "{stderr}");
}
