//! `WorkerActor`: one slot of a handler's pool. It owns at most one child process, runs the state
//! machine, hands one invocation at a time to the runtime through the Runtime API, and enforces the
//! timeout.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use nix::sys::signal::Signal;
use smyth_config::{HandlerConfig, Strategy};
use tokio::sync::oneshot;

use crate::invocation::{FailureKind, Invocation, Outcome};
use crate::messages::*;
use crate::process::{self, SpawnSpec};
use crate::sampler::{self, Sample, Sampler};
use crate::state::{allowed, WorkerState};

mod exit;
mod runtime_api;
mod tail;

use crate::status::{epoch_ms, WorkerStatus};
use tail::{Capture, Draining};

/// Idle time after which a worker's process is checked before it is handed an invocation.
const DEATH_CHECK_AFTER: Duration = Duration::from_millis(1);

/// The invocation the runtime is running.
struct InFlight {
    request_id: String,
    /// Kept to hand it to a new process if the runtime never read it (see `Undelivered`).
    invocation: Invocation,
    reply: Reply,
    started: Instant,
    timer: SpawnHandle,
    /// Set on the first invocation after a cold start, for the REPORT line.
    init_duration: Option<Duration>,
    /// The caller wants the invocation's log (`X-Amz-Log-Type: Tail`).
    log: Option<Capture>,
}

pub struct WorkerActor {
    slot: usize,
    name: String,
    handler: Arc<HandlerConfig>,
    spec: SpawnSpec,
    function_arn: String,
    supervisor: Recipient<WorkerChanged>,
    state: WorkerState,
    /// The runtime is parked in `/next`.
    waiting_next: Option<oneshot::Sender<NextEvent>>,
    /// Assigned but not yet handed to the runtime (it is starting, or between `/response` and `/next`).
    pending: Option<(Invocation, Reply)>,
    current: Option<InFlight>,
    /// A finished invocation whose log is still being read from the pipe.
    draining: Option<Draining>,
    /// A second handle on the current process's output pipe, to see what is still unread.
    output: Option<std::io::PipeReader>,
    /// What the runtime reported to `/init/error`.
    init_error: Option<(String, Bytes)>,
    /// Init duration of the current process, until its first invocation reports it.
    unreported_init: Option<Duration>,
    /// The current process is being stopped on purpose: its exit is no crash.
    stop_expected: bool,
    /// A reload asked for a fresh process: stop this one once the invocation in flight ends.
    recycle_after: bool,
    /// Stops the process when it stays warm and idle for `idle_timeout` (on-demand workers only).
    idle_timer: Option<SpawnHandle>,
    provisioned: bool,
    invocations: u64,
    cold_starts: u64,
    restarts: u64,
    last_used: Option<SystemTime>,
    sampler: Sampler,
    /// The current process's latest measurement, and its highest RSS yet (for `Max Memory Used`).
    usage: Option<Sample>,
    peak_rss: Option<u64>,
}

impl WorkerActor {
    pub fn new(
        slot: usize,
        handler: Arc<HandlerConfig>,
        spec: SpawnSpec,
        function_arn: String,
        supervisor: Recipient<WorkerChanged>,
        sampler: Sampler,
    ) -> Self {
        Self {
            slot,
            name: format!("{}:{slot}", handler.name),
            provisioned: slot < handler.provisioned_concurrency,
            handler,
            spec,
            function_arn,
            supervisor,
            state: WorkerState::Cold,
            waiting_next: None,
            pending: None,
            current: None,
            draining: None,
            output: None,
            init_error: None,
            unreported_init: None,
            stop_expected: false,
            recycle_after: false,
            idle_timer: None,
            invocations: 0,
            cold_starts: 0,
            restarts: 0,
            last_used: None,
            sampler,
            usage: None,
            peak_rss: None,
        }
    }

    pub fn status(&self) -> WorkerStatus {
        WorkerStatus {
            id: self.name.clone(),
            state: self.state.kind(),
            pid: self.state.pid(),
            invocations: self.invocations,
            cold_starts: self.cold_starts,
            restarts: self.restarts,
            last_used: self.last_used.map(epoch_ms),
            rss_bytes: self.usage.map(|u| u.rss_bytes),
            cpu_percent: self.usage.map(|u| u.cpu_percent),
        }
    }

