//! The worker states' names (`cold → starting → warm ⇄ busy`, `stopping`) and the one table of allowed
//! moves; the states with their data, and the decisions, are in `worker::machine`.

/// The state's name, for the transition table, the status endpoint and the supervisor's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    Cold,
    Starting,
    Warm,
    Busy,
    Stopping,
    /// Shown by the status only: a cold slot whose init keeps failing, waiting out its backoff. The
    /// worker's machine is never in it, so no move leads to or from it.
    Backoff,
}

impl StateKind {
    /// The worker machine's states.
    pub const ALL: [StateKind; 5] =
        [StateKind::Cold, StateKind::Starting, StateKind::Warm, StateKind::Busy, StateKind::Stopping];
    /// Every state the status can show.
    pub const SHOWN: [StateKind; 6] = [
        StateKind::Cold,
        StateKind::Starting,
        StateKind::Warm,
        StateKind::Busy,
        StateKind::Stopping,
        StateKind::Backoff,
    ];

    /// The lower-case name the status endpoint shows.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Cold => "cold",
            StateKind::Starting => "starting",
            StateKind::Warm => "warm",
            StateKind::Busy => "busy",
            StateKind::Stopping => "stopping",
            StateKind::Backoff => "backoff",
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
            // A cold start: init done, and the first `/next` takes the invocation that started it.
            | (Starting, Busy)
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
            (Starting, Busy, true),
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
            (Cold, Backoff, false),
            (Backoff, Starting, false),
        ];
        for (from, to, expected) in cases {
            assert_eq!(allowed(from, to), expected, "{from:?} -> {to:?}");
        }
    }
}
