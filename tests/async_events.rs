//! Asynchronous (`Event`) invocations are never lost: throttled events wait in the async queue and run
//! when capacity frees, only function errors use up retries, a full queue answers 429 at once, old
//! events are dropped with a warning, and queued payloads do not sit in the server's heap.

mod common;

use std::time::{Duration, Instant};

use common::{pyproject, rss_kb, Reply, Server};

const APP: &str = r#"
import time

def record(event, context):
    with open(event.get("file", "runs.txt"), "a") as f:
        f.write("%s\n" % event.get("n"))
    time.sleep(event.get("sleep", 0))
    return {"ok": True}

def fail(event, context):
    with open("attempts.txt", "a") as f:
        f.write("%s\n" % event.get("n"))
    raise RuntimeError("always fails")
"#;

fn serve(global: &str, handlers: &str) -> Server {
    let config = pyproject(handlers).replacen("port = 0\n", &format!("port = 0\n{global}\n"), 1);
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

fn invoke(server: &Server, function: &str, kind: &str, body: &str) -> Reply {
    server.request(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[("X-Amz-Invocation-Type", kind)],
        Some(body.as_bytes()),
    )
}

fn event(server: &Server, function: &str, body: &str) -> Reply {
    invoke(server, function, "Event", body)
}

/// The lines the handlers wrote to `name` in the project dir.
fn lines(server: &Server, name: &str) -> Vec<String> {
    std::fs::read_to_string(server.path().join(name))
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn a_hundred_events_through_a_queue_of_five_all_run() {
    let server = serve(
        "",
        "[tool.smyth.handlers.record]\nhandler_path = \"app.record\"\nurl_path = \"/record\"\n\
         concurrency = 1\nqueue_size = 5\n",
    );
    for n in 0..100 {
        let reply = event(&server, "record", &format!(r#"{{"n": {n}, "sleep": 0.01}}"#));
        assert_eq!(reply.status, 202, "event {n}: {reply:?}");
    }
    server.wait_for("all 100 events to run", Duration::from_secs(60), || {
        lines(&server, "runs.txt").len() >= 100
    });
    let mut ran: Vec<u32> = lines(&server, "runs.txt").iter().map(|l| l.parse().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(ran, (0..100).collect::<Vec<_>>(), "each event runs exactly once");
    assert!(!server.log().contains("failed for good"), "{}", server.log());
}

#[test]
fn events_to_a_reserved_concurrency_handler_all_run_beside_sync_load() {
    let server = serve(
        "",
        "[tool.smyth.handlers.record]\nhandler_path = \"app.record\"\nurl_path = \"/record\"\n\
         reserved_concurrency = 1\n",
    );
    std::thread::scope(|scope| {
        let sync = scope.spawn(|| {
            let mut throttled = 0;
            for _ in 0..30 {
                let reply =
                    invoke(&server, "record", "RequestResponse", r#"{"file": "sync.txt", "sleep": 0.02}"#);
                throttled += usize::from(reply.status == 429);
            }
            throttled
        });
        for n in 0..20 {
            let reply = event(&server, "record", &format!(r#"{{"n": {n}, "sleep": 0.02}}"#));
            assert_eq!(reply.status, 202, "event {n}: {reply:?}");
        }
        sync.join().unwrap();
    });
    server
        .wait_for("all 20 events to run", Duration::from_secs(60), || lines(&server, "runs.txt").len() >= 20);
    assert_eq!(lines(&server, "runs.txt").len(), 20, "each event runs exactly once");
    assert!(!server.log().contains("failed for good"), "{}", server.log());
}

#[test]
fn a_full_async_queue_answers_429_at_once() {
    let server = serve(
        "async_queue_size = 3",
        "[tool.smyth.handlers.record]\nhandler_path = \"app.record\"\nurl_path = \"/record\"\ntimeout = 20\n",
    );
    for n in 0..3 {
        let reply = event(&server, "record", &format!(r#"{{"n": {n}, "sleep": 10}}"#));
        assert_eq!(reply.status, 202, "event {n}: {reply:?}");
    }
    for n in 3..5 {
        let started = Instant::now();
        let reply = event(&server, "record", &format!(r#"{{"n": {n}}}"#));
        assert_eq!(reply.status, 429, "event {n} must not be accepted: {reply:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "answered late: {:?}", started.elapsed());
        assert_eq!(reply.header("x-amzn-ErrorType"), Some("TooManyRequestsException"), "{reply:?}");
        assert_eq!(reply.json()["Type"], "User", "{reply:?}");
    }
}

#[test]
fn only_function_errors_use_up_retries() {
    let server = serve(
        "",
        "[tool.smyth.handlers.fail]\nhandler_path = \"app.fail\"\nurl_path = \"/fail\"\nconcurrency = 1\n\
         queue_size = 1\nmaximum_retry_attempts = 2\nretry_delay = 0.2\n",
    );
    for n in 0..5 {
        assert_eq!(event(&server, "fail", &format!(r#"{{"n": {n}}}"#)).status, 202);
    }
    server.wait_for("every event to fail for good", Duration::from_secs(60), || {
        server.log().matches("failed for good").count() >= 5
    });
    // A late extra attempt would show here; the retries were 0.2 s and 0.4 s apart.
    std::thread::sleep(Duration::from_millis(600));
    let attempts = lines(&server, "attempts.txt");
    for n in 0..5 {
        let count = attempts.iter().filter(|l| **l == n.to_string()).count();
        assert_eq!(count, 3, "event {n}: one attempt and two retries; attempts: {attempts:?}");
    }
    assert_eq!(server.log().matches("failed for good").count(), 5, "{}", server.log());
}

#[test]
fn an_event_that_cannot_run_within_maximum_event_age_is_dropped_with_a_warning() {
    let server = serve(
        "",
        "[tool.smyth.handlers.never]\nhandler_path = \"app.record\"\nurl_path = \"/never\"\n\
         reserved_concurrency = 0\nmaximum_event_age = 60\n",
    );
    let accepted = Instant::now();
    let reply = event(&server, "never", r#"{"n": 1}"#);
    assert_eq!(reply.status, 202, "{reply:?}");
    server.wait_for("the too-old warning", Duration::from_secs(75), || {
        server.log().contains("maximum_event_age")
    });
    assert!(accepted.elapsed() >= Duration::from_secs(59), "dropped early: {:?}", accepted.elapsed());
    let log = server.log();
    let warning = log.lines().find(|l| l.contains("maximum_event_age")).unwrap();
    assert!(warning.contains("WARN") && warning.contains("never"), "{warning}");
    assert!(!log.contains("failed for good"), "a throttled event is not a failed one:\n{log}");
    assert!(lines(&server, "runs.txt").is_empty());
}

#[test]
fn the_async_payload_limit_is_one_mib() {
    let server =
        serve("", "[tool.smyth.handlers.record]\nhandler_path = \"app.record\"\nurl_path = \"/record\"\n");
    let json_string = |len: usize| format!("\"{}\"", "a".repeat(len - 2));
    assert_eq!(event(&server, "record", &json_string(1_048_576)).status, 202);
    let reply = event(&server, "record", &json_string(1_048_577));
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.header("x-amzn-ErrorType"), Some("RequestEntityTooLargeException"), "{reply:?}");
}

#[test]
fn events_still_waiting_at_shutdown_are_counted_in_a_warning() {
    let mut server = serve(
        "",
        "[tool.smyth.handlers.never]\nhandler_path = \"app.record\"\nurl_path = \"/never\"\n\
         reserved_concurrency = 0\n",
    );
    for n in 0..3 {
        assert_eq!(event(&server, "never", &format!(r#"{{"n": {n}}}"#)).status, 202);
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0), "{}", server.log());
    let log = server.log();
    let warning =
        log.lines().find(|l| l.contains("asynchronous events still waiting")).unwrap_or_else(|| {
            panic!("no shutdown warning:\n{log}");
        });
    assert!(warning.contains("WARN") && warning.contains("waiting=3"), "{warning}");
}

#[test]
fn a_thousand_queued_200_kb_events_keep_the_server_under_64_mb() {
    let server = serve(
        "",
        "[tool.smyth.handlers.record]\nhandler_path = \"app.record\"\nurl_path = \"/record\"\n\
         reserved_concurrency = 1\ntimeout = 120\n",
    );
    let pad = "x".repeat(200 * 1024);
    for n in 0..1000 {
        let reply = event(&server, "record", &format!(r#"{{"n": {n}, "sleep": 100, "pad": "{pad}"}}"#));
        assert_eq!(reply.status, 202, "event {n}: {reply:?}");
    }
    server.wait_for("the first event to run", Duration::from_secs(20), || {
        !lines(&server, "runs.txt").is_empty()
    });
    let rss_mb = rss_kb(server.pid()) / 1024;
    eprintln!("server VmRSS with 1,000 queued 200 KB events: {rss_mb} MB");
    assert!(rss_mb < 64, "server RSS {rss_mb} MB with 1,000 queued events");
    assert_eq!(lines(&server, "runs.txt").len(), 1, "the rest wait for the one busy worker");
    assert_eq!(server.status()["handlers"]["record"]["async_queued"], 999, "the status counts them");
}