    /// Moves to `next` if the table allows it; an illegal move is a bug, logged and not applied.
    fn transition(&mut self, next: WorkerState) -> bool {
        let (from, to) = (self.state.kind(), next.kind());
        if !allowed(from, to) {
            tracing::error!(worker = %self.name, ?from, ?to, "illegal worker state transition");
            return false;
        }
        self.state = next;
        true
    }

    fn report(&self, finished: bool) {
        self.report_init(finished, None);
    }

    fn report_init(&self, finished: bool, init_error: Option<(FailureKind, String)>) {
        self.supervisor.do_send(WorkerChanged {
            slot: self.slot,
            status: self.status(),
            finished,
            init_error,
        });
    }

    /// Moves the work along: starts a process for a pending invocation, or hands it to a waiting runtime.
    fn advance(&mut self, ctx: &mut Context<Self>) {
        match self.state {
            WorkerState::Cold if self.pending.is_some() => self.start_process(ctx),
            WorkerState::Warm { .. } if self.pending.is_some() && self.waiting_next.is_some() => {
                self.deliver(ctx)
            }
            _ => {}
        }
    }

    fn start_process(&mut self, ctx: &mut Context<Self>) {
        let mut spec = self.spec.clone();
        let kind =
            if self.provisioned && self.pending.is_none() { "provisioned-concurrency" } else { "on-demand" };
        spec.env.insert("AWS_LAMBDA_INITIALIZATION_TYPE".into(), kind.into());
        let (lines, exits) = (ctx.address(), ctx.address());
        let on_line = move |line: &str| lines.do_send(OutputLine(line.to_string()));
        match process::spawn(&spec, &self.name, on_line, move |pid, exit| {
            exits.do_send(ChildExited { pid, exit })
        }) {
            Ok(process::Spawned { pid, output }) => {
                self.output = output;
                tracing::debug!(worker = %self.name, pid, "cold start");
                self.sampler.watch(pid, ctx.address().recipient());
                self.cold_starts += 1;
                self.stop_expected = false;
                self.recycle_after = false;
                self.init_error = None;
                self.transition(WorkerState::Starting { pid, since: Instant::now() });
                self.report(false);
            }
            Err(err) => {
                tracing::error!(worker = %self.name, command = ?self.spec.argv, %err, "could not start the worker");
                let kind = FailureKind::Init("Runtime.ExitError".into());
                let message = format!("could not start `{}`: {err}", self.spec.argv[0]);
                let finished = self.fail_pending(kind.clone(), message.clone());
                self.report_init(finished, Some((kind, message)));
            }
        }
    }

    fn deliver(&mut self, ctx: &mut Context<Self>) {
        let (Some((invocation, reply)), Some(next)) = (self.pending.take(), self.waiting_next.take()) else {
            return;
        };
        let WorkerState::Warm { pid, since } = self.state else {
            return;
        };
        // A worker idle for a while may have died without its exit being noticed yet: an invocation
        // waits for its replacement rather than going down with it. Back-to-back requests skip this.
        if since.elapsed() >= DEATH_CHECK_AFTER && process::doomed(pid) {
            self.pending = Some((invocation, reply));
            self.waiting_next = Some(next);
            return;
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = self.handler.timeout;
        let deadline = SystemTime::now() + timeout;
        let event = NextEvent {
            request_id: request_id.clone(),
            deadline_ms: epoch_ms(deadline),
            function_arn: self.function_arn.clone(),
            trace_id: trace_id(&request_id),
            client_context: invocation.client_context.clone(),
            payload: invocation.payload.clone(),
        };
        if next.send(event).is_err() {
            // The runtime hung up while parked; keep the invocation for its next `/next` or a new process.
            self.pending = Some((invocation, reply));
            return;
        }
        self.disarm_idle(ctx);
        let timer = ctx.run_later(timeout, {
            let request_id = request_id.clone();
            move |act, _| act.on_timeout(&request_id)
        });
        self.invocations += 1;
        self.last_used = Some(SystemTime::now());
        self.transition(WorkerState::Busy { pid, request_id: request_id.clone(), started: Instant::now() });
        let invocation_log = invocation.log.clone().map(Capture::new);
        self.current = Some(InFlight {
            request_id,
            invocation,
            reply,
            started: Instant::now(),
            timer,
            init_duration: self.unreported_init.take(),
            log: invocation_log,
        });
        self.report(false);
    }

    /// Ends the current invocation with `outcome`; the slot may take the next request. A caller that
    /// wants the log is answered once the runtime's output before its result has been read.
    fn finish(&mut self, ctx: &mut Context<Self>, outcome: Outcome) {
        let Some(mut flight) = self.current.take() else {
            return;
        };
        ctx.cancel_future(flight.timer);
        let report = self.log_report(&flight);
        match flight.log.take() {
            None => {
                let _ = flight.reply.send(Ok(outcome));
            }
            Some(capture) => {
                let draining =
                    Draining { request_id: flight.request_id, capture, report, reply: flight.reply, outcome };
                self.drain(ctx, draining);
            }
        }
    }

    /// Logs the invocation's `REPORT` line, and returns it.
    fn log_report(&self, flight: &InFlight) -> String {
        let duration = flight.started.elapsed().as_secs_f64() * 1000.0;
        let init =
            flight.init_duration.map(|d| format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0));
        let max_memory_used_mb = self.peak_rss.map(sampler::whole_mb);
        let memory = max_memory_used_mb.map(|mb| format!("\tMax Memory Used: {mb} MB"));
        let report = format!(
            "REPORT RequestId: {}\tDuration: {duration:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB{}{}",
            flight.request_id,
            duration.ceil() as u64,
            self.handler.memory_size,
            memory.unwrap_or_default(),
            init.unwrap_or_default(),
        );
        tracing::info!(target: "smyth::report", "{} | {report}", crate::logs::prefix(&self.name));
        report
    }

