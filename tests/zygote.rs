//! Issue 13, the zygote: an ordinary cold start of the bundled runtime is a fork of one pre-started
//! interpreter that has loaded only the runtime (the first cold start spawns and starts it). Each
//! worker is still its own process with its own globals and only the modules a spawned one has, its
//! handler's environment is in place before its import, and its init (the import) is its own and
//! real. A hash seed or another runtime spawns plainly (tests/transport.rs has those fallbacks too);
//! a zygote that dies is replaced; a package installed while it waits is found.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use serde_json::Value;

const APP: &str = r#"
import os, sys, time

# The import is the init: it must run in the worker, with the worker's environment.
IMPORTED_BY = os.getpid()
GREETING_AT_IMPORT = os.environ.get("GREETING")
LOADED_AT_IMPORT = sorted(m for m in ("json", "re", "socket", "ctypes", "smyth_forkserver") if m in sys.modules)
with open("imported-%d" % os.getpid(), "w") as marker:
    marker.write(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
time.sleep(float(os.environ.get("INIT_SLEEP", "0")))
CALLS = []

def whoami(event, context):
    CALLS.append(1)
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "imported_by": IMPORTED_BY,
        "greeting": GREETING_AT_IMPORT,
        "loaded": LOADED_AT_IMPORT,
        "calls": len(CALLS),
        "cwd": os.getcwd(),
        "hash": hash("smyth"),
    }
"#;

fn handlers(python: &str) -> String {
    format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n\
         [tool.smyth.handlers.probe]\nhandler_path = \"app.whoami\"\nurl_path = \"/probe\"\n\
         strategy = \"always_cold\"\n\n\
         [tool.smyth.handlers.a]\nhandler_path = \"app.whoami\"\nurl_path = \"/a\"\n\
         env = {{ GREETING = \"from a\", INIT_SLEEP = \"0.3\" }}\n\n\
         [tool.smyth.handlers.b]\nhandler_path = \"app.whoami\"\nurl_path = \"/b\"\n\
         env = {{ GREETING = \"from b\" }}\n\n\
         [tool.smyth.handlers.seeded]\nhandler_path = \"app.whoami\"\nurl_path = \"/seeded\"\n\
         env = {{ PYTHONHASHSEED = \"7\" }}\n",
    )
}

fn cmdline(pid: u64) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

fn answer(server: &Server, path: &str) -> Value {
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "{path}: {reply:?}\n{}", server.log());
    reply.json()
}

/// Cold-starts the `always_cold` handler at `path` until one is a fork of a zygote other than `not`
/// (the first cold start spawns and starts the zygote); that zygote's pid.
fn zygote_up(server: &Server, path: &str, not: Option<u64>) -> u64 {
    let mut zygote = None;
    server.wait_for("a cold start forked from a zygote", Duration::from_secs(20), || {
        let reply = server.get(path);
        let parent = if reply.status == 200 { reply.json()["ppid"].as_u64() } else { None };
        zygote = parent.filter(|p| *p != u64::from(server.pid()) && Some(*p) != not);
        zygote.is_some()
    });
    zygote.unwrap()
}

#[test]
fn cold_starts_are_forks_of_one_zygote_that_never_loads_the_users_code() {
    let Some(python) = common::tools::python() else { return };
    let server = Server::start(&[("pyproject.toml", &handlers(&python)), ("app.py", APP)]);
    let first = answer(&server, "/probe");
    assert_eq!(first["ppid"].as_u64(), Some(u64::from(server.pid())), "the first cold start spawns: {first}");
    let zygote = zygote_up(&server, "/probe", None);
    assert_eq!(common::parent_of(zygote), u64::from(server.pid()), "the zygote is the server's child");
    assert!(cmdline(zygote).contains("smyth_runtime.py"), "{}", cmdline(zygote));
    let a = answer(&server, "/a");
    let b = answer(&server, "/b");
    assert_eq!(a["ppid"].as_u64(), Some(zygote), "a's worker is a fork of the zygote: {a}");
    assert_eq!(b["ppid"].as_u64(), Some(zygote), "both handlers fork from the one zygote: {b}");
    assert_ne!(a["pid"], b["pid"]);

    // Each worker imported the handler itself, with its own environment, and sees only the modules
    // a spawned runtime has; the zygote never imported it.
    for (who, greeting) in [(&a, "from a"), (&b, "from b")] {
        assert_eq!(who["imported_by"], who["pid"], "{who}");
        assert_eq!(who["greeting"], greeting, "the handler's env was there at import: {who}");
        assert_eq!(who["cwd"].as_str().map(std::path::Path::new), Some(server.path()), "{who}");
        assert_eq!(who["loaded"], serde_json::json!([]), "what the zygote loaded to fork is gone: {who}");
    }
    let markers: Vec<String> = std::fs::read_dir(server.path())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("imported-"))
        .collect();
    assert!(!markers.contains(&format!("imported-{zygote}")), "the zygote imported the handler: {markers:?}");
    assert!(markers.contains(&format!("imported-{}", a["pid"])), "{markers:?}");

    // Warm reuse keeps each worker's globals, and only its own.
    let again = answer(&server, "/a");
    assert_eq!((again["pid"].clone(), again["calls"].as_u64()), (a["pid"].clone(), Some(2)), "{again}");
    assert_eq!(answer(&server, "/b")["calls"], 2);

    // The init is the fork's own import, and real: a's sleeps 0.3 s.
    let log = server.log();
    let report = log
        .lines()
        .find(|line| line.contains("a:0 | REPORT") && line.contains("Init Duration"))
        .unwrap_or_else(|| panic!("no REPORT with an Init Duration for a:\n{log}"));
    let init: f64 =
        report.split("Init Duration: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(init >= 300.0, "Init Duration {init} ms for an import that sleeps 300 ms: {report}");

    // A hash seed is read at start-up: that handler's worker is spawned, and the seed holds.
    let seeded = answer(&server, "/seeded");
    assert_eq!(seeded["ppid"].as_u64(), Some(u64::from(server.pid())), "{seeded}");
    let expected =
        Command::new(&python).args(["-c", "print(hash('smyth'))"]).env("PYTHONHASHSEED", "7").output();
    let expected: i64 = String::from_utf8_lossy(&expected.unwrap().stdout).trim().parse().unwrap();
    assert_eq!(seeded["hash"].as_i64(), Some(expected), "{seeded}");
}

