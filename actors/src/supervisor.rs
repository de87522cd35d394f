//! `HandlerSupervisor`: one per handler. Owns the worker actors of the pool, admits requests (dispatch,
//! queue or throttle, decided by `strategy`), keeps the FIFO queue and the status view, keeps
//! provisioned workers warm, and backs off slots whose init keeps failing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use smyth_config::HandlerConfig;

use crate::async_queue::{CapacityFreed, WatchCapacity};
use crate::backoff::init_backoff;
use crate::invocation::{FailureKind, Invocation, Outcome, Rejection};
use crate::managed::{status::Environments, EnvironmentChanged, SlotAddr};
use crate::messages::*;
use crate::metrics::{Ended, HandlerCounters, Now};
use crate::shadow::{ShadowHook, StopShadow};
use crate::state::StateKind;
use crate::status::{epoch_ms, HandlerStatus, WorkerStatus};
use crate::strategy::{admit_picking, pick, pool_size, resize, Admission, Limits, SlotView};
use crate::tenancy::{must_reclaim, pick_for_tenant};
use crate::worker::{Stop, WorkerActor};

mod equip;
pub use equip::Equip;

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

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// A slot whose init keeps failing: no new process before `retry_at`; requests get `error` meanwhile.
struct InitFailures {
    count: u32,
    retry_at: Instant,
    error: (FailureKind, String),
}

struct Slot {
    addr: SlotAddr,
    view: SlotView,
    status: WorkerStatus,
    failing: Option<InitFailures>,
    /// With tenant isolation: the tenant this slot's worker serves (None until its first invocation).
    tenant: Option<String>,
}

impl Slot {
    /// The init error to answer with instead of starting a process, while backing off.
    fn backing_off(&self) -> Option<&(FailureKind, String)> {
        let failing = self.failing.as_ref()?;
        (self.view.state == StateKind::Cold && Instant::now() < failing.retry_at).then_some(&failing.error)
    }

    /// The worker's status as shown: a cold slot whose init keeps failing is in `backoff`, with the
    /// time of its next start.
    fn shown(&self) -> WorkerStatus {
        let mut status = self.status.clone();
        if let (Some(failing), StateKind::Cold) = (&self.failing, self.view.state) {
            let wait = failing.retry_at.saturating_duration_since(Instant::now());
            status.state = StateKind::Backoff;
            status.retry_at = Some(epoch_ms(SystemTime::now() + wait));
        }
        status.tenant = self.tenant.clone();
        status
    }
}

pub struct HandlerSupervisor {
    handler: Arc<HandlerConfig>,
    slots: Vec<Slot>,
    queue: VecDeque<(Invocation, Reply)>,
    account: Arc<AccountLimit>,
    /// Dispatch sequence, for least-recently-used decisions.
    sequence: u64,
    metrics: HandlerCounters,
    shutting_down: bool,
    /// Told whenever a slot frees, so throttled asynchronous events run at once.
    capacity_watcher: Option<Recipient<CapacityFreed>>,
    /// The handler's throwaway environments and the state-leak detector (`shadow/`).
    shadow: Option<ShadowHook>,
    /// A managed-instances handler's environments, as they last reported (for the status).
    environments: Environments,
    /// SnapStart's template (bundled runtime), re-created on reload.
    template: Option<Arc<crate::forkserver::template::SnapTemplate>>,
    /// Records throttled requests (workers record the rest).
    recorder: crate::recorder::Recorder,
    /// Chaos mode's draws and counts, when it is on.
    chaos: Option<crate::chaos::HandlerChaos>,
}

impl HandlerSupervisor {
    /// Starts the supervisor and its workers; `make_worker(slot, supervisor)` builds each worker actor.
    pub fn start(
        handler: Arc<HandlerConfig>,
        account: Arc<AccountLimit>,
        make_worker: impl Fn(usize, Recipient<WorkerChanged>) -> WorkerActor,
    ) -> (Addr<Self>, Vec<Addr<WorkerActor>>) {
        let mut workers = Vec::new();
        let concurrency = handler.concurrency;
        let addr = Self::start_with(handler, account, |ctx| {
            (0..concurrency)
                .map(|slot| {
                    let worker = make_worker(slot, ctx.address().recipient());
                    let status = worker.status();
                    let addr = worker.start();
                    workers.push(addr.clone());
                    (SlotAddr::Worker(addr), status)
                })
                .collect()
        });
        (addr, workers)
    }

