//! A managed-instances environment's part in recording every invocation: a row started when an
//! invocation reaches one of its slots, finished when it is answered. Its N processes print at once,
//! so their lines are not split by invocation here (the runtime's JSON lines carry `requestId`):
//! the rows have no `log`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::invocation::{Invocation, Outcome};
use crate::recorder::{Recorder, Row};
use crate::status::epoch_ms;

#[derive(Default)]
pub struct EnvironmentRecording {
    recorder: Recorder,
    /// Rows of the invocations in the environment's slots, by request id.
    pending: HashMap<String, Row>,
    /// The environment's init, until the first invocation after it is answered (its cold start).
    init: Option<Duration>,
}

/// Who answered, for the row.
pub struct Answering<'a> {
    pub index: usize,
    pub name: &'a str,
    pub pid: Option<u32>,
}

impl EnvironmentRecording {
    pub fn new(recorder: Recorder) -> Self {
        EnvironmentRecording { recorder, pending: HashMap::new(), init: None }
    }

    pub fn assigned(&mut self, id: &str, handler: &str, invocation: &Invocation) {
        if self.recorder.is_on() {
            let row = Row::new(id.to_string(), handler, invocation, epoch_ms(SystemTime::now()));
            self.pending.insert(id.to_string(), row);
        }
    }

    /// The environment's processes are initialised: the next invocation answered was its cold start.
    pub fn init_done(&mut self, duration: Duration) {
        self.init = Some(duration);
    }

    pub fn answered(
        &mut self,
        request_id: &str,
        outcome: &Outcome,
        duration: Option<Duration>,
        by: Answering,
    ) {
        let Some(mut row) = self.pending.remove(request_id) else { return };
        row.worker = Some(by.index);
        row.worker_name = Some(by.name.to_string());
        row.pid = by.pid;
        let init = self.init.take();
        row.cold = init.is_some();
        row.init_ms = init.map(crate::metrics::ms);
        row.run_ms = duration.map_or(0.0, crate::metrics::ms);
        row.ended(outcome);
        self.recorder.record(row);
    }
}
