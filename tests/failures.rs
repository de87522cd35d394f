//! Failure handling against real processes: raised errors, crashes and restarts, timeouts and late
//! results, init-failure backoff, payload limits, throttling, queueing and disconnects.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{pyproject, Reply, Server};

const HANDLERS: &str = r#"
import os, time

def ok(event, context):
    return {"pid": os.getpid(), "request_id": context.aws_request_id}

def boom(event, context):
    raise ValueError("boom")

def exit_once(event, context):
    if not os.path.exists("exited-once"):
        open("exited-once", "w").close()
        os._exit(3)
    return {"pid": os.getpid()}

def sleepy(event, context):
    late = (event.get("queryStringParameters") or {}).get("late")
    if late:
        # A result for an earlier request id, posted by this worker's own process.
        import urllib.request, urllib.error
        url = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/{late}/response"
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b'{"request_id":"LATE"}', method="POST"))
            return {"late_status": 202}
        except urllib.error.HTTPError as err:
            return {"late_status": err.code, "late_body": err.read().decode()}
    with open("sleepy.log", "a") as log:
        log.write(context.aws_request_id + " " + os.environ["AWS_LAMBDA_RUNTIME_API"] + "\n")
    seconds = float((event.get("queryStringParameters") or {}).get("s", "30"))
    time.sleep(seconds)
    return {"request_id": context.aws_request_id, "remaining": context.get_remaining_time_in_millis()}

def huge(event, context):
    return "x" * 7_000_000

def record(event, context):
    query = event.get("queryStringParameters") or {}
    with open("record.log", "a") as log:
        log.write(query.get("id", "?") + "\n")
    time.sleep(float(query.get("s", "0")))
    return {"id": query.get("id")}
"#;

fn handler(name: &str, function: &str, extra: &str) -> String {
    format!(
        "[tool.smyth.handlers.{name}]\nhandler_path = \"app.{function}\"\nurl_path = \"/{name}\"\n{extra}\n"
    )
}

fn serve(handlers: &[String]) -> Server {
    Server::start(&[("pyproject.toml", &pyproject(&handlers.concat())), ("app.py", HANDLERS)])
}

fn worker(server: &Server, name: &str) -> serde_json::Value {
    server.workers(name)[0].clone()
}

/// Runs `n` requests at once; their replies.
fn parallel(server: &Server, paths: &[&str]) -> Vec<Reply> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths.iter().map(|path| scope.spawn(|| server.get(path))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_raising_handler_answers_502_and_the_worker_keeps_serving() {
    let server = serve(&[handler("boom", "boom", ""), handler("ok", "ok", "")]);
    let reply = server.get("/boom");
    assert_eq!(reply.status, 502);
    let body = reply.json();
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "boom");
    let pid = worker(&server, "boom")["pid"].clone();
    assert_eq!(server.get("/boom").status, 502);
    assert_eq!(worker(&server, "boom")["pid"], pid, "a raised error must not replace the worker");
    assert_eq!(worker(&server, "boom")["restarts"], 0);
    assert_eq!(server.get("/ok").status, 200);
    server.wait_for("traceback in the log", Duration::from_secs(5), || {
        server.log().contains("Traceback") && server.log().contains("ValueError: boom")
    });
}

#[test]
fn a_crashing_handler_fails_its_request_and_is_replaced() {
    let server = serve(&[handler("crash", "exit_once", "")]);
    let reply = server.get("/crash");
    assert_eq!(reply.status, 502, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("Runtime exited with error: exit status 3"),
        "{body}"
    );
    let reply = server.get("/crash");
    assert_eq!(reply.status, 200, "the replacement must work: {reply:?}");
    let status = worker(&server, "crash");
    assert_eq!(status["restarts"], 1);
    assert_eq!(status["cold_starts"], 2);
    assert_eq!(status["pid"].as_u64(), reply.json()["pid"].as_u64());
}