    /// Starts the supervisor over the slots `make_slots` starts (workers, or managed environments'
    /// slots).
    pub fn start_with(
        handler: Arc<HandlerConfig>,
        account: Arc<AccountLimit>,
        make_slots: impl FnOnce(&mut Context<Self>) -> Vec<(SlotAddr, WorkerStatus)>,
    ) -> Addr<Self> {
        HandlerSupervisor::create(|ctx| {
            let slots = make_slots(ctx)
                .into_iter()
                .map(|(addr, status)| {
                    let view = SlotView { state: StateKind::Cold, assigned: false, last_used: None };
                    Slot { addr, view, status, failing: None, tenant: None }
                })
                .collect();
            HandlerSupervisor {
                handler,
                slots,
                queue: VecDeque::new(),
                account,
                sequence: 0,
                metrics: HandlerCounters::default(),
                shutting_down: false,
                capacity_watcher: None,
                shadow: None,
                environments: Environments::default(),
                template: None,
                recorder: Default::default(),
                chaos: None,
            }
        })
    }

    /// The slots that take requests: the first `handler.concurrency` (fewer than all while a live
    /// reserved concurrency shrinks the pool).
    fn views(&self) -> Vec<SlotView> {
        self.slots.iter().take(self.handler.capacity()).map(|s| s.view).collect()
    }

    fn limits(&self) -> Limits {
        // Managed instances reject a request that finds every slot busy, as reserved concurrency does.
        let throttles =
            self.handler.reserved_concurrency.is_some() || self.handler.managed_instances.is_some();
        Limits { reserved: throttles, queue_size: self.handler.queue_size }
    }

    /// The slot for `invocation`, or None to wait: by the strategy, among its tenant's slots under
    /// tenant isolation.
    fn choose(&self, invocation: &Invocation) -> Option<usize> {
        let views = self.views();
        if self.handler.tenant_id_header.is_none() {
            return pick(self.handler.strategy, &views, &mut random_below);
        }
        let bound: Vec<Option<&str>> = self.slots.iter().map(|s| s.tenant.as_deref()).collect();
        let tenant = invocation.tenant.as_deref().unwrap_or_default();
        pick_for_tenant(self.handler.strategy, &views, &bound[..views.len()], tenant, &mut random_below)
    }

    /// Under tenant isolation, binds `slot` to the invocation's tenant; another tenant's process in it
    /// is killed first, so the invocation runs in a fresh one.
    fn bind_tenant(&mut self, slot: usize, invocation: &Invocation) {
        if self.handler.tenant_id_header.is_none() {
            return;
        }
        let tenant = invocation.tenant.clone().unwrap_or_default();
        let target = &mut self.slots[slot];
        if must_reclaim(target.tenant.as_deref(), target.view.state, &tenant) {
            tracing::info!(
                handler = %self.handler.name,
                worker = %target.status.id,
                "reclaimed from tenant {:?} for tenant {tenant:?}",
                target.tenant.as_deref().unwrap_or_default()
            );
            target.addr.do_send(Recycle);
        }
        target.tenant = Some(tenant);
    }

