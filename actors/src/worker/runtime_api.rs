//! The worker's side of the Lambda Runtime API: `/next`, results, errors and init errors.

use std::time::Instant;

use actix::prelude::*;

use super::WorkerActor;
use crate::invocation::{FailureKind, Outcome};
use crate::messages::*;
use crate::sampler;
use crate::state::WorkerState;

impl Handler<NextInvocation> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: NextInvocation, ctx: &mut Context<Self>) -> Self::Result {
        match self.state {
            WorkerState::Starting { pid, since } => {
                self.unreported_init = Some(since.elapsed());
                // One reading when init ends, so the first REPORT has a `Max Memory Used` even when it
                // comes before the sampler's first tick.
                if let Some(rss) = sampler::rss_now(pid) {
                    self.note_peak(rss);
                }
                self.transition(WorkerState::Warm { pid, since: Instant::now() });
                self.arm_idle(ctx);
                self.report(false);
            }
            WorkerState::Warm { .. } => {}
            WorkerState::Busy { .. } => {
                return Err(RuntimeApiError::InvalidStateTransition(
                    "next invocation requested before the current one was answered".into(),
                ))
            }
            WorkerState::Cold | WorkerState::Stopping { .. } => {
                return Err(RuntimeApiError::InvalidStateTransition("the worker is stopping".into()))
            }
        }
        self.waiting_next = Some(msg.reply);
        self.advance(ctx);
        Ok(())
    }
}

impl Handler<PostResult> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostResult, ctx: &mut Context<Self>) -> Self::Result {
        let WorkerState::Busy { pid, ref request_id, .. } = self.state else {
            return Err(RuntimeApiError::InvalidRequestId);
        };
        if *request_id != msg.request_id {
            return Err(RuntimeApiError::InvalidRequestId);
        }
        let request_id = msg.request_id;
        let outcome = if msg.is_error {
            Outcome::HandlerError { request_id, body: msg.body }
        } else {
            Outcome::Success { request_id, body: msg.body }
        };
        self.finish(ctx, outcome);
        self.transition(WorkerState::Warm { pid, since: Instant::now() });
        self.after_invocation(ctx);
        self.report(true);
        Ok(())
    }
}

impl Handler<ResponseTooLarge> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: ResponseTooLarge, ctx: &mut Context<Self>) -> Self::Result {
        match self.state {
            WorkerState::Busy { pid, ref request_id, .. } if *request_id == msg.request_id => {
                let message = format!(
                    "RequestId: {} Error: Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    msg.request_id
                );
                let outcome = Outcome::Failed {
                    request_id: msg.request_id,
                    error: FailureKind::ResponseTooLarge,
                    message,
                };
                self.finish(ctx, outcome);
                self.transition(WorkerState::Warm { pid, since: Instant::now() });
                self.after_invocation(ctx);
                self.report(true);
                Ok(())
            }
            _ => Err(RuntimeApiError::InvalidRequestId),
        }
    }
}

impl Handler<Undelivered> for WorkerActor {
    type Result = ();

    /// The runtime's connection closed before it read the event (its process died while idle): the
    /// invocation waits for the next process instead of failing with the dead one.
    fn handle(&mut self, msg: Undelivered, ctx: &mut Context<Self>) {
        let WorkerState::Busy { pid, ref request_id, .. } = self.state else { return };
        if *request_id != msg.request_id {
            return;
        }
        let Some(flight) = self.current.take() else { return };
        ctx.cancel_future(flight.timer);
        self.invocations -= 1;
        self.unreported_init = flight.init_duration;
        self.pending = Some((flight.invocation, flight.reply));
        self.transition(WorkerState::Warm { pid, since: Instant::now() });
        self.report(false);
    }
}

impl Handler<PostInitError> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostInitError, _: &mut Context<Self>) -> Self::Result {
        if !matches!(self.state, WorkerState::Starting { .. }) {
            return Err(RuntimeApiError::InvalidStateTransition("init error reported after init".into()));
        }
        tracing::error!(worker = %self.name, error_type = %msg.error_type, "init failed");
        self.init_error = Some((msg.error_type, msg.body));
        Ok(())
    }
}
