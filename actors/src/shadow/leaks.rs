//! What the state-leak detector has found for one handler: how many leaks, and the last one (its
//! request ids and diff), for `/_smyth/status` and the dashboard.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The last leak found: the warm run's and the fresh run's request ids, and the JSON patch that
/// turns the fresh result into the warm one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateLeak {
    pub warm_request_id: String,
    pub fresh_request_id: String,
    pub diff: serde_json::Value,
    /// Epoch milliseconds.
    pub at: u64,
}

/// Shared by the handler's supervisor (which shows it) and its shadow runner (which finds leaks).
#[derive(Debug, Clone, Default)]
pub struct Leaks(Arc<Mutex<(u64, Option<StateLeak>)>>);

impl Leaks {
    pub fn found(&self, leak: StateLeak) {
        let mut tally = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tally.0 += 1;
        tally.1 = Some(leak);
    }

    /// The count and the last leak.
    pub fn snapshot(&self) -> (u64, Option<StateLeak>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
