//! What a supervisor does for recording and chaos mode, kept beside it so that `supervisor.rs` only
//! calls in: the recorder and the handler's chaos arrive in one message ([`Equip`]); a request is
//! throttled or delayed by chaos before it is admitted; a throttle is recorded.

use std::time::Duration;

use actix::prelude::*;

use super::HandlerSupervisor;
use crate::chaos::Fault;
use crate::invocation::{Invocation, Rejection};
use crate::messages::{Invoke, Reply};

/// Gives a supervisor what it needs beyond its handler: the recorder and chaos mode.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Equip {
    pub recorder: crate::recorder::Recorder,
    pub chaos: Option<crate::chaos::HandlerChaos>,
}

impl Handler<Equip> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Equip, _: &mut Context<Self>) {
        self.recorder = msg.recorder;
        self.chaos = msg.chaos;
    }
}

impl HandlerSupervisor {
    /// Draws the request's faults (once: a delayed request comes back with them). A throttle
    /// answers it; a latency sends it back to this supervisor later. Otherwise it goes on to
    /// admission, its faults on it for the dispatch and the worker.
    pub(super) fn chaos_admission(
        &mut self,
        mut invocation: Invocation,
        reply: Reply,
        ctx: &mut Context<Self>,
    ) -> Option<(Invocation, Reply)> {
        let Some(chaos) = self.chaos.as_mut().filter(|_| invocation.origin.chaos.is_none()) else {
            return Some((invocation, reply));
        };
        let mut injected = chaos.draw();
        if injected.drawn.throttle {
            chaos.inject(&mut injected, Fault::Throttle);
            invocation.origin.chaos = Some(Box::new(injected));
            self.throttle(invocation, reply, Rejection::ReservedConcurrency);
            return None;
        }
        let latency = Duration::from_millis(injected.latency_ms);
        if !latency.is_zero() {
            chaos.inject(&mut injected, Fault::Latency);
            invocation.origin.chaos = Some(Box::new(injected));
            ctx.notify_later(Invoke { invocation, reply }, latency);
            return None;
        }
        invocation.origin.chaos = Some(Box::new(injected));
        Some((invocation, reply))
    }

    /// Answers 429: counted, logged and recorded.
    pub(super) fn throttle(&mut self, invocation: Invocation, reply: Reply, rejection: Rejection) {
        self.metrics.throttled();
        tracing::warn!(handler = %self.handler.name, "throttled: {rejection}");
        if self.recorder.is_on() {
            let row = crate::recorder::row::throttled(
                invocation.request_id(),
                &self.handler.name,
                &invocation,
                &rejection,
            );
            self.recorder.record(row);
        }
        let _ = reply.send(Err(rejection));
    }
}