    /// Hands the invocation to `slot`, or answers with the slot's init error while it backs off.
    fn dispatch(&mut self, slot: usize, mut invocation: Invocation, reply: Reply) {
        if let Some((error, message)) = self.slots[slot].backing_off() {
            let outcome =
                Outcome::Failed { request_id: String::new(), error: error.clone(), message: message.clone() };
            // It never reached a process, but the caller got a function error: one invocation, one error.
            self.metrics.ended(&Ended::of(&outcome, None));
            let _ = reply.send(Ok(outcome));
            return;
        }
        self.bind_tenant(slot, &invocation);
        if let (Some(chaos), Some(injected)) = (&mut self.chaos, &mut invocation.origin.chaos) {
            crate::chaos::at_dispatch(chaos, self.slots[slot].view.state == StateKind::Warm, injected);
        }
        self.sequence += 1;
        self.account.acquire();
        let target = &mut self.slots[slot];
        let reply = match &mut self.shadow {
            Some(shadow) => shadow.watch(&invocation, reply, &target.status.id, target.status.pid),
            None => reply,
        };
        target.view.assigned = true;
        target.view.last_used = Some(self.sequence);
        target.addr.do_send(Run { invocation, reply });
        let in_flight = self.slots.iter().filter(|s| s.view.assigned).count();
        self.metrics.concurrency(in_flight);
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
            let Some(slot) = self.choose(&self.queue.front().expect("front exists").0) else { return };
            let (invocation, reply) = self.queue.pop_front().expect("front exists");
            self.dispatch(slot, invocation, reply);
        }
    }

    /// Records how the slot's last init went (`healthy`: an invocation just completed), and restarts a
    /// provisioned slot when it is due.
    fn track_init(
        &mut self,
        slot: usize,
        init_error: Option<(FailureKind, String)>,
        healthy: bool,
        ctx: &mut Context<Self>,
    ) {
        let target = &mut self.slots[slot];
        match init_error {
            Some(error) => {
                let count = target.failing.as_ref().map_or(0, |f| f.count) + 1;
                let pause = init_backoff(count);
                tracing::info!(
                    handler = %self.handler.name,
                    worker = %target.status.id,
                    failures = count,
                    "next start of {} in {pause:?} (init failures in a row: {count})",
                    target.status.id
                );
                target.failing = Some(InitFailures { count, retry_at: Instant::now() + pause, error });
            }
            // A healthy invocation ends the backoff.
            None if healthy => target.failing = None,
            None => {}
        }
        let provisioned = slot < self.handler.provisioned_concurrency && !self.shutting_down;
        if provisioned && target.view.state == StateKind::Cold && !target.view.assigned {
            let pause = target.failing.as_ref().map_or(Duration::ZERO, |f| f.retry_at - Instant::now());
            let addr = target.addr.clone();
            ctx.run_later(pause, move |_, _| addr.do_send(Warmup));
        }
    }

    fn status(&self) -> HandlerStatus {
        let busy = |slots: &[Slot]| slots.iter().filter(|s| s.view.assigned).count();
        let provisioned = &self.slots[..self.handler.provisioned_concurrency.min(self.slots.len())];
        let now = Now {
            concurrent: busy(&self.slots),
            provisioned_busy: busy(provisioned),
            provisioned: provisioned.len(),
            cold_starts: self.slots.iter().map(|s| s.status.cold_starts).sum(),
        };
        let metrics = self.metrics.snapshot(now);
        let leaks = self.shadow.as_ref().map(|s| s.leaks.snapshot()).unwrap_or_default();
        HandlerStatus {
            name: self.handler.name.clone(),
            url_path: self.handler.url_path.clone(),
            concurrency: self.handler.concurrency,
            reserved_concurrency: self.handler.reserved_concurrency,
            provisioned_concurrency: self.handler.provisioned_concurrency,
            strategy: self.handler.strategy.as_str(),
            workers: self.slots.iter().map(Slot::shown).collect(),
            queued: self.queue.len(),
            throttled: metrics.throttles,
            metrics,
            state_checks: leaks.checked,
            state_leaks: leaks.leaks,
            last_state_leak: leaks.last,
            chaos: self.chaos.as_ref().map(|c| c.counts),
            account_limit: self.account.limit(),
            managed: self.environments.shown(&self.handler),
        }
    }
}

