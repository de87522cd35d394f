//! SnapStart's part of the worker's machine (`snap_start = true`): an environment is restored, not
//! initialised. With the bundled runtime the process is a fork of the handler's template, restoring
//! from its first moment; other runtimes initialise in their own process, call `/restore/next`, and
//! restore from then. A restore (the after-restore hooks) gets 10 s, as on AWS. Pure, like `step`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use smyth_config::{HandlerConfig, Runtime};

use super::machine::{answer_failure, Effect, Facts, Job, State, Step, Timer};
use crate::invocation::FailureKind;

/// AWS: runtime load and after-restore hooks must finish within 10 s.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(10);
/// `AWS_LAMBDA_INITIALIZATION_TYPE` under SnapStart.
pub const INIT_TYPE: &str = crate::forkserver::template::INIT_TYPE;
/// The error an invocation gets when the restore runs out of time (AWS's Invoke API error).
pub const TIMEOUT_ERROR: &str = "SnapStartTimeoutException";

/// How a SnapStart handler's environments are restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapStart {
    /// A fork of the template (the bundled runtime): it is restoring from the start.
    Fork,
    /// Its own process initialises, then asks `/restore/next` (awslambdaric, a command).
    RestoreNext,
}

impl SnapStart {
    /// How `handler`'s environments are restored; `forked`: the worker has a template to fork (the
    /// bundled runtime has none under `--debug`, and is then started as usual).
    pub fn of(handler: &HandlerConfig, forked: bool) -> Option<Self> {
        match (handler.snap_start, &handler.runtime, forked) {
            (false, _, _) => None,
            (true, _, true) => Some(SnapStart::Fork),
            (true, Runtime::Python, false) => None,
            (true, _, false) => Some(SnapStart::RestoreNext),
        }
    }
}

/// `GET /restore/next` after init and the before-snapshot hooks: the snapshot is taken (its init
/// goes in an `INIT_REPORT`), and the restore starts at once, under its own limit.
pub(super) fn restore_next(
    pid: u32,
    since: Instant,
    job: Option<Job>,
    init_error: Option<(String, Bytes)>,
    facts: &Facts,
) -> Step {
    let state = State::Starting {
        pid,
        since: facts.now,
        deadline: facts.now + RESTORE_TIMEOUT,
        suppressed: false,
        job,
        init_error,
        restoring: true,
    };
    let effects = vec![
        Effect::Api(Ok(())),
        Effect::SnapshotTaken { init: facts.now.saturating_duration_since(since) },
        Effect::Arm { timer: Timer::Restore { pid }, after: RESTORE_TIMEOUT },
    ];
    (state, effects)
}

/// The after-restore hooks ran past [`RESTORE_TIMEOUT`]: the environment is killed and the waiting
/// invocation fails with `SnapStartTimeoutException`.
pub(super) fn restore_timed_out(pid: u32, job: Option<Job>) -> Step {
    let seconds = RESTORE_TIMEOUT.as_secs();
    let message = format!("The restore did not finish within {seconds} seconds (after-restore hooks)");
    let kind = FailureKind::Init(TIMEOUT_ERROR.into());
    let mut effects = vec![
        Effect::Kill { pid, force: true },
        Effect::Warn(format!("{message}; killing pid {pid}")),
        Effect::Restart,
    ];
    let finished = answer_failure(&mut effects, job, &kind, &message);
    effects.push(Effect::Report { finished, init_error: Some((kind, message)) });
    (State::Stopping { pid, job: None, suppress: false }, effects)
}

/// No fork could be had: the template's init failed (`error_type` as it reported it).
pub(super) fn template_failed(job: Option<Job>, error_type: String, message: String) -> Step {
    let kind = FailureKind::Init(error_type);
    let mut effects = vec![];
    let finished = answer_failure(&mut effects, job, &kind, &message);
    effects.push(Effect::Report { finished, init_error: Some((kind, message)) });
    (State::Cold { job: None, suppress: false }, effects)
}
