//! The integration harness: a real `smyth run` on a free port, serving real Python handlers written
//! into a temp dir. Every wait is bounded and polls; the server is killed when the test ends.

#![allow(dead_code)]

pub mod tools;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const STARTUP: Duration = Duration::from_secs(20);

pub struct Server {
    child: Child,
    /// The server's standard input, when started with [`Server::start_with_stdin`].
    pub stdin: Option<std::process::ChildStdin>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The server's `TMPDIR`: whatever it leaves there (a SIGKILLed server cannot remove its own
    /// temp dirs) is removed with the test.
    pub scratch: tempfile::TempDir,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// A finished HTTP exchange.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// The `[tool.smyth]` table with `port = 0` and the given handler tables appended.
pub fn pyproject(handlers: &str) -> String {
    format!("[tool.smyth]\nport = 0\n\n{handlers}")
}

impl Server {
    /// Writes `files` into a fresh project dir and starts the server there.
    pub fn start(files: &[(&str, &str)]) -> Server {
        Self::start_with_args(files, &[])
    }

    pub fn start_with_args(files: &[(&str, &str)], args: &[&str]) -> Server {
        Self::launch(files, args, &[], Stdio::null())
    }

    /// Like `start`, with extra environment variables for the server.
    pub fn start_with_env(files: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        Self::launch(files, &[], env, Stdio::null())
    }

    /// Like `start_with_args`, with a pipe to the server's standard input in `stdin`.
    pub fn start_with_stdin(files: &[(&str, &str)], args: &[&str]) -> Server {
        Self::launch(files, args, &[], Stdio::piped())
    }

    fn launch(files: &[(&str, &str)], args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let scratch = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_smyth"))
            .arg("run")
            .args(args)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("VIRTUAL_ENV")
            .env("TMPDIR", scratch.path())
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn smyth");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let stdin = child.stdin.take();
        let mut server = Server { child, stdin, port: 0, dir, scratch, log, agent };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(port) = listening_port(&server.log()) {
                server.port = port;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("smyth exited with {status} before listening:\n{}", server.log());
            }
            assert!(Instant::now() < deadline, "smyth did not start listening:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let mut req = ureq::http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(body) => self.agent.run(req.body(body.to_vec()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path} failed: {e}\n{}", self.log()));
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Reply { status, headers, body }
    }

    pub fn status(&self) -> Value {
        self.get("/_smyth/status").json()
    }

    /// The status of one worker, e.g. `workers("counter")[0]["state"]`.
    pub fn workers(&self, handler: &str) -> Vec<Value> {
        self.status()["handlers"][handler]["workers"].as_array().cloned().unwrap_or_default()
    }

    /// Every worker pid the status shows.
    pub fn worker_pids(&self) -> Vec<u32> {
        let status = self.status();
        let mut pids = Vec::new();
        for handler in status["handlers"].as_object().unwrap().values() {
            for worker in handler["workers"].as_array().unwrap() {
                if let Some(pid) = worker["pid"].as_u64() {
                    pids.push(pid as u32);
                }
            }
        }
        pids
    }

    /// Polls `cond` every 20 ms until it holds; panics with `what` and the log after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n--- log ---\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits (bounded) for the server process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "smyth did not exit\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_port(log: &str) -> Option<u16> {
    let at = log.find("smyth listening on http://")?;
    let rest = &log[at + "smyth listening on http://".len()..];
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// A process's resident memory, in kB (`VmRSS` in /proc/PID/status).
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).expect("VmRSS in kB")
}

/// Polls, bounded by 10 s, until none of `pids` is a live process; past that, kills what is left (so a
/// failing run leaves nothing behind either) and fails with the server's log.
pub fn assert_all_gone(server: &Server, pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = pids.iter().filter(|pid| alive(**pid)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for pid in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(**pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes outlived the server: {left:?}\n{}", server.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// The parent pid of `pid`: the server's own for a spawned worker, the zygote's for a fork of it.
pub fn parent_of(pid: u64) -> u64 {
    parent(pid).unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// The parent pid of `pid`, or None once it is gone.
pub fn parent(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

pub fn project_path(server: &Server, name: &str) -> PathBuf {
    server.path().join(name)
}