    /// Fails the invocation waiting for a process; whether there was one.
    fn fail_pending(&mut self, kind: FailureKind, message: String) -> bool {
        let Some((_, reply)) = self.pending.take() else { return false };
        let _ = reply.send(Ok(Outcome::Failed { request_id: String::new(), error: kind, message }));
        true
    }

    fn on_timeout(&mut self, request_id: &str) {
        let Some(pid) = self.state.pid() else { return };
        if self.current.as_ref().map(|f| f.request_id.as_str()) != Some(request_id) {
            return;
        }
        let Some(flight) = self.current.take() else {
            return;
        };
        let seconds = self.handler.timeout.as_secs_f64();
        tracing::warn!(worker = %self.name, request_id, "task timed out after {seconds:.2} seconds; killing pid {pid}");
        process::kill_group(pid, Signal::SIGKILL);
        self.stop_expected = true;
        self.transition(WorkerState::Stopping { pid });
        let report = self.log_report(&flight);
        if let Some(capture) = flight.log {
            capture.send(request_id, &report);
        }
        let _ = flight.reply.send(Ok(Outcome::Failed {
            request_id: request_id.to_string(),
            error: FailureKind::Timeout(self.handler.timeout),
            message: format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds"),
        }));
        self.report(true);
    }

    /// Back to warm after an invocation: stop now if the strategy or a reload wants a fresh process,
    /// else start counting idle time.
    fn after_invocation(&mut self, ctx: &mut Context<Self>) {
        if self.handler.strategy == Strategy::AlwaysCold || self.recycle_after {
            self.recycle();
        } else {
            self.arm_idle(ctx);
        }
    }

    /// Starts the idle countdown of a warm on-demand worker (provisioned ones stay warm, as on AWS).
    fn arm_idle(&mut self, ctx: &mut Context<Self>) {
        self.disarm_idle(ctx);
        let Some(limit) = self.handler.idle_timeout else { return };
        if self.provisioned {
            return;
        }
        self.idle_timer = Some(ctx.run_later(limit, |act, _| act.on_idle()));
    }

    fn disarm_idle(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
    }

    fn on_idle(&mut self) {
        self.idle_timer = None;
        if !matches!(self.state, WorkerState::Warm { .. }) || self.pending.is_some() || self.current.is_some()
        {
            return;
        }
        let idle = self.handler.idle_timeout.unwrap_or_default().as_secs_f64();
        tracing::info!(worker = %self.name, pid = ?self.state.pid(), "idle for {idle}s; stopping");
        self.recycle();
        self.report(false);
    }

