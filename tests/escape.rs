//! Containment: whatever a handler's processes do to their process group or session (a plain
//! grandchild, `setsid()`, a new process group, a double-forked daemon), none outlives the server,
//! whether it stops by SIGTERM, SIGINT or SIGKILL.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{alive, assert_all_gone, pyproject, Server};
use nix::sys::signal::Signal;

const APP: &str = r#"
import os, subprocess

def double_fork(seconds="1000"):
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(write, str(os.getpid()).encode())
            os.execvp("sleep", ["sleep", seconds])
        os._exit(0)
    os.close(write)
    os.waitpid(middle, 0)
    pid = int(os.read(read, 32))
    os.close(read)
    return pid

def escape(event, context):
    grandchild = subprocess.Popen(["sleep", "1000"])
    session = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    group = subprocess.Popen(["sleep", "1000"], process_group=0)
    return {"worker": os.getpid(), "escaped": [grandchild.pid, session.pid, group.pid, double_fork()]}

def short_daemon(event, context):
    return {"daemon": double_fork("0.2")}
"#;

fn files() -> [(&'static str, String); 2] {
    let config = pyproject(
        "[tool.smyth.handlers.escape]\nhandler_path = \"app.escape\"\nurl_path = \"/escape\"\n\n\
         [tool.smyth.handlers.daemon]\nhandler_path = \"app.short_daemon\"\nurl_path = \"/daemon\"\n",
    );
    [("pyproject.toml", config), ("app.py", APP.to_string())]
}

fn start(env: &[(&str, &str)]) -> Server {
    let files = files();
    let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (*name, text.as_str())).collect();
    Server::start_with_env(&files, env)
}

/// Invokes the handler: the worker's pid and every process it left behind, all alive.
fn spawn_escapees(server: &Server) -> Vec<u32> {
    let reply = server.get("/escape");
    assert_eq!(reply.status, 200, "{reply:?}\n{}", server.log());
    let body = reply.json();
    let mut pids = vec![body["worker"].as_u64().unwrap() as u32];
    pids.extend(body["escaped"].as_array().unwrap().iter().map(|pid| pid.as_u64().unwrap() as u32));
    assert_eq!(pids.len(), 5, "{body}");
    for pid in &pids {
        assert!(alive(*pid), "pid {pid} should be running before the server stops");
    }
    pids
}

/// The value of `key=` on the start-up line that says how workers are contained.
fn containment_field(server: &Server, key: &str) -> Option<String> {
    let log = server.log();
    let line = log.lines().find(|line| line.contains("worker processes are contained"))?;
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    line[at..].split_whitespace().next().map(str::to_string)
}

fn stop_and_check(signal: Signal) {
    let mut server = start(&[]);
    let cgroup = containment_field(&server, "cgroup").map(PathBuf::from);
    let watchdog = containment_field(&server, "watchdog").and_then(|pid| pid.parse::<u32>().ok());
    if let Some(cgroup) = &cgroup {
        assert!(cgroup.is_dir(), "{}", cgroup.display());
    }
    let pids = spawn_escapees(&server);
    server.signal(signal);
    let code = server.wait_exit(Duration::from_secs(10));
    if signal != Signal::SIGKILL {
        assert_eq!(code, Some(0), "a clean stop, not killed by its own cleanup\n{}", server.log());
    }
    assert_all_gone(&server, &pids);
    // The watchdog and its group do not outlive their purpose either.
    if let Some(watchdog) = watchdog {
        assert_all_gone(&server, &[watchdog]);
    }
    if let Some(cgroup) = cgroup {
        server.wait_for("the cgroup removed", Duration::from_secs(10), || !cgroup.exists());
    }
}

#[test]
fn sigterm_leaves_no_process_a_handler_started() {
    stop_and_check(Signal::SIGTERM);
}

#[test]
fn sigint_leaves_no_process_a_handler_started() {
    stop_and_check(Signal::SIGINT);
}

#[test]
fn sigkill_of_the_server_leaves_no_process_a_handler_started() {
    stop_and_check(Signal::SIGKILL);
}

#[test]
fn without_a_cgroup_one_warning_says_what_is_not_guaranteed_and_sigterm_still_cleans_up() {
    let mut server = start(&[("SMYTH_DISABLE_CGROUP", "1")]);
    let pids = spawn_escapees(&server);
    let log = server.log();
    let warnings: Vec<_> = log.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("SIGKILL") && warnings[0].contains("SMYTH_DISABLE_CGROUP"), "{log}");
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.log());
    assert_all_gone(&server, &pids);
}

#[test]
fn without_a_cgroup_adopted_orphans_that_exit_are_reaped_while_the_server_runs() {
    let server = start(&[("SMYTH_DISABLE_CGROUP", "1")]);
    let reply = server.get("/daemon");
    assert_eq!(reply.status, 200, "{reply:?}");
    let daemon = reply.json()["daemon"].as_u64().unwrap();
    // Not even a zombie: the server, its adoptive parent, reaped it.
    server.wait_for("the exited daemon reaped", Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{daemon}")).exists()
    });
}
