//! The supervisor's side of shadows: the handler's runner, and the state-leak detector's choice of
//! which invocations to check (every Nth, when the handler opted in and the run asked for it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::Addr;
use tokio::sync::oneshot;

use super::{CheckState, Leaks, ShadowRunner};
use crate::invocation::Invocation;
use crate::messages::Reply;

/// Checks waiting for the shadow at most: a busy handler skips checks rather than pile them up.
const MAX_PENDING_CHECKS: usize = 4;

pub struct ShadowHook {
    pub runner: Addr<ShadowRunner>,
    pub leaks: Leaks,
    /// `check_state_every` when the detector checks this handler.
    check_every: Option<u32>,
    dispatched: u64,
    pending: Arc<AtomicUsize>,
}

/// Whether the `dispatched`th invocation (counted from 1) is checked.
pub fn due(dispatched: u64, every: Option<u32>) -> bool {
    every.is_some_and(|every| dispatched.is_multiple_of(u64::from(every.max(1))))
}

impl ShadowHook {
    pub fn new(runner: Addr<ShadowRunner>, leaks: Leaks, check_every: Option<u32>) -> Self {
        Self { runner, leaks, check_every, dispatched: 0, pending: Arc::default() }
    }

    /// Called for every invocation handed to the pool's worker `worker` (pid `pid`): when it is due
    /// for a check, its reply is taken over: the client gets the result first, then the check runs.
    pub fn watch(&mut self, invocation: &Invocation, reply: Reply, worker: &str, pid: Option<u32>) -> Reply {
        self.dispatched += 1;
        if !due(self.dispatched, self.check_every) {
            return reply;
        }
        if self.pending.load(Ordering::Acquire) >= MAX_PENDING_CHECKS {
            tracing::debug!(worker, "state check skipped: {MAX_PENDING_CHECKS} checks already wait");
            return reply;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let (inner, answer) = oneshot::channel::<crate::invocation::InvokeResult>();
        let check = CheckState {
            invocation: super::clone_for_shadow(invocation),
            warm: Err(crate::invocation::Rejection::Unavailable),
            worker: worker.to_string(),
            pid,
        };
        let (runner, pending) = (self.runner.clone(), self.pending.clone());
        actix::spawn(async move {
            let Ok(warm) = answer.await else {
                pending.fetch_sub(1, Ordering::AcqRel);
                return;
            };
            let _ = reply.send(warm.clone());
            let _ = runner.send(CheckState { warm, ..check }).await;
            pending.fetch_sub(1, Ordering::AcqRel);
        });
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn every_nth_invocation_is_checked() {
        let checked = |every| (1..=10).filter(|n| due(*n, every)).collect::<Vec<_>>();
        assert_eq!(checked(Some(10)), vec![10]);
        assert_eq!(checked(Some(3)), vec![3, 6, 9]);
        assert_eq!(checked(Some(1)), (1..=10).collect::<Vec<_>>());
        assert_eq!(checked(None), Vec::<u64>::new());
    }
}
