//! Shutdown: whatever stops the server, no Python process outlives it.

mod common;

use std::time::{Duration, Instant};

use common::{assert_all_gone, pyproject, Server};
use nix::sys::signal::Signal;

const APP: &str = r#"
import os, time

def slow(event, context):
    time.sleep(float((event.get("queryStringParameters") or {}).get("s", "0.5")))
    return {"pid": os.getpid()}
"#;

/// A server whose two provisioned workers are warm.
fn busy_server() -> Server {
    let config = pyproject(
        "[tool.smyth.handlers.slow]\nhandler_path = \"app.slow\"\nurl_path = \"/slow\"\nconcurrency = 3\nprovisioned_concurrency = 2\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", APP)]);
    server.wait_for("provisioned workers warm", Duration::from_secs(15), || {
        server.workers("slow").iter().filter(|w| w["state"] == "warm").count() == 2
    });
    server
}

fn in_flight_pids(server: &Server) -> Vec<u32> {
    server.wait_for("an invocation in flight", Duration::from_secs(10), || {
        server.workers("slow").iter().any(|w| w["state"] == "busy")
    });
    let pids = server.worker_pids();
    assert!(pids.len() >= 2, "{pids:?}");
    pids
}

fn graceful(signal: Signal) {
    let mut server = busy_server();
    std::thread::scope(|scope| {
        let request = scope.spawn(|| server.get("/slow?s=0.5"));
        let pids = in_flight_pids(&server);
        server.signal(signal);
        let reply = request.join().unwrap();
        assert_eq!(reply.status, 200, "the in-flight invocation finishes within the grace: {reply:?}");
        assert_all_gone(&server, &pids);
    });
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.log());
}

#[test]
fn sigint_finishes_in_flight_work_and_leaves_no_worker() {
    graceful(Signal::SIGINT);
}

#[test]
fn sigterm_finishes_in_flight_work_and_leaves_no_worker() {
    graceful(Signal::SIGTERM);
}

#[test]
fn sigkill_of_the_server_takes_every_worker_with_it() {
    let mut server = busy_server();
    std::thread::scope(|scope| {
        let url = server.url("/slow?s=5");
        let request = scope.spawn(move || ureq::get(url).call().is_err());
        let pids = in_flight_pids(&server);
        server.signal(Signal::SIGKILL);
        server.wait_exit(Duration::from_secs(10));
        assert_all_gone(&server, &pids);
        assert!(request.join().unwrap(), "the in-flight request cannot succeed");
    });
}

#[test]
fn a_second_interrupt_forces_an_immediate_exit() {
    let mut server = busy_server();
    std::thread::scope(|scope| {
        let url = server.url("/slow?s=30");
        let request = scope.spawn(move || ureq::get(url).call().is_err());
        let pids = in_flight_pids(&server);
        server.signal(Signal::SIGINT);
        server
            .wait_for("shutdown to begin", Duration::from_secs(5), || server.log().contains("shutting down"));
        server.signal(Signal::SIGINT);
        let started = Instant::now();
        assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(130));
        assert!(started.elapsed() < Duration::from_secs(1), "forced exit took {:?}", started.elapsed());
        assert_all_gone(&server, &pids);
        assert!(request.join().unwrap(), "the in-flight request cannot succeed");
    });
}
