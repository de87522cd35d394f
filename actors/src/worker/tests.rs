//! The worker's decisions, tested without a process: every (state, event) pair in one table, then
//! the sequences issue 8 describes (post then hang, a hanging import, an outsider, shutdown).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use smyth_config::Strategy;
use tokio::sync::oneshot;

use super::machine::*;
use crate::invocation::{FailureKind, Invocation, InvokeResult, Outcome, Rejection};
use crate::messages::{NextEvent, RuntimeApiError};
use crate::process::Exit;
use crate::state::StateKind;

const PID: u32 = 7;
const RID: &str = "r1";

fn facts(now: Instant) -> Facts {
    Facts {
        now,
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        timeout: Duration::from_secs(3),
        init_timeout: Duration::from_secs(10),
        idle_timeout: Some(Duration::from_secs(60)),
        strategy: Strategy::FirstWarm,
        provisioned: false,
        shutting_down: false,
        snap_start: None,
    }
}

fn job(request_id: &str) -> (Job, oneshot::Receiver<InvokeResult>) {
    let (reply, answer) = oneshot::channel();
    let invocation = Invocation::of(Bytes::from_static(b"{}"));
    (Job { request_id: request_id.into(), invocation, reply }, answer)
}

fn waiter() -> (Waiter, oneshot::Receiver<NextEvent>) {
    oneshot::channel()
}

/// Keeps the receiving ends alive so that senders in states and effects are not closed.
#[derive(Default)]
struct Ends {
    answers: Vec<oneshot::Receiver<InvokeResult>>,
    events: Vec<oneshot::Receiver<NextEvent>>,
}

impl Ends {
    fn job(&mut self, request_id: &str) -> Job {
        let (job, answer) = job(request_id);
        self.answers.push(answer);
        job
    }

    fn waiter(&mut self) -> Waiter {
        let (waiter, event) = waiter();
        self.events.push(event);
        waiter
    }
}

/// A representative state of each kind: idle ones without a job, busy with `RID` in flight.
fn state_of(kind: StateKind, since: Instant, ends: &mut Ends) -> State {
    match kind {
        StateKind::Cold => State::Cold { job: None, suppress: false },
        StateKind::Starting => State::Starting {
            pid: PID,
            since,
            deadline: since + Duration::from_secs(10),
            suppressed: false,
            job: None,
            init_error: None,
            restoring: false,
        },
        StateKind::Warm => State::Warm { pid: PID, since, waiter: Some(ends.waiter()), job: None },
        StateKind::Busy => State::Busy {
            pid: PID,
            flight: Flight {
                request_id: RID.into(),
                job: Some(ends.job(RID)),
                started: since,
                init_duration: None,
                capture: None,
                answered: None,
            },
            queued: None,
            recycle: false,
        },
        StateKind::Stopping => State::Stopping { pid: PID, job: None, suppress: false },
        StateKind::Backoff => unreachable!("backoff is a status view of a cold slot"),
    }
}

/// One event of each kind, aimed at this worker's process and request.
fn events(since: Instant, ends: &mut Ends) -> Vec<(&'static str, Event)> {
    vec![
        ("run", Event::Run { job: ends.job("r2"), doomed: false }),
        ("warmup", Event::Warmup),
        ("spawned", Event::Spawned { pid: PID }),
        ("spawn failed", Event::SpawnFailed { message: "no such file".into() }),
        (
            "init error",
            Event::InitError { error_type: "Runtime.ImportModuleError".into(), body: Bytes::new() },
        ),
        ("next", Event::Next { waiter: ends.waiter() }),
        (
            "response",
            Event::Response { request_id: RID.into(), body: Bytes::from_static(b"1"), is_error: false },
        ),
        (
            "error",
            Event::Response { request_id: RID.into(), body: Bytes::from_static(b"{}"), is_error: true },
        ),
        ("too large", Event::TooLarge { request_id: RID.into() }),
        ("undelivered", Event::Undelivered { request_id: RID.into() }),
        ("init timeout", Event::InitTimeout { pid: PID }),
        ("deadline", Event::Deadline { request_id: RID.into() }),
        ("idle", Event::IdleTimeout { since }),
        ("out of memory", Event::OutOfMemory { pid: PID }),
        ("exit", Event::Exit { pid: PID, exit: Exit::Code(1) }),
        ("recycle", Event::Recycle),
        ("shutdown", Event::Shutdown { force: false }),
        ("outsider", Event::Outsider),
        ("restore next", Event::RestoreNext),
        ("restore timeout", Event::RestoreTimeout { pid: PID }),
        (
            "template failed",
            Event::TemplateFailed {
                error_type: "Runtime.BeforeSnapshotError".into(),
                message: "boom".into(),
            },
        ),
    ]
}

