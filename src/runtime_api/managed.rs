//! The Runtime API's routing hook for Lambda Managed Instances: a port owned by an environment
//! rather than a worker. Both actors take the same messages, so the routes call `send` / `do_send` on
//! a `Target` without caring which one answers.

use actix::dev::ToEnvelope;
use actix::{Handler, MailboxError, Message};
use smyth_actors::managed::EnvironmentActor;
use smyth_actors::worker::WorkerActor;

use super::Target;

impl Target<'_> {
    pub(super) async fn send<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        WorkerActor: Handler<M>,
        EnvironmentActor: Handler<M>,
        <WorkerActor as actix::Actor>::Context: ToEnvelope<WorkerActor, M>,
        <EnvironmentActor as actix::Actor>::Context: ToEnvelope<EnvironmentActor, M>,
    {
        match self {
            Target::Worker(addr) => addr.send(msg).await,
            Target::Environment(addr) => addr.send(msg).await,
        }
    }

    pub(super) fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        WorkerActor: Handler<M>,
        EnvironmentActor: Handler<M>,
        <WorkerActor as actix::Actor>::Context: ToEnvelope<WorkerActor, M>,
        <EnvironmentActor as actix::Actor>::Context: ToEnvelope<EnvironmentActor, M>,
    {
        match self {
            Target::Worker(addr) => addr.do_send(msg),
            Target::Environment(addr) => addr.do_send(msg),
        }
    }
}
