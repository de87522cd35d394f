//! One managed-instances execution environment's whole lifecycle as a pure function,
//! `step(environment, event, facts) -> effects`: N slots, each idle, waiting for a process's `/next`,
//! running in a process, or timed out (answered, the code still running). The environment's
//! processes park their `/next` calls in one queue; a slot's invocation goes to any parked call.
//! The actor (`actor.rs`) feeds it messages and carries out the effects.

use std::collections::VecDeque;

pub use super::environment::{Effect, Environment, Event, Facts, Job, Phase, Poll, Slot};
use crate::invocation::{FailureKind, Outcome};
use crate::messages::RuntimeApiError;

/// Feeds one event through the environment.
pub fn step(env: &mut Environment, event: Event, facts: &Facts) -> Vec<Effect> {
    let mut fx = Vec::new();
    match event {
        Event::Run { slot, job } => {
            if facts.shutting_down {
                fx.push(Effect::Refuse { reply: job.reply });
                fx.push(Effect::SlotChanged { slot, finished: true });
                return fx;
            }
            env.slots[slot] = Slot::Waiting { job, deadline: None };
            fx.push(Effect::SlotChanged { slot, finished: false });
            if env.phase == Phase::Cold {
                env.phase = Phase::Spawning;
                fx.push(Effect::Spawn);
            }
        }
        Event::Spawned { pid } => {
            env.phase = Phase::Starting { pid, since: facts.now, init_error: None };
            fx.push(Effect::ArmInit { pid, after: facts.init_timeout });
        }
        Event::SpawnFailed { message } => {
            env.phase = Phase::Cold;
            fail_all(env, &mut fx, |id| {
                (FailureKind::Init("Runtime.ExitError".into()), format!("RequestId: {id} Error: {message}"))
            });
        }
        Event::Next { waiter, holder } => {
            if let Phase::Starting { pid, since, init_error: None } = env.phase {
                env.phase = Phase::Ready { pid };
                fx.push(Effect::InitDone { duration: facts.now - since });
            }
            // A process that asks again is done with the timed-out invocation it held.
            for (i, slot) in env.slots.iter_mut().enumerate() {
                if matches!(slot, Slot::TimedOut { holder: h, .. } if *h == holder) {
                    *slot = Slot::Idle;
                    fx.push(Effect::SlotChanged { slot: i, finished: true });
                }
            }
            env.polls.push_back(Poll { waiter, holder });
            fx.push(Effect::Api(Ok(())));
        }
        Event::Result { request_id, body, is_error } => {
            let Some(i) = find(env, &request_id) else {
                fx.push(Effect::Api(Err(RuntimeApiError::InvalidRequestId)));
                return fx;
            };
            match std::mem::take(&mut env.slots[i]) {
                Slot::Running { job, started, .. } => {
                    let outcome = if is_error {
                        Outcome::HandlerError { request_id, body }
                    } else {
                        Outcome::Success { request_id, body }
                    };
                    fx.push(Effect::Answer {
                        reply: job.reply,
                        log: job.invocation.log,
                        outcome,
                        duration: Some(facts.now - started),
                    });
                }
                Slot::TimedOut { .. } => {} // answered already; the code has now finished
                other => {
                    env.slots[i] = other;
                    fx.push(Effect::Api(Err(RuntimeApiError::InvalidRequestId)));
                    return fx;
                }
            }
            fx.push(Effect::SlotChanged { slot: i, finished: true });
            fx.push(Effect::Api(Ok(())));
        }
        Event::TooLarge { request_id } => {
            if let Some(i) = find(env, &request_id) {
                if let Slot::Running { job, started, .. } = std::mem::take(&mut env.slots[i]) {
                    let message = format!("RequestId: {request_id} Error: Response payload size exceeded maximum allowed payload size (6291556 bytes).");
                    let outcome =
                        Outcome::Failed { request_id, error: FailureKind::ResponseTooLarge, message };
                    fx.push(Effect::Answer {
                        reply: job.reply,
                        log: job.invocation.log,
                        outcome,
                        duration: Some(facts.now - started),
                    });
                }
                fx.push(Effect::SlotChanged { slot: i, finished: true });
            }
            fx.push(Effect::Api(Ok(())));
        }
        Event::InitError { error_type, message } => match &mut env.phase {
            Phase::Starting { pid, init_error, .. } => {
                // The first report wins; the other processes' are refused, as AWS does (awslambdaric
                // ignores that 403).
                if init_error.is_some() {
                    fx.push(Effect::Api(Err(forbidden("init error already reported"))));
                } else {
                    *init_error = Some((error_type, message));
                    fx.push(Effect::Kill { pid: *pid, force: true });
                    fx.push(Effect::Api(Ok(())));
                }
            }
            _ => fx.push(Effect::Api(Err(forbidden("init is over")))),
        },
        Event::InitTimeout { pid } => {
            if let Phase::Starting { pid: p, init_error, .. } = &mut env.phase {
                if *p == pid && init_error.is_none() {
                    let seconds = facts.init_timeout.as_secs_f64();
                    *init_error = Some((
                        "Sandbox.Timedout".into(),
                        format!("Init timed out after {seconds:.2} seconds"),
                    ));
                    fx.push(Effect::Kill { pid, force: true });
                }
            }
        }
        Event::Deadline { request_id } => {
            let Some(i) = find(env, &request_id) else { return fx };
            let seconds = facts.timeout.as_secs_f64();
            let message = format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds");
            let outcome = Outcome::Failed {
                request_id: request_id.clone(),
                error: FailureKind::Timeout(facts.timeout),
                message,
            };
            match std::mem::take(&mut env.slots[i]) {
                Slot::Waiting { job, .. } => {
                    fx.push(Effect::Answer {
                        reply: job.reply,
                        log: job.invocation.log,
                        outcome,
                        duration: Some(facts.timeout),
                    });
                    fx.push(Effect::SlotChanged { slot: i, finished: true });
                }
                // Managed instances report the timeout and leave the code running.
                Slot::Running { job, holder, .. } => {
                    env.slots[i] = Slot::TimedOut { request_id, holder };
                    fx.push(Effect::Answer {
                        reply: job.reply,
                        log: job.invocation.log,
                        outcome,
                        duration: Some(facts.timeout),
                    });
                    fx.push(Effect::SlotChanged { slot: i, finished: false });
                }
                other => env.slots[i] = other,
            }
        }
        Event::ProcessGone { pid } => {
            env.polls.retain(|p| p.holder != pid);
            for i in 0..env.slots.len() {
                if env.slots[i].holder() != Some(pid) {
                    continue;
                }
                if let Slot::Running { job, started, .. } = std::mem::take(&mut env.slots[i]) {
                    let message = format!(
                        "RequestId: {} Error: Runtime exited without providing a reason",
                        job.request_id
                    );
                    let outcome =
                        Outcome::Failed { request_id: job.request_id, error: FailureKind::Exited, message };
                    fx.push(Effect::Answer {
                        reply: job.reply,
                        log: job.invocation.log,
                        outcome,
                        duration: Some(facts.now - started),
                    });
                }
                fx.push(Effect::SlotChanged { slot: i, finished: true });
            }
        }
        Event::Exited { pid, exit } => {
            if env.phase.pid() != Some(pid) {
                return fx;
            }
            let phase = std::mem::replace(&mut env.phase, Phase::Cold);
            env.polls.clear();
            env.recycle = false;
            // Stopped on purpose (a reload): invocations that arrived meanwhile run on a new process.
            if matches!(phase, Phase::Stopping { .. }) && !facts.shutting_down {
                restart_for_waiting(env, &mut fx);
                return fx;
            }
            let init_error = match phase {
                Phase::Starting { init_error, .. } => Some(init_error.unwrap_or_else(|| {
                    ("Runtime.ExitError".into(), format!("Runtime exited with error: {exit}"))
                })),
                _ => None,
            };
            fail_all(env, &mut fx, |id| match &init_error {
                Some((kind, message)) => (FailureKind::Init(kind.clone()), message.clone()),
                None => {
                    (FailureKind::Exited, format!("RequestId: {id} Error: Runtime exited with error: {exit}"))
                }
            });
        }
        Event::Undelivered { request_id } => {
            if let Some(i) = find(env, &request_id) {
                if let Slot::Running { job, deadline, .. } = std::mem::take(&mut env.slots[i]) {
                    env.slots[i] = Slot::Waiting { job, deadline: Some(deadline) };
                }
            }
        }
        Event::Recycle => env.recycle = env.phase.pid().is_some(),
        Event::Shutdown { force } => {
            if let Some(pid) = env.phase.pid() {
                env.phase = Phase::Stopping { pid };
                fx.push(Effect::Kill { pid, force });
            }
        }
    }
    dispatch(env, facts, &mut fx);
    if env.recycle && !env.busy() {
        if let Some(pid) = env.phase.pid().filter(|_| !matches!(env.phase, Phase::Stopping { .. })) {
            env.recycle = false;
            env.phase = Phase::Stopping { pid };
            fx.push(Effect::Kill { pid, force: false });
        }
    }
    fx
}

