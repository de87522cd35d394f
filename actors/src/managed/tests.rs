//! The environment's machine, event by event, with no process: each row is a situation, an event,
//! and what must follow.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::machine::{step, Effect, Environment, Event, Facts, Job, Phase, Slot};
use crate::invocation::{Invocation, InvokeResult, Outcome};
use crate::messages::NextEvent;

fn facts() -> Facts {
    Facts {
        now: Instant::now(),
        wall: SystemTime::now(),
        timeout: Duration::from_secs(3),
        init_timeout: Duration::from_secs(10),
        shutting_down: false,
    }
}

fn job(id: &str) -> (Job, oneshot::Receiver<InvokeResult>) {
    let (reply, answer) = oneshot::channel();
    let invocation = Invocation::of(bytes::Bytes::from_static(b"{}"));
    (Job { request_id: id.into(), invocation, reply }, answer)
}

fn next(env: &mut Environment, holder: u32) -> (Vec<Effect>, oneshot::Receiver<NextEvent>) {
    let (waiter, event) = oneshot::channel();
    (step(env, Event::Next { waiter, holder }, &facts()), event)
}

/// An environment of `slots` slots whose main process 100 is ready.
fn ready(slots: usize) -> Environment {
    let mut env = Environment::new(slots);
    env.phase = Phase::Ready { pid: 100 };
    env
}

fn names(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Spawn => "spawn".into(),
            Effect::Kill { force, .. } => format!("kill force={force}"),
            Effect::Deliver { request_id, .. } => format!("deliver {request_id}"),
            Effect::Answer { outcome, .. } => format!("answer {}", outcome_name(outcome)),
            Effect::Refuse { .. } => "refuse".into(),
            Effect::ArmDeadline { request_id, .. } => format!("deadline {request_id}"),
            Effect::ArmInit { .. } => "arm init".into(),
            Effect::InitDone { .. } => "init done".into(),
            Effect::SlotChanged { slot, finished } => format!("slot {slot} finished={finished}"),
            Effect::Api(Ok(())) => "api ok".into(),
            Effect::Api(Err(err)) => format!("api {}", err.error_type()),
        })
        .collect()
}

fn outcome_name(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success { .. } => "success".into(),
        Outcome::HandlerError { .. } => "handler error".into(),
        Outcome::Failed { error, .. } => error.error_type().to_string(),
    }
}

#[test]
fn a_cold_environment_starts_and_its_first_next_ends_init_and_takes_the_waiting_job() {
    let mut env = Environment::new(2);
    let (a, _) = job("a");
    assert_eq!(
        names(&step(&mut env, Event::Run { slot: 0, job: a }, &facts())),
        ["slot 0 finished=false", "spawn"]
    );
    assert_eq!(env.phase, Phase::Spawning);
    let (b, _) = job("b");
    assert_eq!(
        names(&step(&mut env, Event::Run { slot: 1, job: b }, &facts())),
        ["slot 1 finished=false"],
        "one spawn"
    );
    assert_eq!(names(&step(&mut env, Event::Spawned { pid: 100 }, &facts())), ["arm init"]);
    let (effects, _) = next(&mut env, 101);
    assert_eq!(
        names(&effects),
        ["init done", "api ok", "deadline a", "deliver a", "slot 0 finished=false", "deadline b"],
        "b waits for a second process"
    );
    let (effects, _) = next(&mut env, 102);
    assert_eq!(names(&effects), ["api ok", "deliver b", "slot 1 finished=false"]);
    assert!(matches!(env.slots[0], Slot::Running { holder: 101, .. }));
    assert!(matches!(env.slots[1], Slot::Running { holder: 102, .. }));
}

#[test]
fn results_answer_their_own_slot_and_unknown_ids_are_refused() {
    let mut env = ready(2);
    let _poll_101 = next(&mut env, 101);
    let _poll_102 = next(&mut env, 102);
    let (a, _) = job("a");
    let (b, _) = job("b");
    step(&mut env, Event::Run { slot: 0, job: a }, &facts());
    step(&mut env, Event::Run { slot: 1, job: b }, &facts());
    let result = |id: &str| Event::Result { request_id: id.into(), body: "1".into(), is_error: false };
    assert_eq!(names(&step(&mut env, result("nope"), &facts())), ["api InvalidRequestID"]);
    assert_eq!(
        names(&step(&mut env, result("a"), &facts())),
        ["answer success", "slot 0 finished=true", "api ok"]
    );
    assert!(matches!(env.slots[0], Slot::Idle));
    assert!(matches!(env.slots[1], Slot::Running { .. }), "the other slot runs on");
}