impl HandlerSupervisor {
    /// Applies a live change of reserved / provisioned concurrency to the running pool: newly
    /// provisioned slots start warm, released and retired ones stop after their invocation, and the
    /// next request is admitted under the new limits. The API has validated it; this only clamps.
    fn change_concurrency(&mut self, reserved: Option<usize>, provisioned: usize, what: &str) {
        let pool = pool_size(reserved, self.slots.len());
        let provisioned = provisioned.min(pool);
        let before = (self.handler.concurrency, self.handler.provisioned_concurrency);
        let handler = Arc::make_mut(&mut self.handler);
        handler.reserved_concurrency = reserved;
        handler.provisioned_concurrency = provisioned;
        handler.concurrency = pool;
        let plan = resize(before, (pool, provisioned));
        tracing::info!(
            handler = %self.handler.name,
            reserved = ?reserved,
            provisioned,
            "{what} through the Lambda API; this lasts until the server stops (the config file is not changed)"
        );
        if self.shutting_down {
            return;
        }
        for slot in &self.slots[plan.provision] {
            slot.addr.do_send(SetProvisioned(true));
            if slot.view.state == StateKind::Cold && !slot.view.assigned && slot.backing_off().is_none() {
                slot.addr.do_send(Warmup);
            }
        }
        for slot in &self.slots[plan.unprovision] {
            slot.addr.do_send(SetProvisioned(false));
            slot.addr.do_send(Recycle);
        }
        for slot in &self.slots[plan.retire] {
            slot.addr.do_send(SetProvisioned(false));
            slot.addr.do_send(Recycle);
        }
        self.drain_queue();
        // With reserved concurrency set, a request that finds no free slot is throttled, not queued.
        if self.handler.reserved_concurrency.is_some() {
            for (_, reply) in self.queue.drain(..) {
                self.metrics.throttled();
                let _ = reply.send(Err(Rejection::ReservedConcurrency));
            }
        }
    }
}

impl Handler<SetReservedConcurrency> for HandlerSupervisor {
    type Result = Result<(), Rejection>;

    fn handle(&mut self, msg: SetReservedConcurrency, _: &mut Context<Self>) -> Self::Result {
        let what = match msg.reserved {
            Some(n) => format!("reserved concurrency set to {n}"),
            None => "reserved concurrency removed".to_string(),
        };
        self.change_concurrency(msg.reserved, self.handler.provisioned_concurrency, &what);
        Ok(())
    }
}

impl Handler<SetProvisionedConcurrency> for HandlerSupervisor {
    type Result = Result<(), Rejection>;

    fn handle(&mut self, msg: SetProvisionedConcurrency, _: &mut Context<Self>) -> Self::Result {
        let what = format!("provisioned concurrency set to {}", msg.provisioned);
        self.change_concurrency(self.handler.reserved_concurrency, msg.provisioned, &what);
        Ok(())
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
    type Result = ();

    fn handle(&mut self, Invoke { invocation, reply }: Invoke, ctx: &mut Context<Self>) {
        if self.shutting_down {
            let _ = reply.send(Err(Rejection::Unavailable));
            return;
        }
        // Chaos mode may throttle or delay it (then it is answered or comes back later).
        let Some((invocation, reply)) = self.chaos_admission(invocation, reply, ctx) else { return };
        let (views, room) = (self.views(), self.account.has_room());
        let decision =
            admit_picking(&views, self.queue.len(), self.limits(), room, || self.choose(&invocation));
        match decision {
            Admission::Dispatch(slot) => self.dispatch(slot, invocation, reply),
            Admission::Queue => self.queue.push_back((invocation, reply)),
            Admission::Throttle(rejection) => self.throttle(invocation, reply, rejection),
        }
    }
}

impl Handler<WorkerChanged> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerChanged, ctx: &mut Context<Self>) {
        if let Some(ended) = &msg.ended {
            self.metrics.ended(ended);
        }
        if let Some(duration) = msg.init_done {
            self.metrics.init_done(duration);
        }
        let slot = &mut self.slots[msg.slot];
        slot.view.state = msg.status.state;
        slot.status = msg.status;
        let freed = msg.finished && slot.view.assigned;
        if freed {
            slot.view.assigned = false;
            self.account.release();
        }
        // An invocation answered (the worker is warm, or busy until the runtime asks for `/next`).
        let healthy = msg.finished
            && msg.init_error.is_none()
            && matches!(slot.view.state, StateKind::Warm | StateKind::Busy);
        self.track_init(msg.slot, msg.init_error, healthy, ctx);
        self.drain_queue();
        if let Some(watcher) = self.capacity_watcher.as_ref().filter(|_| freed) {
            watcher.do_send(CapacityFreed { handler: self.handler.name.clone() });
        }
    }
}