/// Once the environment is ready: starts the clock of waiting invocations and hands them to parked
/// `/next` calls, oldest slot first.
fn dispatch(env: &mut Environment, facts: &Facts, fx: &mut Vec<Effect>) {
    if !matches!(env.phase, Phase::Ready { .. }) {
        return;
    }
    for i in 0..env.slots.len() {
        let Slot::Waiting { job, deadline } = &mut env.slots[i] else { continue };
        let due = *deadline.get_or_insert_with(|| {
            fx.push(Effect::ArmDeadline { request_id: job.request_id.clone(), after: facts.timeout });
            facts.now + facts.timeout
        });
        let Some(poll) = pop_live_poll(&mut env.polls) else { continue };
        let Slot::Waiting { job, .. } = std::mem::take(&mut env.slots[i]) else { unreachable!() };
        fx.push(Effect::Deliver {
            waiter: poll.waiter,
            request_id: job.request_id.clone(),
            deadline: facts.wall + due.saturating_duration_since(facts.now),
            invocation: job.invocation.clone(),
        });
        env.slots[i] = Slot::Running { job, holder: poll.holder, started: facts.now, deadline: due };
        fx.push(Effect::SlotChanged { slot: i, finished: false });
    }
}

/// The oldest parked `/next` whose caller still waits.
fn pop_live_poll(polls: &mut VecDeque<Poll>) -> Option<Poll> {
    while let Some(poll) = polls.pop_front() {
        if !poll.waiter.is_closed() {
            return Some(poll);
        }
    }
    None
}

