//! How a worker's process ends: exits (crashes, init failures, kills) and memory over the limit.

use actix::prelude::*;

use super::machine::Event;
use super::WorkerActor;
use crate::messages::*;
use crate::sampler::{memory_verdict, MemoryVerdict, Sample};

impl Handler<ChildExited> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if self.state.pid() != Some(msg.pid) {
            return; // an older process of this slot
        }
        self.output = None;
        self.exit_watch = None;
        self.sampler.unwatch(msg.pid);
        self.usage = None;
        if self.handler.snap_start && self.state.kind() == crate::state::StateKind::Starting {
            // SnapStart's hook failures are told by their exit codes (64, 65).
            tracing::info!(worker = %self.name, pid = msg.pid, "the environment of {} exited before it served: {}", self.name, msg.exit);
        }
        self.apply(ctx, Event::Exit { pid: msg.pid, exit: msg.exit });
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
            MemoryVerdict::Within => {
                let status = self.status();
                self.supervisor.do_send(WorkerChanged {
                    slot: self.slot,
                    status,
                    finished: false,
                    init_error: None,
                    ended: None,
                    init_done: None,
                });
            }
            MemoryVerdict::Kill => {
                tracing::error!(
                    worker = %self.name,
                    pid = sample.pid,
                    "{} exceeded memory_size {} MB (RSS {} MB); killing pid {}",
                    self.name,
                    self.handler.memory_size,
                    crate::sampler::whole_mb(sample.rss_bytes),
                    sample.pid,
                );
                self.apply(ctx, Event::OutOfMemory { pid: sample.pid });
            }
        }
    }
}
