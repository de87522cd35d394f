//! What the state-leak detector has found for one handler: how many invocations it checked, how
//! many leaked, and the last leak (its request ids and diff), for `/_smyth/status` and the dashboard.

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

/// The detector's counts, as the status shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeakTally {
    /// Invocations compared with a fresh environment's run.
    pub checked: u64,
    pub leaks: u64,
    pub last: Option<StateLeak>,
}

/// Shared by the handler's supervisor (which shows it) and its shadow runner (which checks).
#[derive(Debug, Clone, Default)]
pub struct Leaks(Arc<Mutex<LeakTally>>);

impl Leaks {
    /// One check done; `leak` when it found one.
    pub fn checked(&self, leak: Option<StateLeak>) {
        let mut tally = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tally.checked += 1;
        if let Some(leak) = leak {
            tally.leaks += 1;
            tally.last = Some(leak);
        }
    }

    pub fn snapshot(&self) -> LeakTally {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
