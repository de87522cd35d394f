//! The worker's part in recording every invocation: a row is started when an invocation is
//! assigned (its event and origin), given its pid when delivered, and finished when answered (cold or
//! warm, durations, outcome), then handed to the recorder's thread; the lines the runtime prints are
//! sent under the request id being served. Chaos faults that act on the process are carried out here.

use std::collections::VecDeque;
use std::time::SystemTime;

use nix::sys::signal::Signal;

use super::machine::ReportLine;
use crate::chaos::Fault;
use crate::invocation::{Invocation, Outcome};
use crate::process;
use crate::recorder::{Recorder, Row};
use crate::status::epoch_ms;

/// Rows of invocations assigned and not yet answered: the one in flight, and one queued behind it.
const MAX_PENDING: usize = 4;

#[derive(Default)]
pub struct Recording {
    recorder: Recorder,
    pending: VecDeque<Row>,
    /// The request whose output the runtime is printing now.
    serving: Option<String>,
}

/// Who answered, for the row.
pub struct Answering<'a> {
    pub slot: usize,
    pub worker: &'a str,
    pub pid: Option<u32>,
}

impl Recording {
    pub fn new(recorder: Recorder) -> Self {
        Recording { recorder, ..Recording::default() }
    }

    /// An invocation was assigned to this worker; `busy`: another is still in flight.
    pub fn assigned(&mut self, id: &str, handler: &str, invocation: &Invocation, busy: bool) {
        if !self.recorder.is_on() {
            return;
        }
        if !busy {
            self.serving = Some(id.to_string());
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Row::new(id.to_string(), handler, invocation, epoch_ms(SystemTime::now())));
    }

    pub fn delivered(&mut self, id: &str, pid: Option<u32>) {
        if let Some(row) = self.pending.iter_mut().find(|row| row.id == id) {
            row.pid = pid;
            self.serving = Some(id.to_string());
        }
    }

    pub fn line(&self, text: &str) {
        if let Some(id) = &self.serving {
            self.recorder.line(id, text);
        }
    }

    /// The invocation was answered: its row is finished and written. An outcome without a request
    /// id (its init failed before it ran) is the oldest waiting.
    pub fn answered(&mut self, outcome: &Outcome, report: Option<&ReportLine>, by: Answering) {
        let id = super::outcome_request_id(outcome);
        let at = match id {
            "" => (!self.pending.is_empty()).then_some(0),
            id => self.pending.iter().position(|row| row.id == id),
        };
        let Some(mut row) = at.and_then(|at| self.pending.remove(at)) else { return };
        row.worker = Some(by.slot);
        row.worker_name = Some(by.worker.to_string());
        row.pid = row.pid.or(by.pid);
        // It waited for an init (or its init failed): a cold start.
        row.cold = report.is_none_or(|line| line.init_duration.is_some());
        row.init_ms = report.and_then(|line| line.init_duration).map(crate::metrics::ms);
        row.run_ms = report.map_or(0.0, |line| crate::metrics::ms(line.duration));
        row.ended(outcome);
        self.recorder.record(row);
    }
}

/// Chaos's faults on an idle process: `kill_idle` and `cold_start` kill the parked process before it
/// is reused, so the invocation waits for a fresh one. Whether the process is doomed now.
pub fn chaos_before_run(invocation: &Invocation, parked: Option<u32>) -> bool {
    let Some(injected) = &invocation.origin.chaos else { return false };
    let Some(pid) = parked else { return false };
    if injected.applies(Fault::KillIdle) || injected.applies(Fault::ColdStart) {
        process::kill_group(pid, Signal::SIGKILL);
        return true;
    }
    false
}

/// Chaos's `kill_busy`: the process dies right after it was handed the invocation.
pub fn chaos_after_deliver(invocation: &Invocation, pid: Option<u32>) {
    let kill = invocation.origin.chaos.as_ref().is_some_and(|c| c.applies(Fault::KillBusy));
    if let (true, Some(pid)) = (kill, pid) {
        process::kill_group(pid, Signal::SIGKILL);
    }
}
