//! The worker's decisions as one pure function: `step(state, event) -> (state, effects)`. Each state
//! carries what is true only in it (the pid, the invocation in flight, the parked `/next`); the actor
//! owns the process and the clock, feeds every event through `step`, and carries out the effects.
//! Nothing here spawns, kills, sleeps or reads a file, so every (state, event) pair is table-tested.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use smyth_config::Strategy;
use tokio::sync::oneshot;

use super::tail::Capture;
use crate::invocation::{FailureKind, Invocation, Outcome, Rejection};
use crate::messages::{NextEvent, Reply, RuntimeApiError};
use crate::process::Exit;
use crate::state::StateKind;

/// An invocation assigned to this worker, with the request id the runtime will see.
#[derive(Debug)]
pub struct Job {
    pub request_id: String,
    pub invocation: Invocation,
    pub reply: Reply,
}

/// A runtime parked in `GET /next`.
pub type Waiter = oneshot::Sender<NextEvent>;

/// The invocation the runtime is running.
#[derive(Debug)]
pub struct Flight {
    pub request_id: String,
    /// None once its result is answered (the runtime posted it and has not asked for `/next` yet).
    pub job: Option<Job>,
    pub started: Instant,
    /// The init that ran before this invocation (its first after a cold start), for the REPORT line.
    pub init_duration: Option<Duration>,
    /// The lines it prints, when the caller wants its log (`X-Amz-Log-Type: Tail`).
    pub capture: Option<Capture>,
    /// When its result was answered.
    pub answered: Option<Instant>,
}

/// A worker's state; each variant carries what is true only in it.
// `Busy` holds two jobs (the flight and a queued one): one state per worker, moved through `step`
// by value, so a few hundred bytes cost a copy, not an allocation per event as boxing would.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum State {
    /// No live process. `job` waits for the process being spawned; `suppress`: its init is the retry
    /// of one that ran past `init_timeout`.
    Cold { job: Option<Job>, suppress: bool },
    /// Spawned; the runtime is initialising. `suppressed`: this is the retry of an init that ran past
    /// `init_timeout`, running inside the invocation and bounded by `deadline` (the function timeout).
    Starting {
        pid: u32,
        since: Instant,
        deadline: Instant,
        suppressed: bool,
        job: Option<Job>,
        /// What the runtime reported to `/init/error` (or `/restore/error`).
        init_error: Option<(String, Bytes)>,
        /// SnapStart: the environment is being restored (after-restore hooks), bounded by
        /// [`super::snapstart::RESTORE_TIMEOUT`], and its time to `/next` is a restore duration.
        restoring: bool,
    },
    /// Initialised and idle since `since`. `waiter` is its parked `/next`; `job` an invocation waiting
    /// for the runtime to ask (its `/next` went away).
    Warm { pid: u32, since: Instant, waiter: Option<Waiter>, job: Option<Job> },
    /// An invocation is in flight; it ends when the runtime asks for `/next` again, and the timeout
    /// guards it until then. `queued` is the next invocation, assigned once this one was answered.
    /// `recycle`: stop the process once the invocation ends.
    Busy { pid: u32, flight: Flight, queued: Option<Job>, recycle: bool },
    /// Being killed; the slot is cold once the process is reaped. `job` waits for a new process;
    /// `suppress`: its init is the retry of one that timed out.
    Stopping { pid: u32, job: Option<Job>, suppress: bool },
}

impl State {
    pub fn kind(&self) -> StateKind {
        match self {
            State::Cold { .. } => StateKind::Cold,
            State::Starting { .. } => StateKind::Starting,
            State::Warm { .. } => StateKind::Warm,
            State::Busy { .. } => StateKind::Busy,
            State::Stopping { .. } => StateKind::Stopping,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            State::Cold { .. } => None,
            State::Starting { pid, .. }
            | State::Warm { pid, .. }
            | State::Busy { pid, .. }
            | State::Stopping { pid, .. } => Some(*pid),
        }
    }
}

