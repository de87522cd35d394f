//! The worker's side of the Lambda Runtime API: `/next`, results, errors, init errors and SnapStart's
//! `/restore/next`. Each call is first checked to come from the worker's own process tree, then
//! becomes one event of the machine.

use actix::prelude::*;

use super::machine::Event;
use super::WorkerActor;
use crate::messages::*;
use crate::state::StateKind;

impl WorkerActor {
    /// Runs `event` if `peer` is this worker's process (or a descendant), else refuses it unchanged.
    fn runtime_call(
        &mut self,
        ctx: &mut Context<Self>,
        peer: Peer,
        event: Event,
    ) -> Result<(), RuntimeApiError> {
        self.catch_up_restore(ctx);
        let own = self.state.pid().is_some_and(|pid| self.trusted.admits(pid, peer));
        if !own {
            tracing::warn!(worker = %self.name, caller = ?peer, "refused a Runtime API call from outside the worker's process tree");
        }
        let event = match event {
            _ if !own => Event::Outsider,
            Event::InitError { error_type, body } => {
                // Logged once, with this location, when the process has exited.
                self.init_location = crate::logs::init_error_location(&body, &self.spec.cwd);
                Event::InitError { error_type, body }
            }
            event => event,
        };
        self.apply(ctx, event).unwrap_or(Ok(()))
    }
}

impl Handler<NextInvocation> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: NextInvocation, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, Event::Next { waiter: msg.reply })
    }
}

impl Handler<PostResult> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostResult, ctx: &mut Context<Self>) -> Self::Result {
        let event = Event::Response { request_id: msg.request_id, body: msg.body, is_error: msg.is_error };
        self.runtime_call(ctx, msg.peer, event)
    }
}

impl Handler<ResponseTooLarge> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: ResponseTooLarge, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, Event::TooLarge { request_id: msg.request_id })
    }
}

impl Handler<Undelivered> for WorkerActor {
    type Result = ();

    /// The runtime's connection closed before it read the event (its process died while idle): the
    /// invocation waits for the next process instead of failing with the dead one.
    fn handle(&mut self, msg: Undelivered, ctx: &mut Context<Self>) {
        let was_busy = self.state.kind() == StateKind::Busy;
        self.apply(ctx, Event::Undelivered { request_id: msg.request_id });
        if was_busy && self.state.kind() == StateKind::Warm {
            self.invocations = self.invocations.saturating_sub(1); // it never ran
        }
    }
}

impl Handler<PostInitError> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostInitError, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, Event::InitError { error_type: msg.error_type, body: msg.body })
    }
}

/// SnapStart: `GET /runtime/restore/next` (init and the before-snapshot hooks are done).
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeApiError>")]
pub struct RestoreNext {
    pub peer: Peer,
}

impl Handler<RestoreNext> for WorkerActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: RestoreNext, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, Event::RestoreNext)
    }
}