/// Gives the supervisor its handler's shadow environments (and the state-leak detector).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachShadow(pub ShadowHook);

impl Handler<AttachShadow> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, AttachShadow(hook): AttachShadow, _: &mut Context<Self>) {
        self.shadow = Some(hook);
    }
}

impl Handler<EnvironmentChanged> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, msg: EnvironmentChanged, _: &mut Context<Self>) {
        self.environments.update(msg.index, msg.status);
    }
}

impl Handler<WatchCapacity> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, WatchCapacity(watcher): WatchCapacity, _: &mut Context<Self>) {
        self.capacity_watcher = Some(watcher);
    }
}

impl Handler<Reload> for HandlerSupervisor {
    type Result = ();

    /// Recycles every worker. Init backoff ends (the code that failed may be fixed), so a cold
    /// provisioned slot that was waiting it out starts again at once.
    fn handle(&mut self, _: Reload, _: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        if let Some(template) = &self.template {
            template.recycle(); // SnapStart: the snapshot is of the old code
        }
        for (i, slot) in self.slots.iter_mut().enumerate() {
            slot.failing = None;
            slot.addr.do_send(Recycle);
            let provisioned = i < self.handler.provisioned_concurrency;
            if provisioned && slot.view.state == StateKind::Cold && !slot.view.assigned {
                slot.addr.do_send(Warmup);
            }
        }
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

/// How long a worker gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

impl Handler<Shutdown> for HandlerSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    /// Refuses new work, lets in-flight invocations finish within the grace, then SIGTERM, a short
    /// grace, and SIGKILL for what is left.
    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        for (_, reply) in self.queue.drain(..) {
            let _ = reply.send(Err(Rejection::Unavailable));
        }
        let idle = |act: &mut Self| act.slots.iter().all(|s| !s.view.assigned);
        let gone = |act: &mut Self| act.slots.iter().all(|s| s.status.pid.is_none());
        Box::pin(
            wait_until(msg.grace, idle)
                .map(|_, act: &mut Self, _| act.signal_all(nix::sys::signal::Signal::SIGTERM))
                .then(move |_, _, _| wait_until(TERM_GRACE, gone))
                .map(|_, act, _| act.signal_all(nix::sys::signal::Signal::SIGKILL)),
        )
    }
}

impl HandlerSupervisor {
    fn signal_all(&self, signal: nix::sys::signal::Signal) {
        for slot in &self.slots {
            slot.addr.do_send(Stop { signal });
        }
        if let Some(shadow) = &self.shadow {
            shadow.runner.do_send(StopShadow(signal));
        }
    }
}

/// Resolves when `done(actor)` holds or after `limit`, checking every 20 ms.
fn wait_until<A: Actor<Context = Context<A>>>(
    limit: Duration,
    done: fn(&mut A) -> bool,
) -> impl ActorFuture<A, Output = ()> {
    let deadline = Instant::now() + limit;
    let ticks = futures_util::stream::unfold((), |_| async {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        Some(((), ()))
    });
    actix::fut::wrap_stream::<_, A>(ticks)
        .take_while(move |_, act, _| actix::fut::ready(!done(act) && Instant::now() < deadline))
        .finish()
}

/// SnapStart: the handler's template, re-created on reload.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecycleOnReload(pub Arc<crate::forkserver::template::SnapTemplate>);

impl Handler<RecycleOnReload> for HandlerSupervisor {
    type Result = ();

    fn handle(&mut self, RecycleOnReload(template): RecycleOnReload, _: &mut Context<Self>) {
        self.template = Some(template);
    }
}