/// Everything that can happen to a worker.
#[derive(Debug)]
pub enum Event {
    /// The supervisor assigns an invocation. `doomed`: the parked process is already dead or dying
    /// (the actor reads /proc when the worker has been idle a while).
    Run { job: Job, doomed: bool },
    /// Start the process ahead of any request (provisioned concurrency).
    Warmup,
    /// The process asked for by [`Effect::Spawn`] started.
    Spawned { pid: u32 },
    /// It could not be started.
    SpawnFailed { message: String },
    /// `POST /init/error`.
    InitError { error_type: String, body: Bytes },
    /// `GET /next`: init done (from starting), or the invoke phase over (from busy).
    Next { waiter: Waiter },
    /// `POST /invocation/{id}/response` or `/error`.
    Response { request_id: String, body: Bytes, is_error: bool },
    /// A result larger than the Runtime API accepts.
    TooLarge { request_id: String },
    /// The parked `/next` found its connection closed when the event arrived: the runtime never got it.
    Undelivered { request_id: String },
    /// The init of process `pid` has run out of time.
    InitTimeout { pid: u32 },
    /// The invocation `request_id` has run out of time.
    Deadline { request_id: String },
    /// Idle since `since` for `idle_timeout`.
    IdleTimeout { since: Instant },
    /// The process passed `memory_size`.
    OutOfMemory { pid: u32 },
    /// Process `pid` exited.
    Exit { pid: u32, exit: Exit },
    /// Replace the process (reload): now if idle or starting, else once the invocation ends.
    Recycle,
    /// The server is stopping: signal the process, start nothing new.
    Shutdown { force: bool },
    /// A Runtime API call from a process outside this worker's process tree.
    Outsider,
    /// SnapStart: `GET /restore/next` (init and the before-snapshot hooks are done: restore now).
    RestoreNext,
    /// SnapStart: the restore of process `pid` has run out of time.
    RestoreTimeout { pid: u32 },
    /// SnapStart: no environment could be restored: the template's init failed with `error_type`.
    TemplateFailed { error_type: String, message: String },
}

/// Timers the actor arms; each fires back as the event of the same name, and a stale one (its pid,
/// request or idle period gone) changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    Init {
        pid: u32,
    },
    Deadline {
        request_id: String,
    },
    Idle {
        since: Instant,
    },
    /// SnapStart: the restore (after-restore hooks) of `pid`.
    Restore {
        pid: u32,
    },
}

/// What the actor must do.
#[derive(Debug)]
pub enum Effect {
    /// Start a process; the actor answers with `Spawned` or `SpawnFailed`.
    Spawn {
        init_type: &'static str,
    },
    /// Kill the process group of `pid`.
    Kill {
        pid: u32,
        force: bool,
    },
    /// Hand an event to the parked runtime (if it hung up, the actor feeds back `Undelivered`).
    Deliver {
        waiter: Waiter,
        request_id: String,
        deadline: SystemTime,
        invocation: Invocation,
    },
    /// Answer the invocation: log its REPORT line (when it ran) first, and send the caller its log.
    Answer {
        reply: Reply,
        outcome: Outcome,
        capture: Option<Capture>,
        report: Option<ReportLine>,
    },
    /// Refuse an invocation that will never run (shutdown).
    Refuse {
        reply: Reply,
        rejection: Rejection,
    },
    /// The answer to the Runtime API call that caused this step.
    Api(Result<(), RuntimeApiError>),
    Arm {
        timer: Timer,
        after: Duration,
    },
    /// A fresh process for this slot: counters and per-process readings start again.
    ColdStart,
    /// Init finished after `duration`.
    InitDone {
        duration: Duration,
    },
    /// An invocation was handed to the runtime.
    Invoked,
    /// The process died or was killed for a fault (counts as a restart).
    Restart,
    /// Tell the supervisor: `finished`, the slot may take its next invocation; `init_error`, the
    /// process died during init with this error (for backoff).
    Report {
        finished: bool,
        init_error: Option<(FailureKind, String)>,
    },
    /// A line for the server log (warnings the user must see: timeouts, crashes).
    Warn(String),
    /// SnapStart, in the environment's own process: init and the before-snapshot hooks took `init`
    /// (an `INIT_REPORT` line).
    SnapshotTaken {
        init: Duration,
    },
}

