//! `WorkerActor`: one slot of a handler's pool. Every decision is `machine::step`; this actor owns the
//! child process, the clock and the timers, feeds each message through `step` and carries out the
//! effects (spawn, kill, deliver, answer, arm a timer, report to the supervisor).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use nix::sys::signal::Signal;
use smyth_config::HandlerConfig;

use crate::invocation::Outcome;
use crate::messages::*;
use crate::process::{self, SpawnSpec};
use crate::sampler::{self, Sample, Sampler};
use crate::state::allowed;
use crate::status::{epoch_ms, Rss, WorkerStatus};

mod deliver;
mod exit;
mod listen;
pub mod machine;
pub(crate) mod peer;
mod record;
mod recording;
mod restore;
mod runtime_api;
pub use listen::open_failure;
pub use runtime_api::RestoreNext;
pub mod snapstart;
mod tail;
#[cfg(test)]
mod tests;

use machine::{Effect, Event, Facts, Job, ReportLine, State, Timer};
use tail::{Capture, Draining};

/// Idle time after which a worker's process is also read in /proc before it is handed an invocation.
const DEATH_CHECK_AFTER: Duration = Duration::from_millis(1);

pub struct WorkerActor {
    slot: usize,
    name: String,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`: one per slot, kept across its processes (none under SnapStart).
    log_stream: Option<String>,
    handler: Arc<HandlerConfig>,
    spec: SpawnSpec,
    function_arn: String,
    supervisor: Recipient<WorkerChanged>,
    state: State,
    /// Armed timers, cancelled once the state no longer needs them.
    timers: Vec<(Timer, SpawnHandle)>,
    /// A finished invocation whose log is still being read from the pipe.
    draining: Option<Draining>,
    /// A second handle on the current process's output pipe, to see what is still unread.
    output: Option<process::Output>,
    /// The current process's pidfd, to see at once whether it has exited.
    exit_watch: Option<process::ExitWatch>,
    /// Provisioned slots start warm and never idle out.
    provisioned: bool,
    /// The server is stopping: no process is started for this slot again.
    shutting_down: bool,
    /// Runtime API connections known to come from this process's tree.
    trusted: peer::Trusted,
    /// Where this slot's Runtime API comes from, and the endpoint once its first process started.
    endpoints: std::rc::Rc<dyn crate::endpoint::RuntimeEndpoints>,
    endpoint: Option<crate::endpoint::Endpoint>,
    invocations: u64,
    cold_starts: u64,
    restarts: u64,
    last_used: Option<SystemTime>,
    sampler: Sampler,
    /// The current process's latest measurement, and its highest RSS yet (for `Max Memory Used`).
    usage: Option<Sample>,
    peak_rss: Option<u64>,
    /// The current process initialised ahead of any invocation (provisioned concurrency): its init
    /// goes in an `INIT_REPORT` line, not in a REPORT.
    init_ahead: bool,
    /// Timings and the last failure, for the status and the handler's metrics.
    record: record::Record,
    /// Who the current process's output lines are from, shared with its log pump.
    log: Arc<crate::logs::WorkerLog>,
    /// `file:line` of the user's frame in the init error the current process reported.
    init_location: Option<String>,
    /// SnapStart with the bundled runtime: processes are forks of this template.
    template: Option<Arc<crate::forkserver::template::SnapTemplate>>,
    /// Ordinary cold starts of the bundled runtime: forks of the zygote where they can be.
    zygotes: Option<Arc<crate::forkserver::zygote::Zygotes>>,
    /// The pid of the fork just made for this slot, until the actor has taken it.
    restored_pid: Arc<std::sync::atomic::AtomicU32>,
    /// Its invocations' rows for the recorder.
    recording: recording::Recording,
}

impl WorkerActor {
    pub fn new(
        slot: usize,
        handler: Arc<HandlerConfig>,
        spec: SpawnSpec,
        function_arn: String,
        supervisor: Recipient<WorkerChanged>,
        sampler: Sampler,
        endpoints: std::rc::Rc<dyn crate::endpoint::RuntimeEndpoints>,
    ) -> Self {
        let name = format!("{}:{slot}", handler.name);
        let log = crate::logs::WorkerLog::new(&handler.name, &name);
        Self {
            slot,
            name,
            log_stream: crate::launch::log_stream(&handler, slot),
            provisioned: slot < handler.provisioned_concurrency,
            handler,
            spec,
            function_arn,
            supervisor,
            state: State::Cold { job: None, suppress: false },
            timers: Vec::new(),
            draining: None,
            output: None,
            exit_watch: None,
            shutting_down: false,
            trusted: peer::Trusted::default(),
            endpoints,
            endpoint: None,
            invocations: 0,
            cold_starts: 0,
            restarts: 0,
            last_used: None,
            sampler,
            usage: None,
            peak_rss: None,
            init_ahead: false,
            record: record::Record::default(),
            log,
            init_location: None,
            template: None,
            zygotes: None,
            restored_pid: Arc::default(),
            recording: recording::Recording::default(),
        }
    }

    /// The log stream its processes get, if any.
    pub fn log_stream(&self) -> Option<&str> {
        self.log_stream.as_deref()
    }

    /// Makes this worker a shadow environment (`shadow/`): named `HANDLER:shadow`, with its own log
    /// stream, never provisioned.
    pub fn outside_pool(mut self, log_stream: Option<String>) -> Self {
        self.name = format!("{}:shadow", self.handler.name);
        self.log_stream = log_stream;
        self.log = crate::logs::WorkerLog::new(&self.handler.name, &self.name);
        self.provisioned = false;
        self
    }

    /// SnapStart with the bundled runtime: this slot's processes are forks of `template`.
    pub fn with_template(mut self, template: Option<Arc<crate::forkserver::template::SnapTemplate>>) -> Self {
        self.template = template;
        self
    }

    /// The bundled runtime: this slot's cold starts fork from `zygotes` where they can.
    pub fn with_zygotes(mut self, zygotes: Option<Arc<crate::forkserver::zygote::Zygotes>>) -> Self {
        self.zygotes = zygotes;
        self
    }

    /// Records this worker's invocations with `recorder`.
    pub fn recording(mut self, recorder: crate::recorder::Recorder) -> Self {
        self.recording = recording::Recording::new(recorder);
        self
    }

    pub fn status(&self) -> WorkerStatus {
        let mut status = WorkerStatus {
            invocations: self.invocations,
            cold_starts: self.cold_starts,
            restarts: self.restarts,
            last_used: self.last_used.map(epoch_ms),
            rss: Rss(self.usage.map(|u| u.rss_bytes)),
            cpu_percent: self.usage.map(|u| u.cpu_percent),
            ..WorkerStatus::new(self.name.clone(), self.state.kind(), self.state.pid())
        };
        self.record.show(&mut status, self.state.pid().is_some());
        status
    }

    fn facts(&self) -> Facts {
        Facts {
            now: Instant::now(),
            wall: SystemTime::now(),
            timeout: self.handler.timeout,
            init_timeout: self.handler.init_timeout,
            idle_timeout: self.handler.idle_timeout,
            strategy: self.handler.strategy,
            provisioned: self.provisioned,
            shutting_down: self.shutting_down,
            snap_start: snapstart::SnapStart::of(&self.handler, self.template.is_some()),
        }
    }

    /// Feeds `event` through the state machine and carries out its effects; returns the answer to a
    /// Runtime API call, if the step gave one.
    fn apply(&mut self, ctx: &mut Context<Self>, event: Event) -> Option<Result<(), RuntimeApiError>> {
        let state = std::mem::replace(&mut self.state, State::Cold { job: None, suppress: false });
        let (from, pid_before) = (state.kind(), state.pid());
        let (next, effects) = machine::step(state, event, &self.facts());
        if next.kind() != from && !allowed(from, next.kind()) {
            tracing::error!(worker = %self.name, ?from, to = ?next.kind(), "illegal worker state transition");
        }
        self.state = next;
        if self.state.pid() != pid_before {
            self.trusted.clear();
        }
        self.timers.retain(|(timer, handle)| {
            let live = machine::timer_live(timer, &self.state);
            if !live {
                ctx.cancel_future(*handle);
            }
            live
        });
        let mut api = None;
        let mut reported = false;
        for effect in effects {
            match effect {
                Effect::Api(answer) => api = Some(answer),
                other => {
                    reported |= matches!(other, Effect::Report { .. });
                    self.perform(ctx, other)
                }
            }
        }
        // The supervisor's view follows every change of state, whether or not the step said so.
        if !reported && self.state.kind() != from {
            self.perform(ctx, Effect::Report { finished: false, init_error: None });
        }
        api
    }

    fn perform(&mut self, ctx: &mut Context<Self>, effect: Effect) {
        match effect {
            Effect::Spawn { init_type } => self.spawn(ctx, init_type),
            Effect::Kill { pid, force } => {
                process::kill_group(pid, if force { Signal::SIGKILL } else { Signal::SIGTERM })
            }
            Effect::Deliver { waiter, request_id, deadline, invocation } => {
                recording::chaos_after_deliver(&invocation, self.state.pid());
                let event = NextEvent {
                    trace_id: trace_id(&request_id),
                    request_id,
                    deadline_ms: epoch_ms(deadline),
                    function_arn: invocation.function_arn.unwrap_or_else(|| self.function_arn.clone()),
                    client_context: invocation.client_context,
                    tenant: invocation.tenant,
                    payload: invocation.payload,
                };
                self.last_used = Some(SystemTime::now());
                self.deliver_when_drained(ctx, waiter, event, 0);
            }
            Effect::Answer { reply, outcome, capture, report } => {
                self.answer(ctx, reply, outcome, capture, report)
            }
            Effect::Refuse { reply, rejection } => {
                let _ = reply.send(Err(rejection));
            }
            Effect::Arm { timer, after } => {
                let event = match timer.clone() {
                    Timer::Init { pid } => Event::InitTimeout { pid },
                    Timer::Deadline { request_id } => Event::Deadline { request_id },
                    Timer::Idle { since } => Event::IdleTimeout { since },
                    Timer::Restore { pid } => Event::RestoreTimeout { pid },
                };
                let handle = ctx.run_later(after, move |act, ctx| {
                    act.apply(ctx, event);
                });
                self.timers.push((timer, handle));
            }
            Effect::ColdStart => {
                self.cold_starts += 1;
                self.usage = None;
                self.peak_rss = None;
                self.record.cold_start();
            }
            Effect::InitDone { duration } => {
                if self.init_ahead {
                    let ms = duration.as_secs_f64() * 1000.0;
                    let line = format!("INIT_REPORT Init Duration: {ms:.2} ms\tPhase: init\tStatus: success");
                    self.log_platform_line(&line, None);
                }
                self.record.init_done(duration);
                // One reading when init ends, so the first REPORT has a `Max Memory Used` even when it
                // comes before the sampler's first tick.
                if let Some(rss) = self.state.pid().and_then(sampler::rss_now) {
                    self.note_peak(rss);
                }
            }
            Effect::Invoked => self.invocations += 1,
            Effect::Restart => self.restarts += 1,
            Effect::Report { finished, init_error } => {
                if let Some((kind, message)) = &init_error {
                    self.record.init_failed(kind, message);
                    self.log_init_failure(kind.error_type(), message);
                }
                let (ended, init_done) = self.record.take_for_report();
                self.supervisor.do_send(WorkerChanged {
                    slot: self.slot,
                    status: self.status(),
                    finished,
                    init_error,
                    ended,
                    init_done,
                });
            }
            Effect::Warn(message) => {
                tracing::warn!(worker = %self.name, pid = ?self.state.pid(), "{message}")
            }
            Effect::SnapshotTaken { init } => {
                let ms = init.as_secs_f64() * 1000.0;
                let line = format!("INIT_REPORT Init Duration: {ms:.2} ms\tPhase: init\tStatus: success");
                self.log_platform_line(&line, None);
            }
            Effect::Api(_) => {} // taken by `apply`
        }
    }

    fn spawn(&mut self, ctx: &mut Context<Self>, init_type: &'static str) {
        let mut spec = self.spec.clone();
        let env = Arc::make_mut(&mut spec.env);
        crate::launch::name_worker(env, &self.name, self.log_stream.as_deref());
        env.insert("AWS_LAMBDA_INITIALIZATION_TYPE".into(), init_type.into());
        self.init_ahead = init_type == "provisioned-concurrency";
        if let Err(message) = self.runtime_env(ctx, env) {
            tracing::error!(worker = %self.name, "{message}");
            ctx.address().do_send(SpawnResult(Event::SpawnFailed { message }));
            return;
        }
        self.log = crate::logs::WorkerLog::new(&self.handler.name, &self.name);
        self.init_location = None;
        if let Some(template) = self.template.clone() {
            let on_line = self.line_sink(ctx);
            return self.restore(ctx, &template, spec, on_line);
        }
        // No request waits for a provisioned worker's init: it may wait for the zygote's.
        let may_wait = self.init_ahead;
        if let Some(zygotes) = self.zygotes.clone().filter(|zygotes| zygotes.takes(&spec, may_wait)) {
            let on_line = self.line_sink(ctx);
            return self.fork_from_zygote(ctx, &zygotes, spec, on_line);
        }
        self.spawn_process(ctx, spec);
    }

    /// Where the current process's output lines go: this actor (for an invocation's log) and the
    /// server's log.
    fn line_sink(&self, ctx: &Context<Self>) -> impl Fn(&str) + Send + 'static {
        let (lines, log) = (ctx.address(), self.log.clone());
        move |line: &str| {
            lines.do_send(OutputLine(line.to_string()));
            log.line(line);
        }
    }

    /// Starts `spec` as a child of the server's own.
    fn spawn_process(&mut self, ctx: &mut Context<Self>, spec: SpawnSpec) {
        let exits = ctx.address();
        let on_line = self.line_sink(ctx);
        let event = match process::spawn(&spec, &self.name, on_line, move |pid, exit| {
            exits.do_send(ChildExited { pid, exit })
        }) {
            Ok(process::Spawned { pid, output, exit_watch }) => {
                self.output = output;
                self.exit_watch = exit_watch;
                self.log.started(pid);
                tracing::debug!(worker = %self.name, pid, "cold start");
                self.sampler.watch(pid, ctx.address().recipient());
                Event::Spawned { pid }
            }
            Err(err) => {
                tracing::error!(worker = %self.name, command = ?self.spec.argv, %err, "could not start the worker");
                Event::SpawnFailed { message: format!("could not start `{}`: {err}", self.spec.argv[0]) }
            }
        };
        // A spawn happens inside a step: finish that step's effects first.
        ctx.address().do_send(SpawnResult(event));
    }

    /// Logs the REPORT line, then answers; a caller that wants the log is answered once the runtime's
    /// output before its result has been read.
    fn answer(
        &mut self,
        ctx: &mut Context<Self>,
        reply: Reply,
        outcome: Outcome,
        capture: Option<Capture>,
        report: Option<ReportLine>,
    ) {
        self.record.answered(&outcome, report.as_ref().map(|line| line.duration));
        let by = recording::Answering { slot: self.slot, worker: &self.name, pid: self.state.pid() };
        self.recording.answered(&outcome, report.as_ref(), by);
        let report = report.map(|line| self.log_report(&line));
        match &outcome {
            // An init failure has its one ERROR line when the slot reports it.
            Outcome::Failed { error: crate::invocation::FailureKind::Init(_), .. } => {}
            Outcome::Failed { error, message, request_id } => tracing::error!(
                handler = %self.handler.name,
                worker = %self.name,
                request_id = %request_id,
                error_type = error.error_type(),
                "{message}"
            ),
            _ => {}
        }
        match (capture, report) {
            (Some(capture), Some(report)) => {
                let request_id = outcome_request_id(&outcome).to_string();
                self.drain(ctx, Draining { request_id, capture, report, reply, outcome });
            }
            _ => {
                let _ = reply.send(Ok(outcome));
            }
        }
    }

    /// One init failure, one ERROR line: its type, message and the user's frame.
    fn log_init_failure(&self, error_type: &str, message: &str) {
        let location = self.init_location.as_deref();
        let at = location.map(|l| format!(" ({l})")).unwrap_or_default();
        tracing::error!(
            handler = %self.handler.name,
            worker = %self.name,
            error_type,
            location,
            "init failed: {error_type}: {message}{at}"
        );
    }

    /// Logs the invocation's `REPORT` line, and returns it.
    fn log_report(&self, line: &ReportLine) -> String {
        let duration = line.duration.as_secs_f64() * 1000.0;
        let init = line.init_duration.filter(|_| !self.init_ahead).map(|d| {
            let ms = d.as_secs_f64() * 1000.0;
            if self.facts().snap_start.is_some() {
                // A restored environment: its init is the template's (INIT_REPORT).
                format!("\tRestore Duration: {ms:.2} ms\tBilled Restore Duration: {} ms", ms.ceil() as u64)
            } else {
                format!("\tInit Duration: {ms:.2} ms")
            }
        });
        let max_memory_used_mb = self.peak_rss.map(sampler::whole_mb);
        let memory = max_memory_used_mb.map(|mb| format!("\tMax Memory Used: {mb} MB"));
        let report = format!(
            "REPORT RequestId: {}\tDuration: {duration:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB{}{}",
            line.request_id,
            duration.ceil() as u64,
            self.handler.memory_size,
            memory.unwrap_or_default(),
            init.unwrap_or_default(),
        );
        self.log_platform_line(&report, Some(&line.request_id));
        report
    }

    /// A platform line (REPORT, INIT_REPORT): an INFO of the platform's, so AWS's system log level
    /// `WARN` leaves it out.
    fn log_platform_line(&self, text: &str, request_id: Option<&str>) {
        if self.handler.logging.system_log_level.as_deref() != Some("WARN") {
            tracing::info!(
                target: crate::logs::REPORT_TARGET,
                handler = %self.handler.name,
                worker = %self.name,
                pid = self.state.pid(),
                request_id = request_id,
                "{text}"
            );
        }
    }

    fn note_peak(&mut self, rss_bytes: u64) {
        self.peak_rss = Some(self.peak_rss.map_or(rss_bytes, |peak| peak.max(rss_bytes)));
    }

    /// Whether the parked process may be dead already, so an invocation waits for its replacement
    /// rather than going down with it. Every dispatch polls its pidfd (has it exited?); one idle for
    /// a while is also read in /proc (a SIGKILL still pending), which costs too much to do for
    /// back-to-back requests.
    fn parked_is_doomed(&self) -> bool {
        match &self.state {
            machine::State::Warm { pid, since, .. } => {
                self.exit_watch.as_ref().is_some_and(process::ExitWatch::exited)
                    || (since.elapsed() >= DEATH_CHECK_AFTER && process::doomed(*pid))
            }
            _ => false,
        }
    }
}

fn outcome_request_id(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Success { request_id, .. }
        | Outcome::HandlerError { request_id, .. }
        | Outcome::Failed { request_id, .. } => request_id,
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

/// The result of a spawn, fed back as the next event.
#[derive(Message)]
#[rtype(result = "()")]
struct SpawnResult(Event);

impl Handler<SpawnResult> for WorkerActor {
    type Result = ();

    fn handle(&mut self, SpawnResult(event): SpawnResult, ctx: &mut Context<Self>) {
        self.apply(ctx, event);
    }
}

impl Handler<Run> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: Run, ctx: &mut Context<Self>) {
        let job =
            Job { request_id: msg.invocation.request_id(), invocation: msg.invocation, reply: msg.reply };
        let busy = matches!(self.state, machine::State::Busy { .. });
        self.recording.assigned(&job.request_id, &self.handler.name, &job.invocation, busy);
        let parked = match self.state {
            machine::State::Warm { pid, .. } => Some(pid),
            _ => None,
        };
        let doomed = recording::chaos_before_run(&job.invocation, parked) || self.parked_is_doomed();
        self.apply(ctx, Event::Run { job, doomed });
    }
}

impl Handler<Recycle> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: Recycle, ctx: &mut Context<Self>) {
        self.apply(ctx, Event::Recycle);
    }
}

impl Handler<Warmup> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: Warmup, ctx: &mut Context<Self>) {
        self.apply(ctx, Event::Warmup);
    }
}

impl Handler<SetProvisioned> for WorkerActor {
    type Result = ();

    /// A live provisioned-concurrency change; the supervisor sends `Warmup` or `Recycle` as needed.
    fn handle(&mut self, SetProvisioned(provisioned): SetProvisioned, _: &mut Context<Self>) {
        self.provisioned = provisioned;
    }
}

/// Stops the worker's process on purpose (shutdown): SIGTERM, or SIGKILL once the grace is over. No
/// process is started for this slot afterwards.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop {
    pub signal: Signal,
}

impl Handler<Stop> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        self.shutting_down = true;
        self.apply(ctx, Event::Shutdown { force: msg.signal == Signal::SIGKILL });
    }
}
