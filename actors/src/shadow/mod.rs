//! Shadow environments: a handler's throwaway execution environments, outside its pool. A shadow
//! runs an invocation (after, for a warm replay, the events that preceded it) on a fresh process
//! started the pool's way (same launch path, env and cwd, its own Runtime API port), then kills it.
//! Shadows do not count against the handler's concurrency or the account's, never get a client's
//! request, are not in the pool's status, and are never left running. The state-leak detector
//! (`check.rs`) and `smyth replay` run on them.

pub mod check;
pub mod compare;
pub mod hook;
pub mod leaks;

use std::sync::Arc;

use actix::prelude::*;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::invocation::{Invocation, InvokeResult, Rejection};
use crate::messages::{Recycle, Run, WorkerChanged};
use crate::worker::{Stop, WorkerActor};

pub use check::CheckState;
pub use hook::ShadowHook;
pub use leaks::{Leaks, StateLeak};

/// Runs `invocations` one after another on one fresh environment, which is killed afterwards; the
/// reply has each one's result, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunShadow {
    pub invocations: Vec<Invocation>,
    pub reply: oneshot::Sender<Vec<InvokeResult>>,
}

/// [`RunShadow`] by handler name, through the router. An unknown name gets an empty reply.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShadowByName {
    pub name: String,
    pub shadow: RunShadow,
}

/// Builds the shadow's worker actor, which reports to the runner.
type MakeWorker = Box<dyn FnOnce(Recipient<WorkerChanged>) -> WorkerActor>;

/// One handler's shadow environments: one worker slot outside the pool, taking one job at a time.
/// Its worker actor is made for the first job: most handlers never run one, and an idle server with
/// a hundred handlers would otherwise hold a hundred idle worker actors.
pub struct ShadowRunner {
    handler: String,
    worker: Shadow,
    /// The shadow worker's current process, as it last reported.
    pid: Option<u32>,
    /// Values that differ between any two environments of the handler by design (worker names, log
    /// stream names), for the comparison.
    context: Arc<Vec<String>>,
    leaks: Leaks,
}

/// The shadow's worker: still to be made, or running.
enum Shadow {
    Unmade(MakeWorker),
    Made(Addr<WorkerActor>),
    /// Only while the first job makes it.
    Making,
}

impl ShadowRunner {
    /// Starts the runner; `make_worker(runner)` builds its worker actor when the first job arrives.
    pub fn start(
        handler: String,
        context: Vec<String>,
        leaks: Leaks,
        make_worker: impl FnOnce(Recipient<WorkerChanged>) -> WorkerActor + 'static,
    ) -> Addr<Self> {
        let worker = Shadow::Unmade(Box::new(make_worker));
        ShadowRunner { handler, worker, pid: None, context: Arc::new(context), leaks }.start()
    }

    /// The worker actor, made on first use.
    fn worker(&mut self, ctx: &Context<Self>) -> Addr<WorkerActor> {
        let made = match std::mem::replace(&mut self.worker, Shadow::Making) {
            Shadow::Unmade(make) => make(ctx.address().recipient()).start(),
            Shadow::Made(worker) => worker,
            Shadow::Making => unreachable!("the shadow worker is made inside one handler call"),
        };
        self.worker = Shadow::Made(made.clone());
        made
    }

    /// Runs `invocations` in order on the shadow worker, then recycles it (kills the process: the
    /// next job starts fresh).
    async fn run_all(worker: Addr<WorkerActor>, invocations: Vec<Invocation>) -> Vec<InvokeResult> {
        let mut results = Vec::with_capacity(invocations.len());
        for invocation in invocations {
            let (reply, answer) = oneshot::channel();
            if worker.send(Run { invocation, reply }).await.is_err() {
                results.push(Err(Rejection::Unavailable));
                continue;
            }
            results.push(answer.await.unwrap_or(Err(Rejection::Unavailable)));
        }
        worker.do_send(Recycle);
        results
    }
}

impl Actor for ShadowRunner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
    }
}

impl Handler<RunShadow> for ShadowRunner {
    type Result = AtomicResponse<Self, ()>;

    /// One job at a time: the next waits in the mailbox until this one's environment is recycled.
    fn handle(
        &mut self,
        RunShadow { invocations, reply }: RunShadow,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let job = Self::run_all(self.worker(ctx), invocations);
        AtomicResponse::new(Box::pin(actix::fut::wrap_future(job).map(move |results, _, _| {
            let _ = reply.send(results);
        })))
    }
}

impl Handler<WorkerChanged> for ShadowRunner {
    type Result = ();

    fn handle(&mut self, msg: WorkerChanged, _: &mut Context<Self>) {
        self.pid = msg.status.pid;
    }
}

/// Stops the shadow's process (server shutdown), as the pool's workers are stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopShadow(pub Signal);

impl Handler<StopShadow> for ShadowRunner {
    type Result = ();

    fn handle(&mut self, StopShadow(signal): StopShadow, _: &mut Context<Self>) {
        if let Shadow::Made(worker) = &self.worker {
            worker.do_send(Stop { signal });
        }
    }
}

/// Whether the shadow has no process left (for shutdown).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ShadowGone;

impl Handler<ShadowGone> for ShadowRunner {
    type Result = bool;

    fn handle(&mut self, _: ShadowGone, _: &mut Context<Self>) -> bool {
        self.pid.is_none()
    }
}

/// A copy of `invocation` for a shadow: the same event and context (client context, ARN), a new
/// arrival time, and no log sink (the caller's log is the warm run's).
pub fn clone_for_shadow(invocation: &Invocation) -> Invocation {
    Invocation {
        payload: invocation.payload.clone(),
        client_context: invocation.client_context.clone(),
        function_arn: invocation.function_arn.clone(),
        received: std::time::Instant::now(),
        log: None,
        tenant: invocation.tenant.clone(),
        origin: crate::recorder::Origin::new(crate::recorder::Source::Shadow),
    }
}