#[test]
fn a_worker_killed_while_idle_is_noticed_and_replaced() {
    let server = serve(&[handler("ok", "ok", "")]);
    let first = server.get("/ok").json()["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), nix::sys::signal::Signal::SIGKILL).unwrap();
    server.wait_for("the dead worker to be noticed", Duration::from_secs(10), || {
        let status = worker(&server, "ok");
        status["state"] == "cold" && status["restarts"] == 1 && status["pid"].is_null()
    });
    let reply = server.get("/ok");
    assert_eq!(reply.status, 200);
    assert_ne!(reply.json()["pid"].as_u64().unwrap() as i32, first);
}

#[test]
fn a_request_right_after_an_idle_worker_was_killed_gets_a_fresh_one() {
    let server = serve(&[handler("ok", "ok", "")]);
    let mut pid = server.get("/ok").json()["pid"].as_u64().unwrap() as i32;
    for round in 0..5 {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        // The kill has taken effect once the process has exited (a zombie until smyth reaps it); a
        // request that arrives while it is still exiting goes down with it, as on a crash mid-invoke.
        let start = Instant::now();
        while common::alive(pid as u32) {
            assert!(start.elapsed() < Duration::from_secs(5), "round {round}: the killed worker exits");
            std::thread::yield_now();
        }
        let reply = server.get("/ok");
        assert_eq!(reply.status, 200, "round {round}: the request must not go to the dead worker: {reply:?}");
        let fresh = reply.json()["pid"].as_u64().unwrap() as i32;
        assert_ne!(fresh, pid, "round {round}");
        pid = fresh;
    }
    assert_eq!(worker(&server, "ok")["restarts"], 5);
}

#[test]
fn a_timeout_kills_the_worker_and_its_late_result_is_refused() {
    let server = serve(&[handler("sleepy", "sleepy", "timeout = 1")]);
    let started = Instant::now();
    let reply = server.get("/sleepy?s=30");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(reply.status, 504, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["message"], "Endpoint request timed out");
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    server.wait_for("the slot to turn cold", Duration::from_secs(5), || {
        worker(&server, "sleepy")["state"] == "cold"
    });

    // The killed run's result, posted late to the Runtime API (by the slot's next process: nothing
    // else may use its port), is refused.
    let log = std::fs::read_to_string(server.path().join("sleepy.log")).unwrap();
    let (old_id, _) = log.lines().next().unwrap().split_once(' ').unwrap();
    let late = server.get(&format!("/sleepy?late={old_id}")).json();
    assert_eq!(late["late_status"], 400, "{late}");
    assert!(late["late_body"].as_str().unwrap().contains("InvalidRequestID"), "{late}");

    // The next request is a cold start and gets its own answer.
    let reply = server.get("/sleepy?s=0");
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_ne!(body["request_id"], old_id);
    let remaining = body["remaining"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 1000, "deadline must be the 1 s timeout: {remaining}");
    assert_eq!(worker(&server, "sleepy")["cold_starts"], 2);
}

#[test]
fn a_broken_import_backs_off_instead_of_spinning() {
    let config = pyproject(
        "[tool.smyth.handlers.broken]\nhandler_path = \"nowhere.handler\"\nurl_path = \"/broken\"\n",
    );
    let server = Server::start(&[("pyproject.toml", &config)]);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut requests = 0;
    while Instant::now() < deadline {
        let reply = server.get("/broken");
        assert_eq!(reply.status, 502, "{reply:?}");
        assert_eq!(reply.json()["errorType"], "Runtime.ImportModuleError");
        requests += 1;
    }
    let spawns = worker(&server, "broken")["cold_starts"].as_u64().unwrap();
    assert!(requests > spawns as usize, "requests during the backoff must not spawn ({requests} requests)");
    assert!((2..=7).contains(&spawns), "{spawns} spawns in 2 s");
}

#[test]
fn request_bodies_over_6_mb_are_refused_before_anything_runs() {
    let server = serve(&[handler("ok", "ok", "")]);
    let body = vec![b'a'; 6_291_557];
    let reply = server.request("POST", "/ok", &[("content-type", "text/plain")], Some(&body));
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["message"], "Request Entity Too Large");
    assert_eq!(worker(&server, "ok")["cold_starts"], 0, "nothing may be spawned for it");
    let fits = vec![b'a'; 1_000_000];
    assert_eq!(server.request("POST", "/ok", &[("content-type", "text/plain")], Some(&fits)).status, 200);
}

