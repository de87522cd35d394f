//! `HandlerSupervisor`: one per handler. Owns the worker actors of the pool, admits requests (dispatch,
//! queue or throttle, decided by `strategy`), keeps the FIFO queue and the status view, and keeps
//! provisioned workers warm.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::FutureExt;
use smyth_config::HandlerConfig;
use tokio::sync::oneshot;

use crate::invocation::{Invocation, InvokeResult, Outcome, Rejection};
use crate::messages::*;
use crate::state::StateKind;
use crate::status::{HandlerStatus, WorkerStatus};
use crate::strategy::{admit, pick, Admission, Limits, SlotView};
use crate::worker::{Stop, WorkerActor};

/// The account-wide concurrency limit, shared by every supervisor.
#[derive(Debug)]
pub struct AccountLimit {
    in_flight: AtomicUsize,
    limit: usize,
}

impl AccountLimit {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { in_flight: AtomicUsize::new(0), limit })
    }

    fn has_room(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) < self.limit
    }

    fn acquire(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Slot {
    addr: Addr<WorkerActor>,
    view: SlotView,
    status: WorkerStatus,
}

type Waiting = (Invocation, oneshot::Sender<Outcome>);

pub struct HandlerSupervisor {
    handler: Arc<HandlerConfig>,
    slots: Vec<Slot>,
    queue: VecDeque<Waiting>,
    account: Arc<AccountLimit>,
    /// Dispatch sequence, for least-recently-used decisions.
    sequence: u64,
    throttled: u64,
    shutting_down: bool,
}

impl HandlerSupervisor {
    /// Starts the supervisor and its workers; `make_worker(slot, supervisor)` builds each worker actor.
    pub fn start(
        handler: Arc<HandlerConfig>,
        account: Arc<AccountLimit>,
        make_worker: impl Fn(usize, Recipient<WorkerChanged>) -> WorkerActor,
    ) -> (Addr<Self>, Vec<Addr<WorkerActor>>) {
        let mut workers = Vec::new();
        let addr = HandlerSupervisor::create(|ctx| {
            let slots = (0..handler.concurrency)
                .map(|slot| {
                    let worker = make_worker(slot, ctx.address().recipient());
                    let status = worker.status();
                    let addr = worker.start();
                    workers.push(addr.clone());
                    let view = SlotView { state: StateKind::Cold, assigned: false, last_used: None };
                    Slot { addr, view, status }
                })
                .collect();
            HandlerSupervisor {
                handler,
                slots,
                queue: VecDeque::new(),
                account,
                sequence: 0,
                throttled: 0,
                shutting_down: false,
            }
        });
        (addr, workers)
    }

    fn views(&self) -> Vec<SlotView> {
        self.slots.iter().map(|s| s.view).collect()
    }

    fn limits(&self) -> Limits {
        Limits { reserved: self.handler.reserved_concurrency.is_some(), queue_size: self.handler.queue_size }
    }

    fn dispatch(&mut self, slot: usize, invocation: Invocation, reply: oneshot::Sender<Outcome>) {
        self.sequence += 1;
        self.account.acquire();
        let target = &mut self.slots[slot];
        target.view.assigned = true;
        target.view.last_used = Some(self.sequence);
        target.addr.do_send(Run { invocation, reply });
    }

    /// Hands waiting requests to free slots, oldest first; drops those whose client went away.
    fn drain_queue(&mut self) {
        while let Some((_, reply)) = self.queue.front() {
            if reply.is_closed() {
                self.queue.pop_front();
                continue;
            }
            if !self.account.has_room() {
                return;
            }
            let Some(slot) = pick(self.handler.strategy, &self.views(), &mut random_below) else {
                return;
            };
            let (invocation, reply) = self.queue.pop_front().expect("front exists");
            self.dispatch(slot, invocation, reply);
        }
    }

    fn status(&self) -> HandlerStatus {
        HandlerStatus {
            name: self.handler.name.clone(),
            url_path: self.handler.url_path.clone(),
            concurrency: self.handler.concurrency,
            reserved_concurrency: self.handler.reserved_concurrency,
            provisioned_concurrency: self.handler.provisioned_concurrency,
            strategy: self.handler.strategy.as_str(),
            workers: self.slots.iter().map(|s| s.status.clone()).collect(),
            queued: self.queue.len(),
            throttled: self.throttled,
        }
    }
}

fn random_below(n: usize) -> usize {
    rand::random_range(0..n)
}

impl Actor for HandlerSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
        for slot in self.slots.iter().take(self.handler.provisioned_concurrency) {
            slot.addr.do_send(Warmup);
        }
    }
}

