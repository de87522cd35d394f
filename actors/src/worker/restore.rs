//! SnapStart with the bundled runtime: the worker's process is a fork of the handler's template
//! (`crate::forkserver::template`), not a spawn. Its output comes through a pipe of the worker's own,
//! its exit from the template (its parent, which reaps it); after that it is a process like any other.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;

use super::machine::Event;
use super::WorkerActor;
use crate::forkserver::template::SnapTemplate;
use crate::forkserver::Failure;
use crate::messages::ChildExited;
use crate::process::{self, SpawnSpec};

/// The template forked this slot's environment, or could not.
#[derive(Message)]
#[rtype(result = "()")]
struct Restored(Result<u32, Failure>);

impl WorkerActor {
    /// Asks the template for an environment with this slot's settings; `Restored` follows.
    pub(super) fn restore(
        &mut self,
        ctx: &mut Context<Self>,
        template: &Arc<SnapTemplate>,
        spec: SpawnSpec,
        on_line: impl Fn(&str) + Send + 'static,
    ) {
        let pumped = std::io::pipe()
            .and_then(|(reader, writer)| Ok((process::pump_output(reader, &self.name, on_line)?, writer)));
        let (output, writer) = match pumped {
            Ok(pair) => pair,
            Err(err) => {
                let message = format!("could not make the environment's output pipe: {err}");
                ctx.address()
                    .do_send(Restored(Err(Failure { error_type: "Runtime.ExitError".into(), message })));
                return;
            }
        };
        self.output = Some(output);
        let (forked, exited) = (ctx.address(), ctx.address());
        let restored_pid = self.restored_pid.clone();
        restored_pid.store(0, Ordering::Release);
        template.fork(
            spec.env,
            writer.into(),
            Box::new(move |result| {
                if let Ok(pid) = result {
                    restored_pid.store(pid, Ordering::Release);
                }
                forked.do_send(Restored(result))
            }),
            Box::new(move |pid, exit| exited.do_send(ChildExited { pid, exit })),
        );
    }
}

impl WorkerActor {
    /// A fork runs at once: its first Runtime API call may come before `Restored` is handled. The
    /// call takes the pid the fork left, so the peer check knows the process.
    pub(super) fn catch_up_restore(&mut self, ctx: &mut Context<Self>) {
        if self.template.is_some() && self.state.pid().is_none() {
            if let pid @ 1.. = self.restored_pid.swap(0, Ordering::AcqRel) {
                self.restored(ctx, pid);
            }
        }
    }

    fn restored(&mut self, ctx: &mut Context<Self>, pid: u32) {
        // pidfd_open works on a process that is not our child.
        self.exit_watch = process::ExitWatch::open(pid);
        self.log.started(pid);
        tracing::debug!(worker = %self.name, pid, "restored from the SnapStart template");
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