/// What the REPORT line needs of a finished invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    pub request_id: String,
    pub duration: Duration,
    pub init_duration: Option<Duration>,
}

/// What `step` needs besides the state and the event: the handler's settings and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub now: Instant,
    pub wall: SystemTime,
    pub timeout: Duration,
    pub init_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub strategy: Strategy,
    pub provisioned: bool,
    /// The server is shutting down: never start a process.
    pub shutting_down: bool,
    /// SnapStart, and how this slot's environments are restored.
    pub snap_start: Option<super::snapstart::SnapStart>,
}

pub(super) type Step = (State, Vec<Effect>);

/// The one decision function: the next state and what to do.
pub fn step(state: State, event: Event, facts: &Facts) -> Step {
    use Event as E;
    use State as S;
    match (state, event) {
        // ---- an invocation arrives ----
        (S::Cold { job: None, .. }, E::Run { job, .. }) => start(job, facts),
        (S::Warm { pid, since, waiter: Some(waiter), job: None }, E::Run { job, doomed }) => {
            if doomed || waiter.is_closed() {
                // Dead, or its `/next` is gone: wait for the exit (and a new process) or a new `/next`.
                (S::Warm { pid, since, waiter: None, job: Some(job) }, vec![])
            } else {
                let (state, mut effects) = deliver(pid, waiter, job, None, None, facts);
                effects.insert(0, Effect::Invoked);
                (state, effects)
            }
        }
        (
            S::Starting { pid, since, deadline, suppressed, job: None, init_error, restoring },
            E::Run { job, .. },
        ) => {
            (S::Starting { pid, since, deadline, suppressed, job: Some(job), init_error, restoring }, vec![])
        }
        (S::Busy { pid, flight, queued: None, recycle }, E::Run { job, .. }) if flight.job.is_none() => {
            (S::Busy { pid, flight, queued: Some(job), recycle }, vec![])
        }
        (S::Stopping { pid, job: None, suppress }, E::Run { job, .. }) => {
            (S::Stopping { pid, job: Some(job), suppress }, vec![])
        }
        (state, E::Run { job, .. }) => {
            // The supervisor assigns one invocation at a time: this is a bug, never a silent drop.
            let effects = vec![
                Effect::Warn(format!("invocation assigned to an occupied {} worker", state.kind().as_str())),
                Effect::Refuse { reply: job.reply, rejection: Rejection::Unavailable },
            ];
            (state, effects)
        }

        (S::Cold { job: None, .. }, E::Warmup) if !facts.shutting_down => (
            S::Cold { job: None, suppress: false },
            vec![Effect::Spawn { init_type: init_type(facts, false) }],
        ),

        // ---- the process starts ----
        (S::Cold { job, suppress }, E::Spawned { pid }) => spawned(pid, job, suppress, facts),
        (S::Cold { job, .. }, E::TemplateFailed { error_type, message }) => {
            super::snapstart::template_failed(job, error_type, message)
        }
        (S::Cold { job, .. }, E::SpawnFailed { message }) => {
            let kind = FailureKind::Init("Runtime.ExitError".into());
            let mut effects = vec![Effect::Warn(message.clone())];
            let finished = answer_failure(&mut effects, job, &kind, &message);
            effects.push(Effect::Report { finished, init_error: Some((kind, message)) });
            (S::Cold { job: None, suppress: false }, effects)
        }
        (
            S::Starting { pid, since, deadline, suppressed, job, restoring, .. },
            E::InitError { error_type, body },
        ) => {
            let init_error = Some((error_type, body));
            let state = S::Starting { pid, since, deadline, suppressed, job, init_error, restoring };
            (state, vec![Effect::Api(Ok(()))])
        }
        (state, E::InitError { .. }) => {
            let refusal = RuntimeApiError::InvalidStateTransition("init error reported after init".into());
            (state, vec![Effect::Api(Err(refusal))])
        }

        // ---- SnapStart's restore ----
        (S::Starting { pid, since, job, init_error, restoring: false, .. }, E::RestoreNext)
            if facts.snap_start.is_some() =>
        {
            super::snapstart::restore_next(pid, since, job, init_error, facts)
        }
        (state, E::RestoreNext) => {
            let refusal = RuntimeApiError::InvalidStateTransition("no restore is due".into());
            (state, vec![Effect::Api(Err(refusal))])
        }
        (S::Starting { pid, job, restoring: true, .. }, E::RestoreTimeout { pid: timed }) if pid == timed => {
            super::snapstart::restore_timed_out(pid, job)
        }

        // ---- `/next` ----
        (S::Starting { pid, since, deadline, suppressed, job, .. }, E::Next { waiter }) => {
            let effects = vec![Effect::Api(Ok(())), Effect::InitDone { duration: facts.now - since }];
            // A suppressed init runs inside the invocation: it keeps the deadline it started with.
            let deadline = suppressed.then_some(deadline);
            let timing = Timing { init_duration: Some(facts.now - since), deadline, idle_since: facts.now };
            take_next(effects, pid, waiter, job, timing, facts)
        }
        (S::Warm { pid, since, waiter: Some(parked), job: None }, E::Next { waiter }) => {
            if parked.is_closed() {
                // Its earlier `/next` went away (the runtime reconnected): this one replaces it.
                (S::Warm { pid, since, waiter: Some(waiter), job: None }, vec![Effect::Api(Ok(()))])
            } else {
                let refusal = RuntimeApiError::InvalidStateTransition(
                    "a /next is already waiting for this worker's next invocation".into(),
                );
                (S::Warm { pid, since, waiter: Some(parked), job: None }, vec![Effect::Api(Err(refusal))])
            }
        }
        (S::Warm { pid, waiter: None, job, .. }, E::Next { waiter }) => {
            take_next(vec![Effect::Api(Ok(()))], pid, waiter, job, Timing::now(facts), facts)
        }
        (S::Busy { pid, flight, queued, recycle }, E::Next { waiter }) if flight.job.is_none() => {
            // The invoke phase ends here.
            let mut effects = vec![Effect::Api(Ok(()))];
            if recycle || facts.strategy == Strategy::AlwaysCold {
                effects.push(Effect::Kill { pid, force: true });
                effects.push(Effect::Report { finished: false, init_error: None });
                return (S::Stopping { pid, job: queued, suppress: false }, effects);
            }
            // Idle since its result was answered: a client may act on the answer before this `/next` is read.
            let idle_since = flight.answered.unwrap_or(facts.now);
            take_next(effects, pid, waiter, queued, Timing { idle_since, ..Timing::now(facts) }, facts)
        }
        (state @ S::Busy { .. }, E::Next { .. }) => {
            let refusal = RuntimeApiError::InvalidStateTransition(
                "next invocation requested before the current one was answered".into(),
            );
            (state, vec![Effect::Api(Err(refusal))])
        }
        (state, E::Next { .. }) => {
            let refusal = RuntimeApiError::InvalidStateTransition("the worker is stopping".into());
            (state, vec![Effect::Api(Err(refusal))])
        }

        // ---- results ----
        (S::Busy { pid, mut flight, queued, recycle }, E::Response { request_id, body, is_error })
            if flight.request_id == request_id && flight.job.is_some() =>
        {
            let outcome = if is_error {
                Outcome::HandlerError { request_id, body }
            } else {
                Outcome::Success { request_id, body }
            };
            let mut effects = vec![Effect::Api(Ok(()))];
            answer(&mut effects, &mut flight, outcome, facts);
            effects.push(Effect::Report { finished: true, init_error: None });
            (S::Busy { pid, flight, queued, recycle }, effects)
        }
        (S::Busy { pid, mut flight, queued, recycle }, E::TooLarge { request_id })
            if flight.request_id == request_id && flight.job.is_some() =>
        {
            let message = format!(
                "RequestId: {request_id} Error: Response payload size exceeded maximum allowed payload size (6291556 bytes)."
            );
            let outcome = Outcome::Failed { request_id, error: FailureKind::ResponseTooLarge, message };
            let mut effects = vec![Effect::Api(Ok(()))];
            answer(&mut effects, &mut flight, outcome, facts);
            effects.push(Effect::Report { finished: true, init_error: None });
            (S::Busy { pid, flight, queued, recycle }, effects)
        }
        (state, E::Response { .. } | E::TooLarge { .. }) => {
            (state, vec![Effect::Api(Err(RuntimeApiError::InvalidRequestId))])
        }
        (S::Busy { pid, flight, queued: None, .. }, E::Undelivered { request_id })
            if flight.request_id == request_id && flight.job.is_some() =>
        {
            // The runtime's connection closed before it read the event (its process died while idle):
            // the invocation waits for the next `/next` or process instead of failing with this one.
            let job = flight.job.expect("checked");
            (S::Warm { pid, since: facts.now, waiter: None, job: Some(job) }, vec![])
        }
        (state, E::Undelivered { .. }) => (state, vec![]),

        // ---- timers ----
        (
            S::Starting { pid, deadline, suppressed, job, init_error: _, restoring: false, .. },
            E::InitTimeout { pid: timed },
        ) if pid == timed => {
            let mut effects = vec![Effect::Kill { pid, force: true }];
            match (suppressed, job) {
                (false, Some(job)) => {
                    effects.push(Effect::Warn(format!(
                        "init did not finish within init_timeout ({:.2} s); killing pid {pid} and retrying the init inside the invocation",
                        facts.init_timeout.as_secs_f64()
                    )));
                    effects.push(Effect::Restart);
                    (S::Stopping { pid, job: Some(job), suppress: true }, effects)
                }
                (false, None) => {
                    let message =
                        format!("Init timed out after {:.2} seconds", facts.init_timeout.as_secs_f64());
                    effects.push(Effect::Warn(format!("{message}; killing pid {pid}")));
                    effects.push(Effect::Restart);
                    let init_error = Some((FailureKind::Timeout(facts.init_timeout), message));
                    effects.push(Effect::Report { finished: false, init_error });
                    (S::Stopping { pid, job: None, suppress: false }, effects)
                }
                (true, job) => {
                    let seconds = facts.timeout.as_secs_f64();
                    let request_id = job.as_ref().map(|j| j.request_id.clone()).unwrap_or_default();
                    let message =
                        format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds");
                    effects.push(Effect::Warn(format!(
                        "init retried inside the invocation did not finish within timeout ({seconds:.2} s); killing pid {pid}"
                    )));
                    effects.push(Effect::Restart);
                    let kind = FailureKind::Timeout(facts.timeout);
                    let finished = match job {
                        Some(job) => {
                            let report = ReportLine {
                                request_id: request_id.clone(),
                                duration: facts.now.saturating_duration_since(deadline - facts.timeout),
                                init_duration: None,
                            };
                            let capture = job.invocation.log.clone().map(Capture::new);
                            let outcome =
                                Outcome::Failed { request_id, error: kind.clone(), message: message.clone() };
                            effects.push(Effect::Answer {
                                reply: job.reply,
                                outcome,
                                capture,
                                report: Some(report),
                            });
                            true
                        }
                        None => false,
                    };
                    effects.push(Effect::Report { finished, init_error: Some((kind, message)) });
                    (S::Stopping { pid, job: None, suppress: false }, effects)
                }
            }
        }
        (S::Busy { pid, mut flight, queued, .. }, E::Deadline { request_id })
            if flight.request_id == request_id =>
        {
            let seconds = facts.timeout.as_secs_f64();
            let mut effects = vec![
                Effect::Kill { pid, force: true },
                Effect::Warn(format!("task timed out after {seconds:.2} seconds; killing pid {pid}")),
            ];
            let finished = flight.job.is_some();
            if finished {
                let message =
                    format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds");
                let outcome =
                    Outcome::Failed { request_id, error: FailureKind::Timeout(facts.timeout), message };
                answer(&mut effects, &mut flight, outcome, facts);
            }
            effects.push(Effect::Report { finished, init_error: None });
            (S::Stopping { pid, job: queued, suppress: false }, effects)
        }
        (S::Warm { pid, since, waiter, job: None }, E::IdleTimeout { since: idle }) if since == idle => {
            let effects =
                vec![Effect::Kill { pid, force: true }, Effect::Report { finished: false, init_error: None }];
            drop(waiter);
            (S::Stopping { pid, job: None, suppress: false }, effects)
        }
        (
            state,
            E::InitTimeout { .. } | E::Deadline { .. } | E::IdleTimeout { .. } | E::RestoreTimeout { .. },
        ) => (state, vec![]),

        // ---- memory ----
        (state, E::OutOfMemory { pid })
            if state.pid() == Some(pid) && state.kind() != StateKind::Stopping =>
        {
            out_of_memory(state, pid, facts)
        }
        (state, E::OutOfMemory { .. }) => (state, vec![]),

        // ---- the process ends ----
        (state, E::Exit { pid, exit }) if state.pid() == Some(pid) => exited(state, exit, facts),
        (state, E::Exit { .. }) => (state, vec![]), // an older process of this slot

        // ---- on purpose ----
        (S::Busy { pid, flight, queued, .. }, E::Recycle) => {
            (S::Busy { pid, flight, queued, recycle: true }, vec![])
        }
        (S::Starting { pid, job, .. } | S::Warm { pid, job, .. }, E::Recycle) => {
            let effects =
                vec![Effect::Kill { pid, force: true }, Effect::Report { finished: false, init_error: None }];
            (S::Stopping { pid, job, suppress: false }, effects)
        }
        (state, E::Recycle) => (state, vec![]),
        (state, E::Shutdown { force }) => shutdown(state, force),

        (state, E::Outsider) => (
            state,
            vec![Effect::Api(Err(RuntimeApiError::Forbidden(
                "this Runtime API port belongs to another process".into(),
            )))],
        ),
        (state, E::Warmup | E::Spawned { .. } | E::SpawnFailed { .. } | E::TemplateFailed { .. }) => {
            (state, vec![])
        }
    }
}

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of a process started now.
fn init_type(facts: &Facts, for_invocation: bool) -> &'static str {
    if facts.snap_start.is_some() {
        super::snapstart::INIT_TYPE
    } else if facts.provisioned && !for_invocation {
        "provisioned-concurrency"
    } else {
        "on-demand"
    }
}

