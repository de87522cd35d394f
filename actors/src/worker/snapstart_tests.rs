//! SnapStart's rows of the worker's machine: restores by fork and by `/restore/next`, their 10 s
//! limit, and a template that failed. No process; a child module of `tests`, whose helpers it uses.

use super::*;
use crate::worker::snapstart::{SnapStart, RESTORE_TIMEOUT};

fn snap(now: Instant, mode: SnapStart) -> Facts {
    Facts { snap_start: Some(mode), ..facts(now) }
}

/// Runs `steps` (event name, event) from a cold slot; each step's (state, effects) in a row.
fn trace(mode: SnapStart, job: Option<Job>, steps: Vec<(&str, Event)>) -> Vec<(String, StateKind, String)> {
    let t0 = Instant::now();
    let mut state = State::Cold { job, suppress: false };
    let mut rows = Vec::new();
    for (i, (name, event)) in steps.into_iter().enumerate() {
        let (next, effects) = step(state, event, &snap(t0 + Duration::from_millis(i as u64), mode));
        rows.push((name.to_string(), next.kind(), names(&effects)));
        state = next;
    }
    rows
}

fn row(name: &str, kind: StateKind, effects: &str) -> (String, StateKind, String) {
    (name.to_string(), kind, effects.to_string())
}

#[test]
fn a_fork_is_restoring_from_its_first_moment_under_the_restore_limit() {
    use StateKind::*;
    let mut ends = Ends::default();
    let rows = trace(
        SnapStart::Fork,
        Some(ends.job("r1")),
        vec![
            ("spawned", Event::Spawned { pid: PID }),
            ("init timeout", Event::InitTimeout { pid: PID }),
            ("restore next", Event::RestoreNext),
            ("next", Event::Next { waiter: ends.waiter() }),
        ],
    );
    assert_eq!(
        rows,
        [
            row("spawned", Starting, "cold start, arm restore, report"),
            row("init timeout", Starting, ""),
            row("restore next", Starting, "api InvalidStateTransition"),
            row("next", Busy, "api ok, init done, invoked, deliver, arm deadline, report"),
        ]
    );
}

#[test]
fn restore_next_takes_the_snapshot_then_restores_under_its_own_limit() {
    use StateKind::*;
    let mut ends = Ends::default();
    let rows = trace(
        SnapStart::RestoreNext,
        None,
        vec![
            ("spawned", Event::Spawned { pid: PID }),
            ("restore next", Event::RestoreNext),
            ("restore next again", Event::RestoreNext),
            ("init timeout", Event::InitTimeout { pid: PID }),
            ("next", Event::Next { waiter: ends.waiter() }),
        ],
    );
    assert_eq!(
        rows,
        [
            row("spawned", Starting, "cold start, arm init, report"),
            row("restore next", Starting, "api ok, snapshot taken, arm restore"),
            row("restore next again", Starting, "api InvalidStateTransition"),
            row("init timeout", Starting, ""),
            row("next", Warm, "api ok, init done, arm idle, report"),
        ]
    );
}

#[test]
fn a_restore_past_10_s_fails_the_invocation_with_snapstart_timeout() {
    use StateKind::*;
    let mut ends = Ends::default();
    for (mode, job, expected) in [
        (SnapStart::Fork, None, "kill, warn, restart, report init error"),
        (
            SnapStart::Fork,
            Some(ends.job("r1")),
            "kill, warn, restart, answer SnapStartTimeoutException, finished",
        ),
    ] {
        let rows = trace(
            mode,
            job,
            vec![
                ("spawned", Event::Spawned { pid: PID }),
                ("restore timeout", Event::RestoreTimeout { pid: PID }),
            ],
        );
        assert_eq!(rows[1], row("restore timeout", Stopping, expected), "{mode:?}");
    }
    let rows = trace(
        SnapStart::Fork,
        None,
        vec![("spawned", Event::Spawned { pid: PID }), ("stale", Event::RestoreTimeout { pid: PID + 1 })],
    );
    assert_eq!(rows[1], row("stale", Starting, ""), "another process's timer");
}

#[test]
fn a_failed_template_fails_the_waiting_invocation_with_its_error_type() {
    let mut ends = Ends::default();
    let failed =
        Event::TemplateFailed { error_type: "Runtime.BeforeSnapshotError".into(), message: "boom".into() };
    let rows = trace(SnapStart::Fork, Some(ends.job("r1")), vec![("template failed", failed)]);
    assert_eq!(
        rows,
        [row("template failed", StateKind::Cold, "answer Runtime.BeforeSnapshotError, finished")]
    );
}

#[test]
fn timers_live_only_in_their_phase() {
    let t0 = Instant::now();
    let starting = |restoring| State::Starting {
        pid: PID,
        since: t0,
        deadline: t0 + RESTORE_TIMEOUT,
        suppressed: false,
        job: None,
        init_error: None,
        restoring,
    };
    let cases = [
        (Timer::Init { pid: PID }, starting(false), true),
        (Timer::Init { pid: PID }, starting(true), false),
        (Timer::Restore { pid: PID }, starting(true), true),
        (Timer::Restore { pid: PID }, starting(false), false),
        (Timer::Restore { pid: PID + 1 }, starting(true), false),
    ];
    for (timer, state, live) in cases {
        assert_eq!(super::super::machine::timer_live(&timer, &state), live, "{timer:?} {state:?}");
    }
}

#[test]
fn a_snapstart_process_is_started_as_snap_start() {
    let mut ends = Ends::default();
    let run = Event::Run { job: ends.job("r1"), doomed: false };
    let (_, effects) =
        step(State::Cold { job: None, suppress: false }, run, &snap(Instant::now(), SnapStart::Fork));
    assert!(matches!(effects[..], [Effect::Spawn { init_type: "snap-start" }]), "{}", names(&effects));
}