#[test]
fn a_zygote_that_dies_is_replaced_and_a_clean_stop_leaves_nothing() {
    let Some(python) = common::tools::python() else { return };
    let mut server = Server::start(&[("pyproject.toml", &handlers(&python)), ("app.py", APP)]);
    let zygote = zygote_up(&server, "/probe", None);
    let first = answer(&server, "/b");
    assert_eq!(first["ppid"].as_u64(), Some(zygote), "{first}");
    let worker = first["pid"].as_u64().unwrap() as u32;
    let pid = nix::unistd::Pid::from_raw(zygote as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    // Its fork dies with it (its death signal); a cold start starts a new zygote.
    server.wait_for("the worker to die with its zygote", Duration::from_secs(10), || !common::alive(worker));
    let new_zygote = zygote_up(&server, "/probe", Some(zygote));
    let next = answer(&server, "/b");
    assert_ne!(next["pid"].as_u64(), Some(u64::from(worker)), "{next}");
    assert_eq!(next["ppid"].as_u64(), Some(new_zygote), "cold starts fork again: {next}");
    assert!(server.log().contains("the zygote exited"), "{}", server.log());

    let pids = [new_zygote as u32, next["pid"].as_u64().unwrap() as u32];
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0), "{}", server.log());
    common::assert_all_gone(&server, &pids);
}

#[test]
fn a_package_installed_while_the_zygote_waits_is_found_by_the_next_cold_start() {
    let Some(python) = common::tools::python() else { return };
    // A venv of our own, so that the test can install into its site-packages.
    let venv = tempfile::tempdir().unwrap();
    let made = Command::new(&python).args(["-m", "venv", "--without-pip"]).arg(venv.path()).status().unwrap();
    assert!(made.success(), "python -m venv");
    let venv_python = venv.path().join("bin/python");
    let app = r#"
import os

def probe(event, context):
    return {"ppid": os.getppid()}

def uses_extra(event, context):
    import extra_module
    return {"value": extra_module.VALUE, "ppid": os.getppid()}
"#;
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{}\"\n\n\
         [tool.smyth.handlers.probe]\nhandler_path = \"app.probe\"\nurl_path = \"/probe\"\n\
         strategy = \"always_cold\"\n\n\
         [tool.smyth.handlers.extra]\nhandler_path = \"app.uses_extra\"\nurl_path = \"/extra\"\n",
        venv_python.display()
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", app)]);
    let zygote = zygote_up(&server, "/probe", None);
    // The zygote is up. Now "install" a package the way editable installs do: a `.pth` file that
    // puts a folder on sys.path (site reads those only at start-up).
    let site = std::fs::read_dir(venv.path().join("lib"))
        .unwrap()
        .filter_map(|entry| Some(entry.ok()?.path().join("site-packages")))
        .find(|path| path.is_dir())
        .expect("the venv's site-packages");
    let package = tempfile::tempdir().unwrap();
    std::fs::write(package.path().join("extra_module.py"), "VALUE = 'installed later'\n").unwrap();
    std::fs::write(site.join("extra.pth"), format!("{}\n", package.path().display())).unwrap();
    let extra = answer(&server, "/extra");
    assert_eq!(extra["value"], "installed later", "{extra}");
    assert_eq!(extra["ppid"].as_u64(), Some(zygote), "the worker was a fork: {extra}");
}

#[test]
fn zygote_false_spawns_every_cold_start() {
    let Some(python) = common::tools::python() else { return };
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\nzygote = false\n\n\
         [tool.smyth.handlers.a]\nhandler_path = \"app.whoami\"\nurl_path = \"/a\"\nstrategy = \"always_cold\"\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    for _ in 0..2 {
        let a = answer(&server, "/a");
        assert_eq!(a["ppid"].as_u64(), Some(u64::from(server.pid())), "spawned by the server: {a}");
        assert_eq!(a["imported_by"], a["pid"], "{a}");
    }
}

#[test]
fn provisioned_workers_wait_for_the_zygote_and_are_forks_of_it() {
    let Some(python) = common::tools::python() else { return };
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n\
         [tool.smyth.handlers.a]\nhandler_path = \"app.whoami\"\nurl_path = \"/a\"\n\
         concurrency = 3\nprovisioned_concurrency = 3\n"
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    // No request waits for a provisioned worker's init, so none is spawned while the zygote starts.
    server.wait_for("three warm provisioned workers", Duration::from_secs(20), || {
        server.workers("a").iter().filter(|w| w["state"] == "warm").count() == 3
    });
    let parents: Vec<u64> =
        server.worker_pids().into_iter().map(|pid| common::parent_of(u64::from(pid))).collect();
    assert_eq!(parents.len(), 3, "{parents:?}");
    assert!(parents.iter().all(|p| *p == parents[0] && *p != u64::from(server.pid())), "{parents:?}");
    assert!(cmdline(parents[0]).contains("smyth_runtime.py"), "{}", cmdline(parents[0]));
}