/// A job for a cold slot: spawn, or refuse while shutting down.
fn start(job: Job, facts: &Facts) -> Step {
    if facts.shutting_down {
        let effects = vec![
            Effect::Refuse { reply: job.reply, rejection: Rejection::Unavailable },
            Effect::Report { finished: true, init_error: None },
        ];
        return (State::Cold { job: None, suppress: false }, effects);
    }
    (
        State::Cold { job: Some(job), suppress: false },
        vec![Effect::Spawn { init_type: init_type(facts, true) }],
    )
}

fn spawned(pid: u32, job: Option<Job>, suppressed: bool, facts: &Facts) -> Step {
    // A suppressed init is part of the invocation: the function timeout bounds init and handler together.
    let restoring = facts.snap_start == Some(super::snapstart::SnapStart::Fork);
    let (limit, timer) = match (restoring, suppressed) {
        (true, _) => (super::snapstart::RESTORE_TIMEOUT, Timer::Restore { pid }),
        (false, true) => (facts.timeout, Timer::Init { pid }),
        (false, false) => (facts.init_timeout, Timer::Init { pid }),
    };
    let state = State::Starting {
        pid,
        since: facts.now,
        deadline: facts.now + limit,
        suppressed,
        job,
        init_error: None,
        restoring,
    };
    let effects = vec![
        Effect::ColdStart,
        Effect::Arm { timer, after: limit },
        Effect::Report { finished: false, init_error: None },
    ];
    (state, effects)
}

