//! An invocation's log for the Invoke API's `X-Amz-Log-Type: Tail`: the lines its runtime printed,
//! framed as AWS frames them, sent to the caller before the outcome.

use std::time::Duration;

use actix::prelude::*;

use super::WorkerActor;
use crate::invocation::{LogSink, Outcome};
use crate::messages::{OutputLine, Reply};
use crate::process;

/// AWS returns the last 4 KB; keep a little more so the framing never eats the lines.
const KEEP: usize = 8 * 1024;
/// How long a result may wait for the pump to read what the runtime printed before it.
const MAX_DRAIN_STEPS: u32 = 50;
const DRAIN_STEP: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub struct Capture {
    sink: LogSink,
    lines: String,
}

impl Capture {
    pub(super) fn new(sink: LogSink) -> Self {
        Self { sink, lines: String::new() }
    }

    fn push(&mut self, line: &str) {
        self.lines.push_str(line);
        self.lines.push('\n');
        if self.lines.len() > KEEP {
            let mut cut = self.lines.len() - KEEP;
            while !self.lines.is_char_boundary(cut) {
                cut += 1;
            }
            self.lines.drain(..cut);
        }
    }

    /// `START` … the lines … `END`, then the `REPORT` line.
    pub(super) fn send(self, request_id: &str, report: &str) {
        let text = format!(
            "START RequestId: {request_id} Version: $LATEST\n{}END RequestId: {request_id}\n{report}\n",
            self.lines
        );
        let _ = self.sink.send(text);
    }
}

/// A finished invocation whose answer waits until the runtime's output before it is read.
pub(super) struct Draining {
    pub(super) request_id: String,
    pub(super) capture: Capture,
    pub(super) report: String,
    pub(super) reply: Reply,
    pub(super) outcome: Outcome,
}

impl WorkerActor {
    /// Answers once the pump has read every byte the runtime wrote before its result (bounded), plus
    /// one step for the pump's last lines to reach this actor.
    pub(super) fn drain(&mut self, ctx: &mut Context<Self>, draining: Draining) {
        self.complete_drain();
        self.draining = Some(draining);
        self.drain_step(ctx, 0);
    }

    fn drain_step(&mut self, ctx: &mut Context<Self>, step: u32) {
        let unread = self.output.as_ref().is_some_and(process::Output::pending);
        if unread && step < MAX_DRAIN_STEPS {
            ctx.run_later(DRAIN_STEP, move |act, ctx| act.drain_step(ctx, step + 1));
        } else {
            ctx.run_later(DRAIN_STEP, |act, _| act.complete_drain());
        }
    }

    fn complete_drain(&mut self) {
        if let Some(done) = self.draining.take() {
            done.capture.send(&done.request_id, &done.report);
            let _ = done.reply.send(Ok(done.outcome));
        }
    }
}

impl Handler<OutputLine> for WorkerActor {
    type Result = ();

    fn handle(&mut self, OutputLine(line): OutputLine, _: &mut Context<Self>) {
        self.recording.line(&line);
        let flight = match &mut self.state {
            super::machine::State::Busy { flight, .. } => flight.capture.as_mut(),
            _ => None,
        };
        let capture = match flight {
            Some(capture) => Some(capture),
            None => self.draining.as_mut().map(|draining| &mut draining.capture),
        };
        if let Some(capture) = capture {
            capture.push(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_framed_as_aws_frames_it_and_keeps_the_tail() {
        let (sink, mut logs) = tokio::sync::mpsc::unbounded_channel();
        let mut capture = Capture::new(sink);
        for i in 0..2000 {
            capture.push(&format!("line {i} é"));
        }
        capture.send("rid", "REPORT RequestId: rid\tDuration: 1.00 ms");
        let text = logs.try_recv().unwrap();
        assert!(text.starts_with("START RequestId: rid Version: $LATEST\n"), "{}", &text[..80]);
        assert!(text.ends_with("line 1999 é\nEND RequestId: rid\nREPORT RequestId: rid\tDuration: 1.00 ms\n"));
        assert!(!text.contains("line 0 é"), "only the tail is kept");
        assert!(text.len() < KEEP + 200);
    }
}