impl Handler<Invoke> for HandlerSupervisor {
    type Result = ResponseFuture<InvokeResult>;

    fn handle(&mut self, Invoke(invocation): Invoke, _: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Box::pin(async { Err(Rejection::Unavailable) });
        }
        let (reply, outcome) = oneshot::channel();
        let decision = admit(
            self.handler.strategy,
            &self.views(),
            self.queue.len(),
            self.limits(),
            self.account.has_room(),
            &mut random_below,
        );
        match decision {
            Admission::Dispatch(slot) => self.dispatch(slot, invocation, reply),
            Admission::Queue => self.queue.push_back((invocation, reply)),
            Admission::Throttle(rejection) => {
                self.throttled += 1;
                tracing::warn!(handler = %self.handler.name, "throttled: {rejection}");
                return Box::pin(async move { Err(rejection) });
            }
        }
        Box::pin(outcome.map(|result| result.map_err(|_| Rejection::Unavailable)))
    }
}

impl Handler<WorkerChanged> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerChanged, ctx: &mut Context<Self>) {
        let slot = &mut self.slots[msg.slot];
        slot.view.state = msg.status.state;
        slot.status = msg.status;
        if msg.finished && slot.view.assigned {
            slot.view.assigned = false;
            self.account.release();
        }
        // A provisioned worker that died is started again (after a pause if its init failed).
        let keep_warm = msg.slot < self.handler.provisioned_concurrency && !self.shutting_down;
        if keep_warm && slot.view.state == StateKind::Cold && !slot.view.assigned {
            let addr = slot.addr.clone();
            let pause = if msg.init_failed { Duration::from_secs(1) } else { Duration::ZERO };
            ctx.run_later(pause, move |_, _| addr.do_send(Warmup));
        }
        self.drain_queue();
    }
}

#[derive(Message)]
#[rtype(result = "HandlerStatus")]
pub struct GetHandlerStatus;

impl Handler<GetHandlerStatus> for HandlerSupervisor {
    type Result = MessageResult<GetHandlerStatus>;

    fn handle(&mut self, _: GetHandlerStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<Shutdown> for HandlerSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    /// Refuses new work, lets in-flight invocations finish within the grace, then kills every process.
    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        self.queue.clear();
        let deadline = actix_rt::time::Instant::now() + msg.grace;
        Box::pin(wait_until(deadline, |act: &mut Self| act.slots.iter().all(|s| !s.view.assigned)).map(
            |_, act, _| {
                for slot in &act.slots {
                    slot.addr.do_send(Stop { signal: nix::sys::signal::Signal::SIGKILL });
                }
            },
        ))
    }
}

/// Resolves when `done(actor)` holds or at the deadline, checking every 20 ms.
fn wait_until<A: Actor<Context = Context<A>>>(
    deadline: actix_rt::time::Instant,
    done: fn(&mut A) -> bool,
) -> impl ActorFuture<A, Output = ()> {
    actix::fut::wrap_stream::<_, A>(futures_util::stream::unfold((), |_| async {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        Some(((), ()))
    }))
    .take_while(move |_, act, _| actix::fut::ready(!done(act) && actix_rt::time::Instant::now() < deadline))
    .finish()
}