/// Hands `job` to the parked runtime; the deadline is armed now (or kept, for a suppressed init).
fn deliver(
    pid: u32,
    waiter: Waiter,
    job: Job,
    init_duration: Option<Duration>,
    deadline: Option<Instant>,
    facts: &Facts,
) -> Step {
    let deadline = deadline.unwrap_or(facts.now + facts.timeout);
    let left = deadline.saturating_duration_since(facts.now);
    let request_id = job.request_id.clone();
    let effects = vec![
        Effect::Deliver {
            waiter,
            request_id: request_id.clone(),
            deadline: facts.wall + left,
            invocation: job.invocation.clone(),
        },
        Effect::Arm { timer: Timer::Deadline { request_id: request_id.clone() }, after: left },
        Effect::Report { finished: false, init_error: None },
    ];
    let capture = job.invocation.log.clone().map(Capture::new);
    let flight =
        Flight { request_id, job: Some(job), started: facts.now, init_duration, capture, answered: None };
    (State::Busy { pid, flight, queued: None, recycle: false }, effects)
}

/// The times that go with a runtime's `/next`.
struct Timing {
    /// The init it just finished, for the first REPORT line.
    init_duration: Option<Duration>,
    /// The invocation's deadline when it was fixed before (a suppressed init); else timeout from now.
    deadline: Option<Instant>,
    /// Idle since when, if it parks.
    idle_since: Instant,
}

