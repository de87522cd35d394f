//! The `smyth-rs` wheel round trip: maturin builds it from `python/pyproject.toml`, pip installs it
//! into a fresh venv, and the `smyth` it puts in that venv's `bin/` runs `--version` and `check` on
//! `examples/`. The wheel is built in the cargo profile and target dir this test was built with
//! (`make test`: the `local` profile `make run` uses), so cargo finds the binary already compiled.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The test venv's interpreter (with maturin).
fn test_python() -> Option<PathBuf> {
    common::tools::python().map(PathBuf::from)
}

fn run(command: &mut Command, limit: Duration) -> Output {
    common::tools::run_bounded(command, limit)
}

fn ok(output: Output, what: &str) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The target dir and cargo profile the tested binary was built in (`target/local/smyth` under `make test`).
fn build_of_this_test() -> (PathBuf, String) {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_smyth")).parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    (profile_dir.parent().unwrap().to_path_buf(), profile)
}

#[test]
fn the_wheel_installs_a_working_smyth_into_a_fresh_venv() {
    let Some(python) = test_python() else { return };
    let maturin = python.parent().unwrap().join("maturin");
    assert!(maturin.exists(), "maturin is not in the test venv: make venv installs tests/requirements.txt");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (target_dir, profile) = build_of_this_test();
    let work = tempfile::tempdir().unwrap();
    let wheels = work.path().join("wheels");

    ok(
        run(
            Command::new(&maturin)
                .args(["build", "--profile", &profile, "--out"])
                .arg(&wheels)
                // maturin reads python/pyproject.toml, whose manifest-path is the workspace's.
                .current_dir(repo.join("python"))
                .env("CARGO_TARGET_DIR", &target_dir),
            Duration::from_secs(20 * 60),
        ),
        "maturin build",
    );
    let wheel: Vec<PathBuf> = std::fs::read_dir(&wheels).unwrap().flatten().map(|e| e.path()).collect();
    let [wheel] = wheel.as_slice() else { panic!("one wheel expected: {wheel:?}") };
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("smyth_rs-{}-", env!("CARGO_PKG_VERSION"))), "{name}");

    let venv = work.path().join("venv");
    ok(
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv), Duration::from_secs(120)),
        "python -m venv",
    );
    ok(
        run(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--no-index", "--disable-pip-version-check", "--quiet"])
                .arg(wheel),
            Duration::from_secs(120),
        ),
        "pip install the wheel",
    );
    let smyth = venv.join("bin/smyth");
    assert!(smyth.is_file(), "the wheel put no smyth in {}", venv.join("bin").display());

    let version = ok(run(Command::new(&smyth).arg("--version"), Duration::from_secs(30)), "smyth --version");
    assert_eq!(version.trim(), format!("smyth {}", env!("CARGO_PKG_VERSION")));
    let check = ok(
        run(
            Command::new(&smyth).arg("check").current_dir(repo.join("examples")).env("VIRTUAL_ENV", &venv),
            Duration::from_secs(30),
        ),
        "smyth check",
    );
    for handler in ["order_handler", "product_handler", "products_api", "slow", "broken"] {
        assert!(check.contains(handler), "{handler} missing from:\n{check}");
    }
}
