//! Issue 13, "a slot costs nothing until it runs": under the common open-file limit of 1024, two
//! handlers of concurrency 1000 (AWS's default account limit) start and serve, since a slot's Runtime
//! API listener is opened only when its process first starts; where a limit still bites (provisioned
//! workers start at once), `smyth run` fails with an `error:` line naming the limit, the handlers and
//! the key. The server is started as a shell's `ulimit -n 1024 && exec smyth run` would (soft and
//! hard limit), so raising the soft limit to the hard one cannot hide a descriptor per slot.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::resource::{setrlimit, Resource};

const APP: &str = "import os\n\ndef a(event, context):\n    return {'handler': 'a', 'pid': os.getpid()}\n\n\
                   def b(event, context):\n    return {'handler': 'b', 'pid': os.getpid()}\n";

fn config(extra: &str) -> String {
    common::pyproject(&format!(
        "[tool.smyth.handlers.a]\nhandler_path = \"app.a\"\nurl_path = \"/a\"\nconcurrency = 1000\n{extra}\n\
         [tool.smyth.handlers.b]\nhandler_path = \"app.b\"\nurl_path = \"/b\"\nconcurrency = 1000\n{extra}\n"
    ))
}

/// `smyth run` in a fresh project, with RLIMIT_NOFILE set to `limit` (soft and hard) before exec.
struct Limited {
    child: Child,
    dir: tempfile::TempDir,
    _scratch: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Limited {
    fn start(pyproject: &str, limit: u64) -> Limited {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), pyproject).unwrap();
        std::fs::write(dir.path().join("app.py"), APP).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_smyth"));
        command
            .arg("run")
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("VIRTUAL_ENV")
            .env("TMPDIR", scratch.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(Into::into));
        }
        let mut child = command.spawn().expect("spawn smyth");
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Limited { child, dir, _scratch: scratch, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The port, once the server says it listens; None if it exited first.
    fn port(&mut self) -> Option<u16> {
        let deadline = Instant::now() + common::STARTUP;
        loop {
            let log = self.log();
            if let Some(at) = log.find("smyth listening on http://127.0.0.1:") {
                let rest = &log[at + "smyth listening on http://127.0.0.1:".len()..];
                return rest.split_whitespace().next()?.parse().ok();
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // the last lines
                return None;
            }
            assert!(Instant::now() < deadline, "smyth did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the server to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if self.exit_code().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = &self.dir;
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut reply = agent.get(format!("http://127.0.0.1:{port}{path}")).call().expect("request");
    (reply.status().as_u16(), reply.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn two_handlers_of_concurrency_1000_serve_under_an_open_file_limit_of_1024() {
    let mut server = Limited::start(&config(""), 1024);
    let port = server.port().unwrap_or_else(|| panic!("smyth exited:\n{}", server.log()));
    for handler in ["a", "b"] {
        let (status, body) = get(port, &format!("/{handler}"));
        assert_eq!(status, 200, "{body}\n{}", server.log());
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["handler"], handler, "{body}");
    }
    let (status, body) = get(port, "/_smyth/status");
    assert_eq!(status, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    for handler in ["a", "b"] {
        let workers = status["handlers"][handler]["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 1000, "{handler}");
        let running = workers.iter().filter(|w| !w["pid"].is_null()).count();
        assert_eq!(running, 1, "{handler}: one slot ran");
    }
    assert!(!server.log().contains("Too many open files"), "{}", server.log());
}

#[test]
fn provisioned_workers_beyond_the_open_file_limit_fail_with_an_error_line() {
    let mut server = Limited::start(&config("provisioned_concurrency = 100"), 1024);
    assert_eq!(server.port(), None, "it started:\n{}", server.log());
    assert_eq!(server.exit_code(), Some(2), "{}", server.log());
    let log = server.log();
    let line =
        log.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line:\n{log}"));
    for part in ["RLIMIT_NOFILE = 1024", "`a` (100)", "`b` (100)", "`provisioned_concurrency`"] {
        assert!(line.contains(part), "{part}: {line}");
    }
}