impl Timing {
    fn now(facts: &Facts) -> Self {
        Timing { init_duration: None, deadline: None, idle_since: facts.now }
    }
}

/// The runtime asked for `/next`: hand it the waiting job, or park it warm.
fn take_next(
    mut effects: Vec<Effect>,
    pid: u32,
    waiter: Waiter,
    job: Option<Job>,
    timing: Timing,
    facts: &Facts,
) -> Step {
    let (state, more) = match job {
        Some(job) => {
            effects.push(Effect::Invoked);
            deliver(pid, waiter, job, timing.init_duration, timing.deadline, facts)
        }
        None => {
            let (state, mut more) = warm(pid, waiter, timing.idle_since, facts);
            more.push(Effect::Report { finished: false, init_error: None });
            (state, more)
        }
    };
    effects.extend(more);
    (state, effects)
}

/// Back to warm and parked; on-demand workers start counting idle time.
fn warm(pid: u32, waiter: Waiter, since: Instant, facts: &Facts) -> Step {
    let mut effects = vec![];
    if let (Some(after), false) = (facts.idle_timeout, facts.provisioned) {
        let left = (since + after).saturating_duration_since(facts.now);
        effects.push(Effect::Arm { timer: Timer::Idle { since }, after: left });
    }
    (State::Warm { pid, since, waiter: Some(waiter), job: None }, effects)
}

