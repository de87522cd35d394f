//! Handing the event to the parked `/next`, once the output the process wrote before it has been
//! logged: a line printed during init (or after the last result) must not carry the new request's
//! id. Over the Unix socket the `/next` can arrive before the log pump has read what preceded it.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::WorkerActor;
use crate::messages::{NextEvent, Undelivered};
use crate::process;

/// How often, and how many times at most (10 ms in all), delivery waits for the log pump.
const DRAIN_POLL: Duration = Duration::from_micros(200);
const DRAIN_TRIES: u32 = 50;

impl WorkerActor {
    pub(super) fn deliver_when_drained(
        &mut self,
        ctx: &mut Context<Self>,
        waiter: oneshot::Sender<NextEvent>,
        event: NextEvent,
        tries: u32,
    ) {
        if tries < DRAIN_TRIES && self.output.as_ref().is_some_and(process::Output::pending) {
            ctx.run_later(DRAIN_POLL, move |act, ctx| {
                act.deliver_when_drained(ctx, waiter, event, tries + 1)
            });
            return;
        }
        // The log and the recorder take the process's next lines as the new request's.
        self.log.serving(&event.request_id);
        self.recording.delivered(&event.request_id, self.state.pid());
        if let Err(event) = waiter.send(event) {
            // The runtime hung up while parked: the invocation waits for a new `/next` or process.
            ctx.address().do_send(Undelivered { request_id: event.request_id });
        }
    }
}