/// The effects' names, in order, for the table.
fn names(effects: &[Effect]) -> String {
    let name = |effect: &Effect| match effect {
        Effect::Spawn { .. } => "spawn".to_string(),
        Effect::Kill { force: true, .. } => "kill".into(),
        Effect::Kill { force: false, .. } => "term".into(),
        Effect::Deliver { .. } => "deliver".into(),
        Effect::Answer { outcome: Outcome::Success { .. }, .. } => "answer ok".into(),
        Effect::Answer { outcome: Outcome::HandlerError { .. }, .. } => "answer error".into(),
        Effect::Answer { outcome: Outcome::Failed { error, .. }, .. } => {
            format!("answer {}", error.error_type())
        }
        Effect::Refuse { .. } => "refuse".into(),
        Effect::Api(Ok(())) => "api ok".into(),
        Effect::Api(Err(err)) => format!("api {}", err.error_type()),
        Effect::Arm { timer: Timer::Init { .. }, .. } => "arm init".into(),
        Effect::Arm { timer: Timer::Deadline { .. }, .. } => "arm deadline".into(),
        Effect::Arm { timer: Timer::Idle { .. }, .. } => "arm idle".into(),
        Effect::Arm { timer: Timer::Restore { .. }, .. } => "arm restore".into(),
        Effect::SnapshotTaken { .. } => "snapshot taken".into(),
        Effect::ColdStart => "cold start".into(),
        Effect::InitDone { .. } => "init done".into(),
        Effect::Invoked => "invoked".into(),
        Effect::Restart => "restart".into(),
        Effect::Report { finished: true, .. } => "finished".into(),
        Effect::Report { init_error: Some(_), .. } => "report init error".into(),
        Effect::Report { .. } => "report".into(),
        Effect::Warn(_) => "warn".into(),
    };
    effects.iter().map(name).collect::<Vec<_>>().join(", ")
}

