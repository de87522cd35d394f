//! The environment's side of the Runtime API: each call is traced to the process of the tree that
//! made it (an outsider is refused, changing nothing), then becomes one event of the machine.

use actix::prelude::*;

use super::actor::EnvironmentActor;
use super::holder::holder;
use super::machine::Event;
use crate::messages::*;

impl EnvironmentActor {
    /// The process of the tree that made the call, or a refusal for an outsider.
    fn caller(&mut self, peer: Peer) -> Result<u32, RuntimeApiError> {
        // A TCP connection is traced once; a Unix socket's caller comes with its pid (SO_PEERCRED).
        let connection = match peer {
            Peer::Tcp { connection, .. } => Some(connection),
            Peer::Unix { .. } => None,
        };
        if let Some(pid) = connection.and_then(|c| self.callers.get(&c)) {
            return Ok(*pid);
        }
        let found = self.env.phase.pid().and_then(|root| holder(root, peer));
        let Some(pid) = found else {
            tracing::warn!(worker = %self.name, caller = ?peer, "refused a Runtime API call from outside the environment's process tree");
            return Err(RuntimeApiError::Forbidden("the caller is not a process of this environment".into()));
        };
        if let Some(connection) = connection {
            self.callers.insert(connection, pid);
        }
        Ok(pid)
    }

    fn runtime_call(
        &mut self,
        ctx: &mut Context<Self>,
        peer: Peer,
        event: impl FnOnce(u32) -> Event,
    ) -> Result<(), RuntimeApiError> {
        let pid = self.caller(peer)?;
        self.apply(ctx, event(pid)).unwrap_or(Ok(()))
    }
}

impl Handler<NextInvocation> for EnvironmentActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: NextInvocation, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, |holder| Event::Next { waiter: msg.reply, holder })
    }
}

impl Handler<PostResult> for EnvironmentActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostResult, ctx: &mut Context<Self>) -> Self::Result {
        let event = Event::Result { request_id: msg.request_id, body: msg.body, is_error: msg.is_error };
        self.runtime_call(ctx, msg.peer, |_| event)
    }
}

impl Handler<ResponseTooLarge> for EnvironmentActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: ResponseTooLarge, ctx: &mut Context<Self>) -> Self::Result {
        self.runtime_call(ctx, msg.peer, |_| Event::TooLarge { request_id: msg.request_id })
    }
}

impl Handler<PostInitError> for EnvironmentActor {
    type Result = Result<(), RuntimeApiError>;

    fn handle(&mut self, msg: PostInitError, ctx: &mut Context<Self>) -> Self::Result {
        let message = serde_json::from_slice::<serde_json::Value>(&msg.body)
            .ok()
            .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
            .unwrap_or_default();
        tracing::error!(handler = %self.handler.name, worker = %self.name, error_type = %msg.error_type, "init failed: {}: {message}", msg.error_type);
        self.runtime_call(ctx, msg.peer, |_| Event::InitError { error_type: msg.error_type, message })
    }
}

impl Handler<Undelivered> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, msg: Undelivered, ctx: &mut Context<Self>) {
        self.invocations = self.invocations.saturating_sub(1); // it never ran
        self.apply(ctx, Event::Undelivered { request_id: msg.request_id });
    }
}