/// Answers the flight's invocation with `outcome`, after its REPORT line.
fn answer(effects: &mut Vec<Effect>, flight: &mut Flight, outcome: Outcome, facts: &Facts) {
    let Some(job) = flight.job.take() else { return };
    flight.answered = Some(facts.now);
    let report = ReportLine {
        request_id: flight.request_id.clone(),
        duration: facts.now.saturating_duration_since(flight.started),
        init_duration: flight.init_duration,
    };
    effects.push(Effect::Answer {
        reply: job.reply,
        outcome,
        capture: flight.capture.take(),
        report: Some(report),
    });
}

/// Fails a job that never ran (init failure); whether there was one.
pub(super) fn answer_failure(
    effects: &mut Vec<Effect>,
    job: Option<Job>,
    kind: &FailureKind,
    message: &str,
) -> bool {
    let Some(job) = job else { return false };
    let outcome =
        Outcome::Failed { request_id: String::new(), error: kind.clone(), message: message.to_string() };
    effects.push(Effect::Answer { reply: job.reply, outcome, capture: None, report: None });
    true
}

fn out_of_memory(state: State, pid: u32, facts: &Facts) -> Step {
    let kind = FailureKind::OutOfMemory;
    let mut effects = vec![Effect::Kill { pid, force: true }, Effect::Restart];
    match state {
        State::Busy { mut flight, queued, .. } => {
            let finished = flight.job.is_some();
            if finished {
                let request_id = flight.request_id.clone();
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed");
                answer(
                    &mut effects,
                    &mut flight,
                    Outcome::Failed { request_id, error: kind, message },
                    facts,
                );
            }
            effects.push(Effect::Report { finished, init_error: None });
            (State::Stopping { pid, job: queued, suppress: false }, effects)
        }
        State::Starting { job, .. } => {
            let message = "Runtime exited with error: signal: killed".to_string();
            let finished = answer_failure(&mut effects, job, &kind, &message);
            effects.push(Effect::Report { finished, init_error: Some((kind, message)) });
            (State::Stopping { pid, job: None, suppress: false }, effects)
        }
        State::Warm { job, .. } => {
            effects.push(Effect::Report { finished: false, init_error: None });
            (State::Stopping { pid, job, suppress: false }, effects)
        }
        other => (other, vec![]),
    }
}