#[test]
fn every_state_and_event_pair() {
    use StateKind::*;
    // (state, event) → (next state, effects). An idle state has no job; busy has `RID` in flight.
    let table: &[(StateKind, &str, StateKind, &str)] = &[
        (Cold, "run", Cold, "spawn"),
        (Cold, "warmup", Cold, "spawn"),
        (Cold, "spawned", Starting, "cold start, arm init, report"),
        (Cold, "spawn failed", Cold, "warn, report init error"),
        (Cold, "init error", Cold, "api InvalidStateTransition"),
        (Cold, "next", Cold, "api InvalidStateTransition"),
        (Cold, "response", Cold, "api InvalidRequestID"),
        (Cold, "error", Cold, "api InvalidRequestID"),
        (Cold, "too large", Cold, "api InvalidRequestID"),
        (Cold, "undelivered", Cold, ""),
        (Cold, "init timeout", Cold, ""),
        (Cold, "deadline", Cold, ""),
        (Cold, "idle", Cold, ""),
        (Cold, "out of memory", Cold, ""),
        (Cold, "exit", Cold, ""),
        (Cold, "recycle", Cold, ""),
        (Cold, "shutdown", Cold, ""),
        (Cold, "outsider", Cold, "api AccessDeniedException"),
        (Cold, "restore next", Cold, "api InvalidStateTransition"),
        (Cold, "restore timeout", Cold, ""),
        (Cold, "template failed", Cold, "report init error"),
        (Starting, "run", Starting, ""),
        (Starting, "warmup", Starting, ""),
        (Starting, "spawned", Starting, ""),
        (Starting, "spawn failed", Starting, ""),
        (Starting, "init error", Starting, "api ok"),
        (Starting, "next", Warm, "api ok, init done, arm idle, report"),
        (Starting, "response", Starting, "api InvalidRequestID"),
        (Starting, "error", Starting, "api InvalidRequestID"),
        (Starting, "too large", Starting, "api InvalidRequestID"),
        (Starting, "undelivered", Starting, ""),
        (Starting, "init timeout", Stopping, "kill, warn, restart, report init error"),
        (Starting, "deadline", Starting, ""),
        (Starting, "idle", Starting, ""),
        (Starting, "out of memory", Stopping, "kill, restart, report init error"),
        (Starting, "exit", Cold, "restart, report init error"),
        (Starting, "recycle", Stopping, "kill, report"),
        (Starting, "shutdown", Stopping, "term, report"),
        (Starting, "outsider", Starting, "api AccessDeniedException"),
        (Starting, "restore next", Starting, "api InvalidStateTransition"),
        (Starting, "restore timeout", Starting, ""),
        (Starting, "template failed", Starting, ""),
        (Warm, "run", Busy, "invoked, deliver, arm deadline, report"),
        (Warm, "warmup", Warm, ""),
        (Warm, "spawned", Warm, ""),
        (Warm, "spawn failed", Warm, ""),
        (Warm, "init error", Warm, "api InvalidStateTransition"),
        (Warm, "next", Warm, "api InvalidStateTransition"),
        (Warm, "response", Warm, "api InvalidRequestID"),
        (Warm, "error", Warm, "api InvalidRequestID"),
        (Warm, "too large", Warm, "api InvalidRequestID"),
        (Warm, "undelivered", Warm, ""),
        (Warm, "init timeout", Warm, ""),
        (Warm, "deadline", Warm, ""),
        (Warm, "idle", Stopping, "kill, report"),
        (Warm, "out of memory", Stopping, "kill, restart, report"),
        (Warm, "exit", Cold, "restart, warn, report"),
        (Warm, "recycle", Stopping, "kill, report"),
        (Warm, "shutdown", Stopping, "term, report"),
        (Warm, "outsider", Warm, "api AccessDeniedException"),
        (Warm, "restore next", Warm, "api InvalidStateTransition"),
        (Warm, "restore timeout", Warm, ""),
        (Warm, "template failed", Warm, ""),
        (Busy, "run", Busy, "warn, refuse"),
        (Busy, "warmup", Busy, ""),
        (Busy, "spawned", Busy, ""),
        (Busy, "spawn failed", Busy, ""),
        (Busy, "init error", Busy, "api InvalidStateTransition"),
        (Busy, "next", Busy, "api InvalidStateTransition"),
        (Busy, "response", Busy, "api ok, answer ok, finished"),
        (Busy, "error", Busy, "api ok, answer error, finished"),
        (Busy, "too large", Busy, "api ok, answer Function.ResponseSizeTooLarge, finished"),
        (Busy, "undelivered", Warm, ""),
        (Busy, "init timeout", Busy, ""),
        (Busy, "deadline", Stopping, "kill, warn, answer Sandbox.Timedout, finished"),
        (Busy, "idle", Busy, ""),
        (Busy, "out of memory", Stopping, "kill, restart, answer Runtime.OutOfMemory, finished"),
        (Busy, "exit", Cold, "restart, warn, answer Runtime.ExitError, finished"),
        (Busy, "recycle", Busy, ""),
        (Busy, "shutdown", Busy, "term"),
        (Busy, "outsider", Busy, "api AccessDeniedException"),
        (Busy, "restore next", Busy, "api InvalidStateTransition"),
        (Busy, "restore timeout", Busy, ""),
        (Busy, "template failed", Busy, ""),
        (Stopping, "run", Stopping, ""),
        (Stopping, "warmup", Stopping, ""),
        (Stopping, "spawned", Stopping, ""),
        (Stopping, "spawn failed", Stopping, ""),
        (Stopping, "init error", Stopping, "api InvalidStateTransition"),
        (Stopping, "next", Stopping, "api InvalidStateTransition"),
        (Stopping, "response", Stopping, "api InvalidRequestID"),
        (Stopping, "error", Stopping, "api InvalidRequestID"),
        (Stopping, "too large", Stopping, "api InvalidRequestID"),
        (Stopping, "undelivered", Stopping, ""),
        (Stopping, "init timeout", Stopping, ""),
        (Stopping, "deadline", Stopping, ""),
        (Stopping, "idle", Stopping, ""),
        (Stopping, "out of memory", Stopping, ""),
        (Stopping, "exit", Cold, "report"),
        (Stopping, "recycle", Stopping, ""),
        (Stopping, "shutdown", Stopping, "term, report"),
        (Stopping, "outsider", Stopping, "api AccessDeniedException"),
        (Stopping, "restore next", Stopping, "api InvalidStateTransition"),
        (Stopping, "restore timeout", Stopping, ""),
        (Stopping, "template failed", Stopping, ""),
    ];
    let since = Instant::now();
    let mut seen = 0;
    for kind in StateKind::ALL {
        let mut ends = Ends::default();
        for (event_name, event) in events(since, &mut ends) {
            let row = table.iter().find(|(s, e, _, _)| *s == kind && *e == event_name);
            let (_, _, expected_state, expected_effects) =
                row.unwrap_or_else(|| panic!("no row for ({kind:?}, {event_name})"));
            let state = state_of(kind, since, &mut ends);
            let (next, effects) = step(state, event, &facts(since + Duration::from_millis(5)));
            assert_eq!(
                (next.kind(), names(&effects).as_str()),
                (*expected_state, *expected_effects),
                "({kind:?}, {event_name})"
            );
            if next.kind() != kind {
                assert!(
                    crate::state::allowed(kind, next.kind()),
                    "({kind:?}, {event_name}) is not an allowed move"
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, table.len(), "every row is a pair that exists");
}

/// Runs `events` from `state`, returning the last state and every effect.
fn run(mut state: State, steps: Vec<(Event, Facts)>) -> (State, Vec<Effect>) {
    let mut all = Vec::new();
    for (event, facts) in steps {
        let (next, effects) = step(state, event, &facts);
        state = next;
        all.extend(effects);
    }
    (state, all)
}

#[test]
fn the_timeout_stays_armed_after_a_result_until_the_runtime_asks_for_next() {
    let t0 = Instant::now();
    let mut ends = Ends::default();
    let busy = state_of(StateKind::Busy, t0, &mut ends);
    let response =
        Event::Response { request_id: RID.into(), body: Bytes::from_static(b"1"), is_error: false };
    let (state, effects) = step(busy, response, &facts(t0));
    assert_eq!(state.kind(), StateKind::Busy, "the invoke phase lasts until /next");
    assert!(super::machine::timer_live(&Timer::Deadline { request_id: RID.into() }, &state));
    assert!(matches!(effects[1], Effect::Answer { outcome: Outcome::Success { .. }, .. }));
    // The next invocation is assigned meanwhile, and waits.
    let queued = ends.job("r2");
    let (state, effects) = step(state, Event::Run { job: queued, doomed: false }, &facts(t0));
    assert!(effects.is_empty(), "{}", names(&effects));
    // The handler never asks for /next: at the deadline it is killed, and the queued invocation gets
    // a fresh process once the old one is reaped.
    let (state, effects) = step(state, Event::Deadline { request_id: RID.into() }, &facts(t0));
    assert_eq!((state.kind(), names(&effects).as_str()), (StateKind::Stopping, "kill, warn, report"));
    let (state, effects) = step(state, Event::Exit { pid: PID, exit: Exit::Signal(9) }, &facts(t0));
    assert_eq!((state.kind(), names(&effects).as_str()), (StateKind::Cold, "report, spawn"));
    assert!(
        matches!(state, State::Cold { job: Some(_), .. }),
        "the queued invocation waits for the new process"
    );
}

#[test]
fn a_result_then_next_ends_the_invocation() {
    let t0 = Instant::now();
    let mut ends = Ends::default();
    let busy = state_of(StateKind::Busy, t0, &mut ends);
    let response =
        Event::Response { request_id: RID.into(), body: Bytes::from_static(b"1"), is_error: false };
    let (state, _) =
        run(busy, vec![(response, facts(t0)), (Event::Next { waiter: ends.waiter() }, facts(t0))]);
    assert_eq!(state.kind(), StateKind::Warm);
    assert!(!super::machine::timer_live(&Timer::Deadline { request_id: RID.into() }, &state));
    // A late result for the finished invocation is refused.
    let late = Event::Response { request_id: RID.into(), body: Bytes::new(), is_error: false };
    let (_, effects) = step(state, late, &facts(t0));
    assert_eq!(names(&effects), "api InvalidRequestID");
}

#[test]
fn a_cold_start_hands_its_invocation_to_the_first_next_as_an_allowed_move() {
    let t0 = Instant::now();
    let mut ends = Ends::default();
    let f = facts(t0);
    let (state, _) = run(
        State::Cold { job: None, suppress: false },
        vec![(Event::Run { job: ends.job(RID), doomed: false }, f), (Event::Spawned { pid: PID }, f)],
    );
    assert_eq!(state.kind(), StateKind::Starting);
    let (next, effects) = step(state, Event::Next { waiter: ends.waiter() }, &f);
    assert_eq!(next.kind(), StateKind::Busy, "{}", names(&effects));
    assert!(crate::state::allowed(StateKind::Starting, StateKind::Busy), "a cold start's own move");
}

#[test]
fn a_hanging_init_is_retried_once_inside_the_invocation_then_times_out() {
    let t0 = Instant::now();
    let mut ends = Ends::default();
    let (job, mut answer) = job(RID);
    let f = facts(t0);
    let (state, effects) = run(
        State::Cold { job: None, suppress: false },
        vec![(Event::Run { job, doomed: false }, f), (Event::Spawned { pid: PID }, f)],
    );
    assert_eq!(names(&effects), "spawn, cold start, arm init, report");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Arm { timer: Timer::Init { .. }, after } if *after == f.init_timeout)));
    // init_timeout passes: killed, and the init is retried in a new process.
    let late = facts(t0 + f.init_timeout);
    let (state, effects) = run(
        state,
        vec![
            (Event::InitTimeout { pid: PID }, late),
            (Event::Exit { pid: PID, exit: Exit::Signal(9) }, late),
        ],
    );
    assert_eq!(names(&effects), "kill, warn, restart, report, spawn");
    assert!(answer.try_recv().is_err(), "the request still waits");
    let (state, effects) = step(state, Event::Spawned { pid: 8 }, &late);
    // The retry is bounded by the function timeout, not init_timeout.
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Arm { timer: Timer::Init { pid: 8 }, after } if *after == f.timeout)));
    let (state, effects) =
        step(state, Event::InitTimeout { pid: 8 }, &facts(t0 + f.init_timeout + f.timeout));
    assert_eq!(state.kind(), StateKind::Stopping);
    assert_eq!(names(&effects), "kill, warn, restart, answer Sandbox.Timedout, finished");
    let _ = ends.waiter();
    drop(effects); // performs the answer
}

