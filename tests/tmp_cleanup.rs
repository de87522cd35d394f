//! The server's temp dirs do not outlive it: a clean stop removes them, and the dirs of a server that
//! was SIGKILLed (no destructor runs) are removed by the next server that starts. Each server here gets
//! its own `TMPDIR`, so the checks see only these servers' dirs, whatever else runs in parallel.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{pyproject, Server};
use nix::sys::signal::Signal;

const APP: &str = "def handler(event, context):\n    return {'ok': True}\n";

fn handlers() -> String {
    pyproject("[tool.smyth.handlers.ok]\nhandler_path = \"app.handler\"\nurl_path = \"/ok\"\n")
}

/// The `smyth-*` entries in `dir`, sorted.
fn smyth_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("smyth-"))
        .collect();
    names.sort();
    names
}

fn start_in(tmp: &Path) -> Server {
    let tmp = tmp.to_str().unwrap();
    let server =
        Server::start_with_env(&[("pyproject.toml", &handlers()), ("app.py", APP)], &[("TMPDIR", tmp)]);
    // A real invocation: the worker ran from the bootstrap file in the temp dir.
    assert_eq!(server.get("/ok").status, 200, "{}", server.log());
    server
}

#[test]
fn a_killed_servers_temp_dirs_are_removed_by_the_next_and_a_clean_stop_leaves_none() {
    let tmp = tempfile::tempdir().unwrap();

    let mut killed = start_in(tmp.path());
    let pid = killed.pid();
    let left = smyth_dirs(tmp.path());
    let own = |kind: &str| format!("smyth-{kind}-{pid}-");
    assert!(left.iter().any(|n| n.starts_with(&own("bootstrap"))), "{left:?}");
    assert!(left.iter().any(|n| n.starts_with(&own("events"))), "{left:?}");
    killed.signal(Signal::SIGKILL);
    killed.wait_exit(Duration::from_secs(10));
    assert_eq!(smyth_dirs(tmp.path()), left, "SIGKILL runs no destructor: the dirs are still there");

    let mut next = start_in(tmp.path());
    let now = smyth_dirs(tmp.path());
    assert!(
        now.iter().all(|n| !n.contains(&format!("-{pid}-"))),
        "the killed server's dirs are gone: {now:?}"
    );
    assert_eq!(now.len(), 2, "the running server's own two dirs: {now:?}");

    next.signal(Signal::SIGTERM);
    assert_eq!(next.wait_exit(Duration::from_secs(15)), Some(0), "{}", next.log());
    assert_eq!(smyth_dirs(tmp.path()), Vec::<String>::new(), "a clean stop removes its dirs");
}
