//! What a worker remembers for the status and the handler's metrics, beside its machine's state: when
//! its process started, how long init and the last invocation took, its last failure, and what the
//! next report to the supervisor must count (an invocation that ended, an init that finished).

use std::time::{Duration, Instant, SystemTime};

use crate::invocation::{FailureKind, Outcome};
use crate::metrics::{ms, Ended, Failure};
use crate::status::{epoch_ms, LastError, WorkerStatus};

#[derive(Debug, Default)]
pub struct Record {
    process_started: Option<Instant>,
    last_init: Option<Duration>,
    last_duration: Option<Duration>,
    last_error: Option<LastError>,
    ended: Option<Ended>,
    init_done: Option<Duration>,
}

impl Record {
    /// A fresh process.
    pub fn cold_start(&mut self) {
        self.process_started = Some(Instant::now());
        self.last_init = None;
    }

    pub fn init_done(&mut self, duration: Duration) {
        self.last_init = Some(duration);
        self.init_done = Some(duration);
    }

    /// An invocation was answered with `outcome` after running `duration` (None: it never ran).
    pub fn answered(&mut self, outcome: &Outcome, duration: Option<Duration>) {
        let ended = Ended::of(outcome, duration);
        if let Some(failure) = &ended.failure {
            self.failed(failure);
        }
        self.last_duration = duration.or(self.last_duration);
        self.ended = Some(ended);
    }

    /// The process failed its init.
    pub fn init_failed(&mut self, kind: &FailureKind, message: &str) {
        self.failed(&Failure { error_type: kind.error_type().to_string(), message: message.to_string() });
    }

    fn failed(&mut self, failure: &Failure) {
        let at = epoch_ms(SystemTime::now());
        let (error_type, message) = (failure.error_type.clone(), failure.message.clone());
        self.last_error = Some(LastError { error_type, message, at });
    }

    /// What the next report counts, once.
    pub fn take_for_report(&mut self) -> (Option<Ended>, Option<Duration>) {
        (self.ended.take(), self.init_done.take())
    }

    /// Fills in the status's timing and failure fields; `live`: the slot has a process.
    pub fn show(&self, status: &mut WorkerStatus, live: bool) {
        status.uptime_ms = self.process_started.filter(|_| live).map(|t| t.elapsed().as_millis() as u64);
        status.last_duration_ms = self.last_duration.map(ms);
        status.last_init_ms = self.last_init.map(ms);
        status.last_error = self.last_error.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_reported_once_and_its_failure_kept() {
        let mut record = Record::default();
        let failed = Outcome::Failed {
            request_id: "r".into(),
            error: FailureKind::Timeout(Duration::from_secs(1)),
            message: "late".into(),
        };
        record.answered(&failed, Some(Duration::from_millis(1000)));
        let (ended, init) = record.take_for_report();
        assert!(ended.is_some_and(|e| e.timed_out) && init.is_none());
        assert_eq!(record.take_for_report(), (None, None), "counted once");
        let ok = Outcome::Success { request_id: "r".into(), body: bytes::Bytes::new() };
        record.answered(&ok, None);
        let error = record.last_error.clone().expect("the failure is kept after a success");
        assert_eq!((error.error_type.as_str(), error.message.as_str()), ("Sandbox.Timedout", "late"));
        assert_eq!(
            record.last_duration,
            Some(Duration::from_millis(1000)),
            "a run that never ran keeps the last"
        );
    }
}