#[test]
fn a_timeout_is_answered_and_the_slot_stays_taken_until_the_code_finishes() {
    let mut env = ready(1);
    let _poll_101 = next(&mut env, 101);
    let (a, _) = job("a");
    step(&mut env, Event::Run { slot: 0, job: a }, &facts());
    let effects = step(&mut env, Event::Deadline { request_id: "a".into() }, &facts());
    assert_eq!(names(&effects), ["answer Sandbox.Timedout", "slot 0 finished=false"], "no kill");
    assert!(matches!(env.slots[0], Slot::TimedOut { holder: 101, .. }));
    let late = Event::Result { request_id: "a".into(), body: "1".into(), is_error: false };
    assert_eq!(
        names(&step(&mut env, late, &facts())),
        ["slot 0 finished=true", "api ok"],
        "no second answer"
    );
    assert!(matches!(env.slots[0], Slot::Idle));
}

#[test]
fn a_waiting_job_times_out_when_no_process_asks_for_it() {
    let mut env = ready(1);
    let (a, _) = job("a");
    assert_eq!(
        names(&step(&mut env, Event::Run { slot: 0, job: a }, &facts())),
        ["slot 0 finished=false", "deadline a"]
    );
    let effects = step(&mut env, Event::Deadline { request_id: "a".into() }, &facts());
    assert_eq!(names(&effects), ["answer Sandbox.Timedout", "slot 0 finished=true"]);
}

#[test]
fn a_dead_process_fails_its_invocation_and_the_environment_lives_on() {
    let mut env = ready(2);
    let _poll_101 = next(&mut env, 101);
    let (a, _) = job("a");
    step(&mut env, Event::Run { slot: 0, job: a }, &facts());
    let (_, parked) = next(&mut env, 102);
    drop(parked);
    let _again = next(&mut env, 101); // would not happen: 101 is busy; it shows polls are dropped by pid
    let effects = step(&mut env, Event::ProcessGone { pid: 101 }, &facts());
    assert_eq!(names(&effects), ["answer Runtime.ExitError", "slot 0 finished=true"]);
    assert_eq!(env.phase, Phase::Ready { pid: 100 });
    assert!(env.polls.iter().all(|p| p.holder != 101));
}

#[test]
fn the_main_process_exiting_fails_everything_and_an_init_error_names_its_type() {
    let mut env = Environment::new(2);
    let (a, _) = job("a");
    step(&mut env, Event::Run { slot: 0, job: a }, &facts());
    step(&mut env, Event::Spawned { pid: 100 }, &facts());
    let init_error = |t: &str| Event::InitError { error_type: t.into(), message: "boom".into() };
    assert_eq!(
        names(&step(&mut env, init_error("Runtime.ImportModuleError"), &facts())),
        ["kill force=true", "api ok"]
    );
    assert_eq!(
        names(&step(&mut env, init_error("Runtime.ImportModuleError"), &facts())),
        ["api InvalidStateTransition"],
        "a second process's report is refused"
    );
    let effects = step(&mut env, Event::Exited { pid: 100, exit: "exit status: 1".into() }, &facts());
    assert_eq!(names(&effects), ["answer Runtime.ImportModuleError", "slot 0 finished=true"]);
    assert_eq!(env.phase, Phase::Cold);
}

#[test]
fn shutdown_kills_and_refuses_new_work_and_recycle_waits_for_the_last_invocation() {
    let mut env = ready(1);
    let _poll_101 = next(&mut env, 101);
    let (a, _) = job("a");
    step(&mut env, Event::Run { slot: 0, job: a }, &facts());
    assert!(names(&step(&mut env, Event::Recycle, &facts())).is_empty(), "busy: not yet");
    let done = Event::Result { request_id: "a".into(), body: "1".into(), is_error: false };
    let effects = step(&mut env, done, &facts());
    assert_eq!(names(&effects).last().map(String::as_str), Some("kill force=false"));
    assert_eq!(env.phase, Phase::Stopping { pid: 100 });

    let mut env = ready(1);
    assert_eq!(names(&step(&mut env, Event::Shutdown { force: false }, &facts())), ["kill force=false"]);
    let stopping = Facts { shutting_down: true, ..facts() };
    let (b, _) = job("b");
    assert_eq!(
        names(&step(&mut env, Event::Run { slot: 0, job: b }, &stopping)),
        ["refuse", "slot 0 finished=true"]
    );
}

#[test]
fn an_invocation_that_arrives_while_a_reload_stops_the_environment_runs_on_the_next_process() {
    let mut env = ready(1);
    assert_eq!(names(&step(&mut env, Event::Recycle, &facts())), ["kill force=false"], "idle: at once");
    let (a, _) = job("a");
    assert_eq!(names(&step(&mut env, Event::Run { slot: 0, job: a }, &facts())), ["slot 0 finished=false"]);
    let effects = step(&mut env, Event::Exited { pid: 100, exit: "signal: 15".into() }, &facts());
    assert_eq!(names(&effects), ["spawn"]);
    assert!(matches!(env.slots[0], Slot::Waiting { .. }));
    assert_eq!(env.phase, Phase::Spawning);
}
