//! The worker environment and its precedence.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_are_smyths_table() {
    let c = parse(&format!("{MINIMAL}memory_size = 256\n"));
    let env = worker_env(&c, &c.handlers[0], &BTreeMap::new());
    let expected = vars(&[
        ("_HANDLER", "app.handlers.order_handler"),
        ("AWS_ACCESS_KEY_ID", "000000000000"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_DEFAULT_REGION", "eu-central-1"),
        ("AWS_REGION", "eu-central-1"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/orders"),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
        ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000"),
        ("PYTHONPATH", "/nonexistent/proj"),
    ]);
    assert_eq!(env, expected);
}

#[test]
fn python_version_shows_in_the_execution_env() {
    let mut c = parse(MINIMAL);
    c.python_version = Some("3.13".into());
    let env = worker_env(&c, &c.handlers[0], &BTreeMap::new());
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.13");
}

#[test]
fn precedence_defaults_os_env_file_global_handler() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "# comment\nFROM_FILE=file\nLAYER=file\nAWS_REGION=us-east-1\n")
        .unwrap();
    let text = r#"
[tool.smyth]
python_path = ["src"]
env = { LAYER = "global", GLOBAL_ONLY = "g" }

[tool.smyth.handlers.a]
handler_path = "app.a"
url_path = "/a"
env = { LAYER = "handler", AWS_LAMBDA_FUNCTION_VERSION = "34" }

[tool.smyth.handlers.b]
handler_path = "app.b"
url_path = "/b"
"#;
    let source = dir.path().join("pyproject.toml");
    let c = parse_str(text, &source, &BTreeMap::new()).unwrap();
    assert_eq!(c.env_file, Some(dir.path().join(".env")));
    assert_eq!(c.env_file_vars.len(), 3);

    let os = vars(&[
        ("HOME", "/home/dev"),
        ("LAYER", "os"),
        ("AWS_ACCESS_KEY_ID", "from-os"),
        ("AWS_REGION", "os-region"),
        ("PYTHONPATH", "/site/extra"),
        ("_HANDLER", "stale"),
    ]);
    let root = dir.path().display().to_string();
    let a = worker_env(&c, c.handler("a").unwrap(), &os);
    assert_eq!(a["HOME"], "/home/dev", "os.environ passes through");
    assert_eq!(a["AWS_ACCESS_KEY_ID"], "from-os", "os.environ over defaults");
    assert_eq!(a["AWS_REGION"], "us-east-1", "env file over os.environ");
    assert_eq!(a["FROM_FILE"], "file");
    assert_eq!(a["GLOBAL_ONLY"], "g");
    assert_eq!(a["LAYER"], "handler", "handler env over global env");
    assert_eq!(a["AWS_LAMBDA_FUNCTION_VERSION"], "34");
    assert_eq!(a["_HANDLER"], "app.a", "the bootstrap's handler is never overridden");
    assert_eq!(a["PYTHONPATH"], format!("{root}:{root}/src:/site/extra"));

    let b = worker_env(&c, c.handler("b").unwrap(), &os);
    assert_eq!(b["LAYER"], "global", "global env over the env file");
    assert_eq!(b["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(b["AWS_LAMBDA_FUNCTION_NAME"], "b");
}

#[test]
fn explicit_env_file_is_relative_to_the_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/dev.env"), "A=1\n").unwrap();
    std::fs::write(dir.path().join(".env"), "B=2\n").unwrap();
    let text = format!("[tool.smyth]\nenv_file = \"conf/dev.env\"\n{MINIMAL}");
    let c = parse_str(&text, &dir.path().join("pyproject.toml"), &BTreeMap::new()).unwrap();
    assert_eq!(c.env_file_vars, vars(&[("A", "1")]), "the explicit file replaces .env");
}

#[test]
fn broken_env_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "GOOD=1\nnot a line\n").unwrap();
    let err = parse_str(MINIMAL, &dir.path().join("pyproject.toml"), &BTreeMap::new()).unwrap_err();
    assert_eq!(err.problems()[0].key, "env_file", "{err}");
}

#[test]
fn python_from_virtual_env() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("bin/python"), "").unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "version = 3.12.4\n").unwrap();
    let env = vars(&[("VIRTUAL_ENV", venv.to_str().unwrap())]);
    let c = parse_str(MINIMAL, Path::new(SOURCE), &env).unwrap();
    assert_eq!(c.python, venv.join("bin/python").to_str().unwrap());
    assert_eq!(c.python_version.as_deref(), Some("3.12"));
    let w = worker_env(&c, &c.handlers[0], &BTreeMap::new());
    assert_eq!(w["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.12");
}