#[test]
fn a_retried_init_that_finishes_keeps_the_invocations_deadline() {
    let t0 = Instant::now();
    let (job, _answer) = job(RID);
    let f = facts(t0);
    let retry = State::Cold { job: Some(job), suppress: true };
    let (state, _) = step(retry, Event::Spawned { pid: 8 }, &f);
    let (w, _event) = waiter();
    let (state, effects) = step(state, Event::Next { waiter: w }, &facts(t0 + Duration::from_secs(2)));
    assert_eq!(state.kind(), StateKind::Busy);
    let left = effects.iter().find_map(|e| match e {
        Effect::Arm { timer: Timer::Deadline { .. }, after } => Some(*after),
        _ => None,
    });
    assert_eq!(left, Some(Duration::from_secs(1)), "3 s timeout, 2 s of it spent on init");
}

#[test]
fn an_outsider_changes_nothing_and_a_second_next_is_refused() {
    let t0 = Instant::now();
    let mut ends = Ends::default();
    let (parked, mut parked_event) = waiter();
    let warm = State::Warm { pid: PID, since: t0, waiter: Some(parked), job: None };
    let (state, effects) = step(warm, Event::Outsider, &facts(t0));
    assert_eq!(names(&effects), "api AccessDeniedException");
    let (state, effects) = step(state, Event::Next { waiter: ends.waiter() }, &facts(t0));
    assert_eq!(names(&effects), "api InvalidStateTransition");
    // The first /next is still the one that gets the event.
    let (_, effects) = step(state, Event::Run { job: ends.job("r2"), doomed: false }, &facts(t0));
    for effect in effects {
        if let Effect::Deliver { waiter, request_id, .. } = effect {
            let _ = waiter.send(NextEvent {
                request_id,
                deadline_ms: 0,
                function_arn: String::new(),
                trace_id: String::new(),
                client_context: None,
                tenant: None,
                payload: Bytes::new(),
            });
        }
    }
    assert_eq!(parked_event.try_recv().unwrap().request_id, "r2");
}

