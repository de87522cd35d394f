//! How a worker's process ends: exits (crashes, init failures, kills) and memory over the limit.

use actix::prelude::*;
use bytes::Bytes;

use super::WorkerActor;
use crate::invocation::{FailureKind, Outcome};
use crate::messages::*;
use crate::process::Exit;
use crate::sampler::{memory_verdict, MemoryVerdict, Sample};
use crate::state::WorkerState;

impl Handler<ChildExited> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if self.state.pid() != Some(msg.pid) {
            return; // an older process of this slot
        }
        let was_starting = matches!(self.state, WorkerState::Starting { .. });
        let crashed = !self.stop_expected;
        let mut finished = false;
        let mut init_error = None;
        if let Some(flight) = self.current.as_ref() {
            let message =
                format!("RequestId: {} Error: Runtime exited with error: {}", flight.request_id, msg.exit);
            let request_id = flight.request_id.clone();
            tracing::error!(worker = %self.name, pid = msg.pid, "{message}");
            self.finish(ctx, Outcome::Failed { request_id, error: FailureKind::Exited, message });
            finished = true;
        } else if was_starting && crashed {
            let (kind, message) = init_failure(self.init_error.take(), msg.exit);
            tracing::error!(worker = %self.name, pid = msg.pid, error_type = kind.error_type(), "init failed: {message}");
            finished = self.fail_pending(kind.clone(), message.clone());
            init_error = Some((kind, message));
        } else if crashed {
            tracing::warn!(worker = %self.name, pid = msg.pid, "worker exited while idle: {}", msg.exit);
        }
        if crashed {
            self.restarts += 1;
        }
        self.waiting_next = None;
        self.output = None;
        self.recycle_after = false;
        self.disarm_idle(ctx);
        self.sampler.unwatch(msg.pid);
        self.usage = None;
        self.peak_rss = None;
        self.transition(WorkerState::Cold);
        self.report_init(finished, init_error);
        // An invocation assigned while the old process was stopping gets a fresh one.
        self.advance(ctx);
    }
}

/// The failure of an init that ended with the process: the type the runtime reported, else an exit error.
fn init_failure(reported: Option<(String, Bytes)>, exit: Exit) -> (FailureKind, String) {
    match reported {
        Some((kind, body)) => {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            (FailureKind::Init(kind), message)
        }
        None => (FailureKind::Init("Runtime.ExitError".into()), format!("Runtime exited with error: {exit}")),
    }
}

impl Handler<Sample> for WorkerActor {
    type Result = ();

    /// A measurement from the sampler: shown in the status, and enforces `memory_size`.
    fn handle(&mut self, sample: Sample, ctx: &mut Context<Self>) {
        if self.state.pid() != Some(sample.pid) {
            return; // an older process of this slot
        }
        self.usage = Some(sample);
        self.note_peak(sample.rss_bytes);
        match memory_verdict(self.state.kind(), sample.rss_bytes, self.handler.memory_size) {
            MemoryVerdict::Within => self.report(false),
            MemoryVerdict::Kill => self.out_of_memory(ctx, sample.rss_bytes),
        }
    }
}
