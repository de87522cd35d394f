//! Finding the config from a working directory.

use std::path::PathBuf;

use super::*;

const PYPROJECT: &str =
    "[project]\nname = \"app\"\n\n[tool.smyth.handlers.a]\nhandler_path = \"app.a\"\nurl_path = \"/a\"\n";

fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    (dir, root)
}

#[test]
fn walks_up_from_a_subdirectory() {
    let (_dir, root) = tree(&[("pyproject.toml", PYPROJECT), ("app/handlers/x.py", "")]);
    let found = discover(None, &root.join("app/handlers")).unwrap();
    assert_eq!(found, root.join("pyproject.toml"));
    let c = load_with_env(None, &root.join("app/handlers"), &BTreeMap::new()).unwrap();
    assert_eq!(c.root, root);
    assert_eq!(c.handlers[0].name, "a");
}

#[test]
fn skips_a_pyproject_without_tool_smyth() {
    let (_dir, root) = tree(&[
        ("pyproject.toml", PYPROJECT),
        ("libs/inner/pyproject.toml", "[project]\nname = \"inner\"\n[tool.black]\n"),
    ]);
    let found = discover(None, &root.join("libs/inner")).unwrap();
    assert_eq!(found, root.join("pyproject.toml"));
}

#[test]
fn finds_smyth_toml_and_prefers_pyproject_in_the_same_folder() {
    let smyth = "[handlers.s]\nhandler_path = \"app.s\"\nurl_path = \"/s\"\n";
    let (_dir, root) = tree(&[("svc/smyth.toml", smyth), ("svc/deep/x.py", "")]);
    assert_eq!(discover(None, &root.join("svc/deep")).unwrap(), root.join("svc/smyth.toml"));
    let c = load_with_env(None, &root.join("svc/deep"), &BTreeMap::new()).unwrap();
    assert_eq!(c.handlers[0].name, "s");

    let (_dir, root) = tree(&[("pyproject.toml", PYPROJECT), ("smyth.toml", smyth)]);
    assert_eq!(discover(None, &root).unwrap(), root.join("pyproject.toml"));
}

#[test]
fn a_broken_pyproject_that_mentions_smyth_is_reported_not_skipped() {
    let (_dir, root) = tree(&[("pyproject.toml", "[tool.smyth\nport = 1\n")]);
    let err = load_with_env(None, &root, &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("pyproject.toml:1: invalid TOML"), "{err}");
}

#[test]
fn explicit_file_wins_and_is_relative_to_cwd() {
    let (_dir, root) = tree(&[
        ("pyproject.toml", PYPROJECT),
        ("conf/local.toml", "port = 9100\n[handlers.b]\nhandler_path = \"app.b\"\nurl_path = \"/b\"\n"),
    ]);
    let c = load_with_env(Some(Path::new("conf/local.toml")), &root, &BTreeMap::new()).unwrap();
    assert_eq!(c.port, 9100);
    assert_eq!(c.root, root.join("conf"));
    let err = discover(Some(Path::new("nope.toml")), &root).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn nothing_found_names_the_start() {
    let (_dir, root) = tree(&[("pyproject.toml", "[project]\nname = \"x\"\n"), ("a/b/c.txt", "")]);
    let err = discover(None, &root.join("a/b")).unwrap_err();
    // Parents of the tempdir may hold a config on a dev machine; the start is what is named.
    if let ConfigError::NotFound { start } = &err {
        assert_eq!(start, &root.join("a/b"));
        assert!(err.to_string().contains(&root.join("a/b").display().to_string()));
    }
}

#[test]
fn the_example_project_is_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let c = load_with_env(None, &examples, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = c.handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["order_handler", "product_handler", "products_api", "slow", "broken"]);
    assert_eq!(c.handler("product_handler").unwrap().strategy, Strategy::RoundRobin);
}
