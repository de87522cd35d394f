//! `smyth run --debug`: one worker per handler that shares the terminal, with no timeout.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{pyproject, Server};

const APP: &str = r#"
import os, time

def ask(event, context):
    # What a breakpoint() does: read the terminal.
    answer = input("continue? ")
    time.sleep(1.2)  # longer than the configured timeout
    return {"answer": answer, "pid": os.getpid(), "pgid": os.getpgid(0)}
"#;

#[test]
fn debug_workers_read_the_terminal_and_are_never_timed_out() {
    let config = pyproject(
        "[tool.smyth.handlers.ask]\nhandler_path = \"app.ask\"\nurl_path = \"/ask\"\ntimeout = 0.5\nconcurrency = 3\n",
    );
    let mut server = Server::start_with_stdin(&[("pyproject.toml", &config), ("app.py", APP)], &["--debug"]);
    assert_eq!(server.workers("ask").len(), 1, "--debug runs one worker per handler");
    let mut stdin = server.stdin.take().unwrap();
    std::thread::scope(|scope| {
        let request = scope.spawn(|| server.get("/ask"));
        server.wait_for("the worker to wait on the terminal", Duration::from_secs(10), || {
            server.workers("ask")[0]["state"] == "busy"
        });
        stdin.write_all(b"yes\n").unwrap();
        stdin.flush().unwrap();
        let reply = request.join().unwrap();
        assert_eq!(reply.status, 200, "no timeout in --debug: {reply:?}");
        let body = reply.json();
        assert_eq!(body["answer"], "yes");
        // The worker stays in smyth's process group (the terminal's foreground group).
        let smyth_pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(server.pid() as i32))).unwrap();
        assert_eq!(body["pgid"].as_i64(), Some(i64::from(smyth_pgid.as_raw())));
    });
}

#[test]
fn debugpy_listens_on_the_configured_port_for_an_ide_to_attach() {
    let Some(python) = common::tools::python() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[tool.smyth]\nport = 0\npython = \"{python}\"\n\n[tool.smyth.handlers.hi]\nhandler_path = \"app.hi\"\n\
         url_path = \"/hi\"\ndebugpy_port = {port}\n"
    );
    let app = "def hi(event, context):\n    return {'ok': True}\n";
    let server = Server::start_with_args(&[("pyproject.toml", &config), ("app.py", app)], &["--debug"]);
    assert_eq!(server.get("/hi").status, 200);
    server.wait_for("debugpy's announcement", Duration::from_secs(10), || {
        server.log().contains(&format!("debugpy listening on 127.0.0.1:{port}"))
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "an IDE can connect to port {port}");
}