/// Process `pid` (this worker's) exited: fail what it held, go cold, and start again for a waiting job.
fn exited(state: State, exit: Exit, facts: &Facts) -> Step {
    let mut effects = vec![];
    let mut finished = false;
    let mut init_error = None;
    let (waiting, suppress) = match state {
        State::Busy { mut flight, queued, .. } => {
            effects.push(Effect::Restart);
            if flight.job.is_some() {
                let request_id = flight.request_id.clone();
                let message = format!("RequestId: {request_id} Error: Runtime exited with error: {exit}");
                effects.push(Effect::Warn(message.clone()));
                answer(
                    &mut effects,
                    &mut flight,
                    Outcome::Failed { request_id, error: FailureKind::Exited, message },
                    facts,
                );
                finished = true;
            }
            (queued, false)
        }
        State::Starting { job, init_error: reported, .. } => {
            effects.push(Effect::Restart);
            let (kind, message) = init_failure(reported, exit);
            // The actor logs the failure when it reports it: one ERROR line.
            finished = answer_failure(&mut effects, job, &kind, &message);
            init_error = Some((kind, message));
            (None, false)
        }
        State::Warm { job, .. } => {
            effects.push(Effect::Restart);
            effects.push(Effect::Warn(format!("worker exited while idle: {exit}")));
            (job, false)
        }
        State::Stopping { job, suppress, .. } => (job, suppress),
        State::Cold { job, suppress } => (job, suppress),
    };
    effects.push(Effect::Report { finished, init_error });
    let Some(job) = waiting else { return (State::Cold { job: None, suppress: false }, effects) };
    let (state, more) = match start(job, facts) {
        (State::Cold { job, .. }, spawn) => (State::Cold { job, suppress }, spawn),
        refused => refused,
    };
    effects.extend(more);
    (state, effects)
}

/// The failure of an init that ended with the process: the type the runtime reported, else an exit error.
pub fn init_failure(reported: Option<(String, Bytes)>, exit: Exit) -> (FailureKind, String) {
    match reported {
        Some((kind, body)) => {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            (FailureKind::Init(kind), message)
        }
        None => (FailureKind::Init("Runtime.ExitError".into()), format!("Runtime exited with error: {exit}")),
    }
}

/// Stop on purpose (server shutdown): signal the group. An invocation in flight keeps its process
/// until it ends or the supervisor's grace runs out (its exit then fails it, as any crash would); a
/// waiting one is refused, since no process will be started for it.
fn shutdown(state: State, force: bool) -> Step {
    let Some(pid) = state.pid() else { return (state, vec![]) };
    let kill = Effect::Kill { pid, force };
    match state {
        State::Busy { .. } => (state, vec![kill]),
        State::Starting { job, .. } | State::Warm { job, .. } | State::Stopping { job, .. } => {
            let mut effects = vec![kill];
            let finished = job.is_some();
            if let Some(job) = job {
                effects.push(Effect::Refuse { reply: job.reply, rejection: Rejection::Unavailable });
            }
            effects.push(Effect::Report { finished, init_error: None });
            (State::Stopping { pid, job: None, suppress: false }, effects)
        }
        State::Cold { .. } => unreachable!("a cold worker has no pid"),
    }
}

/// Whether an armed timer still means something in `state` (the actor cancels the others, so a busy
/// worker never piles up timers that would only be ignored).
pub fn timer_live(timer: &Timer, state: &State) -> bool {
    match (timer, state) {
        (Timer::Init { pid }, State::Starting { pid: current, restoring: false, .. }) => pid == current,
        (Timer::Restore { pid }, State::Starting { pid: current, restoring: true, .. }) => pid == current,
        (Timer::Deadline { request_id }, State::Busy { flight, .. }) => *request_id == flight.request_id,
        (Timer::Idle { since }, State::Warm { since: current, job: None, .. }) => since == current,
        _ => false,
    }
}
