//! `smyth check` as a user runs it: on the example project, and on broken configs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