    fn note_peak(&mut self, rss_bytes: u64) {
        self.peak_rss = Some(self.peak_rss.map_or(rss_bytes, |peak| peak.max(rss_bytes)));
    }

    /// The process passed `memory_size`: kill its group, as Lambda's OOM killer would. The invocation
    /// in flight fails with `Runtime.OutOfMemory` and AWS's message; a process still initialising fails
    /// its init with that type. It counts as a restart, like a crash; the next request is a cold start.
    fn out_of_memory(&mut self, ctx: &mut Context<Self>, rss_bytes: u64) {
        let Some(pid) = self.state.pid() else { return };
        tracing::error!(
            worker = %self.name,
            pid,
            "{} exceeded memory_size {} MB (RSS {} MB); killing pid {pid}",
            self.name,
            self.handler.memory_size,
            sampler::whole_mb(rss_bytes),
        );
        process::kill_group(pid, Signal::SIGKILL);
        let was_starting = matches!(self.state, WorkerState::Starting { .. });
        self.stop_expected = true;
        self.restarts += 1;
        self.disarm_idle(ctx);
        self.transition(WorkerState::Stopping { pid });
        let kind = FailureKind::OutOfMemory;
        let mut finished = false;
        let mut init_error = None;
        if let Some(request_id) = self.current.as_ref().map(|f| f.request_id.clone()) {
            let message = format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed");
            // The REPORT line first, then the error, as in a Lambda log stream.
            let error_type = kind.error_type().to_string();
            self.finish(ctx, Outcome::Failed { request_id, error: kind, message: message.clone() });
            tracing::error!(worker = %self.name, pid, "{message} ({error_type})");
            finished = true;
        } else if was_starting {
            let message = "Runtime exited with error: signal: killed".to_string();
            finished = self.fail_pending(kind.clone(), message.clone());
            init_error = Some((kind, message));
        }
        self.report_init(finished, init_error);
    }

    /// Kills the process on purpose (recycling, shutdown); the slot turns cold when it is reaped.
    fn recycle(&mut self) {
        if let Some(pid) = self.state.pid() {
            self.stop_expected = true;
            if self.transition(WorkerState::Stopping { pid }) {
                process::kill_group(pid, Signal::SIGKILL);
            }
        }
    }
}

/// An X-Ray style trace header for the invocation.
fn trace_id(request_id: &str) -> String {
    let secs = epoch_ms(SystemTime::now()) / 1000;
    let hex: String = request_id.chars().filter(|c| *c != '-').take(24).collect();
    format!("Root=1-{secs:08x}-{hex};Parent={};Sampled=0", &hex[..16])
}

impl Actor for WorkerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(pid) = self.state.pid() {
            self.sampler.unwatch(pid);
            process::kill_group(pid, Signal::SIGKILL);
        }
    }
}

impl Handler<Run> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: Run, ctx: &mut Context<Self>) {
        if self.pending.is_some() || self.current.is_some() {
            tracing::error!(worker = %self.name, "invocation assigned to an occupied worker");
        }
        self.pending = Some((msg.invocation, msg.reply));
        self.advance(ctx);
    }
}

impl Handler<Recycle> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: Recycle, ctx: &mut Context<Self>) {
        match self.state {
            WorkerState::Cold | WorkerState::Stopping { .. } => {}
            // Stopped by `after_invocation` once the invocation ends.
            WorkerState::Busy { .. } => self.recycle_after = true,
            WorkerState::Starting { .. } | WorkerState::Warm { .. } => {
                self.disarm_idle(ctx);
                self.recycle();
                self.report(false);
            }
        }
    }
}

impl Handler<Warmup> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: Warmup, ctx: &mut Context<Self>) {
        if matches!(self.state, WorkerState::Cold) {
            self.start_process(ctx);
        }
    }
}

/// Stops the worker's process on purpose (shutdown, reload, idle timeout): SIGTERM or SIGKILL to its group.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop {
    pub signal: Signal,
}

impl Handler<Stop> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: Stop, _: &mut Context<Self>) {
        let Some(pid) = self.state.pid() else { return };
        self.stop_expected = true;
        if !matches!(self.state, WorkerState::Stopping { .. }) && self.current.is_none() {
            self.transition(WorkerState::Stopping { pid });
            self.report(false);
        }
        process::kill_group(pid, msg.signal);
    }
}
