//! A worker's process forked rather than spawned: from the handler's SnapStart template
//! (`crate::forkserver::template`), or from the zygote (`crate::forkserver::zygote`) for an
//! ordinary cold start. Its output comes through a pipe of the worker's own, its exit from the fork
//! server (its parent, which reaps it); after that it is a process like any other. A zygote that
//! fails gives way to a plain spawn.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;

use super::machine::Event;
use super::WorkerActor;
use crate::forkserver::template::SnapTemplate;
use crate::forkserver::zygote::Zygotes;
use crate::forkserver::{Exited, Failure, Forked};
use crate::messages::ChildExited;
use crate::process::{self, SpawnSpec};

/// The template forked this slot's environment, or could not.
#[derive(Message)]
#[rtype(result = "()")]
struct Restored(Result<(), Failure>);

/// The zygote forked this slot's process, or could not: it is spawned (`spec`) instead.
#[derive(Message)]
#[rtype(result = "()")]
struct ZygoteForked {
    result: Result<(), Failure>,
    spec: SpawnSpec,
}

impl WorkerActor {
    /// Asks the template for an environment with this slot's settings; `Restored` follows.
    pub(super) fn restore(
        &mut self,
        ctx: &mut Context<Self>,
        template: &Arc<SnapTemplate>,
        spec: SpawnSpec,
        on_line: impl Fn(&str) + Send + 'static,
    ) {
        let writer = match self.output_pipe(on_line) {
            Ok(writer) => writer,
            Err(failure) => return ctx.address().do_send(Restored(Err(failure))),
        };
        let forked = self.when_forked(ctx, Restored);
        template.fork(spec.env.to_map(), writer, forked, self.when_exited(ctx));
    }

    /// A cold start as a fork of the zygote; a plain spawn if that fails.
    pub(super) fn fork_from_zygote(
        &mut self,
        ctx: &mut Context<Self>,
        zygotes: &Zygotes,
        spec: SpawnSpec,
        on_line: impl Fn(&str) + Send + 'static,
    ) {
        let writer = match self.output_pipe(on_line) {
            Ok(writer) => writer,
            Err(failure) => return ctx.address().do_send(ZygoteForked { result: Err(failure), spec }),
        };
        let fallback = spec.clone();
        let forked = self.when_forked(ctx, move |result| ZygoteForked { result, spec: fallback });
        zygotes.fork(&spec, writer, forked, self.when_exited(ctx));
        tracing::debug!(worker = %self.name, "cold start: a fork of the zygote");
    }

    /// A pipe for the forked process's output, its read end pumped to `on_line`.
    fn output_pipe(
        &mut self,
        on_line: impl Fn(&str) + Send + 'static,
    ) -> Result<std::os::fd::OwnedFd, Failure> {
        let pumped = std::io::pipe()
            .and_then(|(reader, writer)| Ok((process::pump_output(reader, &self.name, on_line)?, writer)));
        match pumped {
            Ok((output, writer)) => {
                self.output = Some(output);
                Ok(writer.into())
            }
            Err(err) => {
                let message = format!("could not make the environment's output pipe: {err}");
                Err(Failure { error_type: "Runtime.ExitError".into(), message })
            }
        }
    }

    /// What the fork server's answer becomes: the pid left for the first Runtime API call, and a
    /// message to this actor (`message` of the result).
    fn when_forked<M>(
        &self,
        ctx: &Context<Self>,
        message: impl FnOnce(Result<(), Failure>) -> M + Send + 'static,
    ) -> Forked
    where
        M: Message<Result = ()> + Send + 'static,
        Self: Handler<M>,
    {
        let address = ctx.address();
        let restored_pid = self.restored_pid.clone();
        restored_pid.store(0, Ordering::Release);
        Box::new(move |result| {
            if let Ok(pid) = result {
                restored_pid.store(pid, Ordering::Release);
            }
            address.do_send(message(result.map(|_| ())))
        })
    }

    fn when_exited(&self, ctx: &Context<Self>) -> Exited {
        let address = ctx.address();
        Box::new(move |pid, exit| address.do_send(ChildExited { pid, exit }))
    }
}

impl WorkerActor {
    /// A fork runs at once: its first Runtime API call may come before `Restored` is handled. The
    /// call takes the pid the fork left, so the peer check knows the process. (A spawn leaves none.)
    pub(super) fn catch_up_restore(&mut self, ctx: &mut Context<Self>) {
        if self.state.pid().is_none() {
            if let pid @ 1.. = self.restored_pid.swap(0, Ordering::AcqRel) {
                self.restored(ctx, pid);
            }
        }
    }

    fn restored(&mut self, ctx: &mut Context<Self>, pid: u32) {
        // pidfd_open works on a process that is not our child.
        self.exit_watch = process::ExitWatch::open(pid);
        self.log.started(pid);
        tracing::debug!(worker = %self.name, pid, "forked");
        self.sampler.watch(pid, ctx.address().recipient());
        self.apply(ctx, Event::Spawned { pid });
    }
}

impl Handler<Restored> for WorkerActor {
    type Result = ();

    fn handle(&mut self, Restored(result): Restored, ctx: &mut Context<Self>) {
        match result {
            // Unless an early Runtime API call took its pid already.
            Ok(_) => self.catch_up_restore(ctx),
            Err(Failure { error_type, message }) => {
                self.output = None;
                self.apply(ctx, Event::TemplateFailed { error_type, message });
            }
        }
    }
}

impl Handler<ZygoteForked> for WorkerActor {
    type Result = ();

    fn handle(&mut self, ZygoteForked { result, spec }: ZygoteForked, ctx: &mut Context<Self>) {
        match result {
            Ok(()) => self.catch_up_restore(ctx),
            Err(Failure { error_type, message }) => {
                self.output = None;
                // The slot still waits for this process (a cold slot that has no pid yet).
                if matches!(self.state, super::machine::State::Cold { .. }) {
                    tracing::warn!(worker = %self.name, %error_type, "{message}; spawning the interpreter instead");
                    self.spawn_process(ctx, spec);
                }
            }
        }
    }
}
