//! The worker state machine: `cold → starting → warm ⇄ busy`, `stopping`, with one table of allowed moves.

use std::time::Instant;

/// A worker's state; each variant carries what is true only in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerState {
    /// No live process.
    Cold,
    /// Spawned; the runtime is initialising (importing the handler).
    Starting { pid: u32, since: Instant },
    /// Initialised and idle since `since`.
    Warm { pid: u32, since: Instant },
    /// An invocation is in flight.
    Busy { pid: u32, request_id: String, started: Instant },
    /// Being killed; the slot is cold once the process is reaped.
    Stopping { pid: u32 },
}

/// The state's name, for the transition table, the status endpoint and the supervisor's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    Cold,
    Starting,
    Warm,
    Busy,
    Stopping,
}

impl WorkerState {
    pub fn kind(&self) -> StateKind {
        match self {
            WorkerState::Cold => StateKind::Cold,
            WorkerState::Starting { .. } => StateKind::Starting,
            WorkerState::Warm { .. } => StateKind::Warm,
            WorkerState::Busy { .. } => StateKind::Busy,
            WorkerState::Stopping { .. } => StateKind::Stopping,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            WorkerState::Cold => None,
            WorkerState::Starting { pid, .. }
            | WorkerState::Warm { pid, .. }
            | WorkerState::Busy { pid, .. }
            | WorkerState::Stopping { pid } => Some(*pid),
        }
    }
}

impl StateKind {
    pub const ALL: [StateKind; 5] =
        [StateKind::Cold, StateKind::Starting, StateKind::Warm, StateKind::Busy, StateKind::Stopping];

    /// The lower-case name the status endpoint shows.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Cold => "cold",
            StateKind::Starting => "starting",
            StateKind::Warm => "warm",
            StateKind::Busy => "busy",
            StateKind::Stopping => "stopping",
        }
    }
}

/// The one table of allowed moves. Anything else is a bug: logged, never applied.
pub fn allowed(from: StateKind, to: StateKind) -> bool {
    use StateKind::*;
    matches!(
        (from, to),
        (Cold, Starting)
            | (Starting, Warm)
            | (Starting, Stopping)
            | (Starting, Cold)
            | (Warm, Busy)
            | (Warm, Stopping)
            | (Warm, Cold)
            | (Busy, Warm)
            | (Busy, Stopping)
            | (Busy, Cold)
            | (Stopping, Cold)
    )
}

#[cfg(test)]
mod tests {
    use super::StateKind::*;
    use super::*;

    #[test]
    fn transition_table() {
        let cases = [
            (Cold, Starting, true),
            (Cold, Warm, false),
            (Cold, Busy, false),
            (Cold, Stopping, false),
            (Starting, Warm, true),
            (Starting, Busy, false),
            (Starting, Cold, true),
            (Starting, Stopping, true),
            (Warm, Busy, true),
            (Warm, Cold, true),
            (Warm, Starting, false),
            (Busy, Warm, true),
            (Busy, Busy, false),
            (Busy, Stopping, true),
            (Busy, Cold, true),
            (Stopping, Cold, true),
            (Stopping, Warm, false),
            (Stopping, Busy, false),
        ];
        for (from, to, expected) in cases {
            assert_eq!(allowed(from, to), expected, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn pid_only_when_alive() {
        assert_eq!(WorkerState::Cold.pid(), None);
        assert_eq!(WorkerState::Warm { pid: 7, since: Instant::now() }.pid(), Some(7));
        assert_eq!(WorkerState::Stopping { pid: 9 }.kind(), Stopping);
    }
}