fn find(env: &Environment, request_id: &str) -> Option<usize> {
    env.slots.iter().position(|s| s.request_id() == Some(request_id))
}

/// After a deliberate stop: frees what ran on the old process and starts a new one for the
/// invocations still waiting.
fn restart_for_waiting(env: &mut Environment, fx: &mut Vec<Effect>) {
    for i in 0..env.slots.len() {
        match std::mem::take(&mut env.slots[i]) {
            Slot::Waiting { job, .. } => env.slots[i] = Slot::Waiting { job, deadline: None },
            Slot::Idle => {}
            Slot::Running { job, .. } => {
                let message =
                    format!("RequestId: {} Error: Runtime exited without providing a reason", job.request_id);
                let outcome =
                    Outcome::Failed { request_id: job.request_id, error: FailureKind::Exited, message };
                fx.push(Effect::Answer {
                    reply: job.reply,
                    log: job.invocation.log,
                    outcome,
                    duration: None,
                });
                fx.push(Effect::SlotChanged { slot: i, finished: true });
            }
            Slot::TimedOut { .. } => fx.push(Effect::SlotChanged { slot: i, finished: true }),
        }
    }
    if env.busy() {
        env.phase = Phase::Spawning;
        fx.push(Effect::Spawn);
    }
}

/// Fails every waiting or running invocation (the environment is gone) and frees every slot.
fn fail_all(env: &mut Environment, fx: &mut Vec<Effect>, failure: impl Fn(&str) -> (FailureKind, String)) {
    for i in 0..env.slots.len() {
        match std::mem::take(&mut env.slots[i]) {
            Slot::Idle => continue,
            Slot::Waiting { job, .. } | Slot::Running { job, .. } => {
                let (error, message) = failure(&job.request_id);
                let outcome = Outcome::Failed { request_id: job.request_id, error, message };
                fx.push(Effect::Answer {
                    reply: job.reply,
                    log: job.invocation.log,
                    outcome,
                    duration: None,
                });
            }
            Slot::TimedOut { .. } => {}
        }
        fx.push(Effect::SlotChanged { slot: i, finished: true });
    }
}

fn forbidden(why: &str) -> RuntimeApiError {
    RuntimeApiError::InvalidStateTransition(format!("InvalidStateTransition: {why}"))
}