#[test]
fn responses_over_6_mb_fail_with_response_size_too_large() {
    let server = serve(&[handler("huge", "huge", "")]);
    let reply = server.get("/huge");
    assert_eq!(reply.status, 502, "{}", &reply.body[..reply.body.len().min(200)]);
    assert_eq!(reply.json()["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(server.get("/huge").status, 502, "the worker keeps serving");
    assert_eq!(worker(&server, "huge")["restarts"], 0);
}

#[test]
fn reserved_concurrency_throttles_at_once() {
    let server = serve(&[
        handler("reserved", "record", "reserved_concurrency = 1"),
        handler("none", "ok", "reserved_concurrency = 0"),
    ]);
    let replies = parallel(&server, &["/reserved?s=0.5"; 4]);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&429) && statuses.contains(&200), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    let throttled = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(throttled.json(), serde_json::json!({"message": "Too Many Requests"}));
    assert_eq!(server.get("/none").status, 429);
    let status = server.status();
    assert_eq!(status["handlers"]["none"]["workers"].as_array().unwrap().len(), 0);
    assert!(status["handlers"]["reserved"]["throttled"].as_u64().unwrap() >= 1);
}

#[test]
fn the_account_limit_caps_all_handlers_together() {
    let handlers = [handler("a", "record", ""), handler("b", "record", "")].concat();
    let config = format!("[tool.smyth]\nport = 0\naccount_concurrency = 1\n\n{handlers}");
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", HANDLERS)]);
    let statuses: Vec<u16> = parallel(&server, &["/a?s=0.5", "/b?s=0.5"]).iter().map(|r| r.status).collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 429], "{statuses:?}");
}

#[test]
fn a_full_queue_answers_429() {
    let server = serve(&[handler("q", "record", "queue_size = 1")]);
    let statuses: Vec<u16> = parallel(&server, &["/q?s=0.5"; 4]).iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "one running, one queued: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
}

#[test]
fn a_queued_request_whose_client_left_is_not_run() {
    let server = serve(&[handler("rec", "record", "")]);
    let impatient: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_millis(300))).build().into();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| server.get("/rec?id=first&s=1"));
        server.wait_for("the first request to run", Duration::from_secs(10), || {
            worker(&server, "rec")["state"] == "busy"
        });
        let gone = impatient.get(server.url("/rec?id=gone")).call();
        assert!(gone.is_err(), "the impatient client must time out while queued");
        assert_eq!(first.join().unwrap().status, 200);
    });
    assert_eq!(server.get("/rec?id=last").status, 200);
    let log = std::fs::read_to_string(server.path().join("record.log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["first", "last"]);
}

#[test]
fn a_burst_of_mixed_requests_gets_an_answer_for_every_one() {
    let server = serve(&[
        handler("ok", "ok", "concurrency = 2"),
        handler("boom", "boom", ""),
        handler("crash", "exit_once", ""),
        handler("sleepy", "sleepy", "timeout = 0.5"),
    ]);
    let paths: Vec<&str> =
        ["/ok", "/boom", "/crash", "/sleepy?s=2", "/ok"].iter().cycle().take(40).copied().collect();
    let replies = parallel(&server, &paths);
    for (path, reply) in paths.iter().zip(&replies) {
        let expected: &[u16] = match *path {
            "/ok" => &[200],
            "/boom" => &[502],
            "/crash" => &[200, 502],
            _ => &[504],
        };
        assert!(expected.contains(&reply.status), "{path}: {reply:?}");
    }
    let pids: HashSet<u64> = (0..5).map(|_| server.get("/ok").json()["pid"].as_u64().unwrap()).collect();
    assert!(!pids.is_empty() && pids.len() <= 2);
}