#[test]
fn a_next_whose_connection_went_away_is_replaced() {
    let t0 = Instant::now();
    let (gone, event) = waiter();
    drop(event);
    let warm = State::Warm { pid: PID, since: t0, waiter: Some(gone), job: None };
    let (fresh, _event) = waiter();
    let (state, effects) = step(warm, Event::Next { waiter: fresh }, &facts(t0));
    assert_eq!(names(&effects), "api ok");
    assert!(matches!(state, State::Warm { waiter: Some(ref w), .. } if !w.is_closed()));
}

#[test]
fn shutdown_never_starts_a_process() {
    let t0 = Instant::now();
    let mut f = facts(t0);
    f.shutting_down = true;
    let (job, mut answer) = job(RID);
    let stopping = State::Stopping { pid: PID, job: Some(job), suppress: false };
    let (state, effects) = step(stopping, Event::Exit { pid: PID, exit: Exit::Signal(15) }, &f);
    assert_eq!(state.kind(), StateKind::Cold);
    assert!(!names(&effects).contains("spawn"), "{}", names(&effects));
    let mut refused = false;
    for effect in effects {
        if let Effect::Refuse { reply, rejection } = effect {
            refused = rejection == Rejection::Unavailable;
            let _ = reply.send(Err(rejection));
        }
    }
    assert!(refused);
    assert!(matches!(answer.try_recv(), Ok(Err(Rejection::Unavailable))));
    let (_, effects) = step(State::Cold { job: None, suppress: false }, Event::Warmup, &f);
    assert!(effects.is_empty());
}

#[test]
fn init_failures_carry_the_reported_type() {
    let body = Bytes::from_static(
        br#"{"errorMessage":"No module named 'x'","errorType":"Runtime.ImportModuleError"}"#,
    );
    let (kind, message) = init_failure(Some(("Runtime.ImportModuleError".into(), body)), Exit::Code(1));
    assert_eq!(
        (kind, message.as_str()),
        (FailureKind::Init("Runtime.ImportModuleError".into()), "No module named 'x'")
    );
    let (kind, message) = init_failure(None, Exit::Signal(9));
    assert_eq!(
        (kind.error_type(), message.as_str()),
        ("Runtime.ExitError", "Runtime exited with error: signal: killed")
    );
    let _ = RuntimeApiError::InvalidRequestId;
}

#[path = "snapstart_tests.rs"]
mod snapstart;
