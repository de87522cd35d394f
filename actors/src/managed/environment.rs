//! The data of one managed-instances environment, as `machine::step` reads and changes it: its main
//! process's phase, its N slots (each holding at most one invocation), and the `/next` calls its
//! processes have parked.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::invocation::Invocation;
use crate::messages::{NextEvent, Reply};

/// An invocation the supervisor assigned to a slot.
#[derive(Debug)]
pub struct Job {
    pub request_id: String,
    pub invocation: Invocation,
    pub reply: Reply,
}

/// One slot: at most one invocation at a time.
#[derive(Debug, Default)]
pub enum Slot {
    #[default]
    Idle,
    /// Assigned; waits for a process to ask `/next`. Its deadline runs once the environment is ready.
    Waiting { job: Job, deadline: Option<Instant> },
    /// Handed to the process `holder`.
    Running { job: Job, holder: u32, started: Instant, deadline: Instant },
    /// The caller got the timeout; the code runs on in `holder` until it posts a result or dies.
    TimedOut { request_id: String, holder: u32 },
}

impl Slot {
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Slot::Idle => None,
            Slot::Waiting { job, .. } | Slot::Running { job, .. } => Some(&job.request_id),
            Slot::TimedOut { request_id, .. } => Some(request_id),
        }
    }

    /// The process serving the slot's invocation.
    pub fn holder(&self) -> Option<u32> {
        match self {
            Slot::Running { holder, .. } | Slot::TimedOut { holder, .. } => Some(*holder),
            _ => None,
        }
    }

    /// The name the status shows.
    pub fn state_name(&self) -> &'static str {
        match self {
            Slot::Idle => "idle",
            Slot::Waiting { .. } | Slot::Running { .. } => "busy",
            Slot::TimedOut { .. } => "timed_out",
        }
    }
}

/// The environment's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Cold,
    /// Asked for a process; `Spawned` comes next.
    Spawning,
    /// Init runs; `init_error` is what a process reported to `/init/error`.
    Starting {
        pid: u32,
        since: Instant,
        init_error: Option<(String, String)>,
    },
    /// A process asked for its first `/next`: init is done.
    Ready {
        pid: u32,
    },
    Stopping {
        pid: u32,
    },
}

impl Phase {
    pub fn pid(&self) -> Option<u32> {
        match self {
            Phase::Starting { pid, .. } | Phase::Ready { pid } | Phase::Stopping { pid } => Some(*pid),
            Phase::Cold | Phase::Spawning => None,
        }
    }
}

/// A parked `/next` from process `holder`.
#[derive(Debug)]
pub struct Poll {
    pub waiter: oneshot::Sender<NextEvent>,
    pub holder: u32,
}

#[derive(Debug)]
pub struct Environment {
    pub phase: Phase,
    pub slots: Vec<Slot>,
    pub polls: VecDeque<Poll>,
    /// Stop the process once every slot is idle (a reload).
    pub recycle: bool,
}

impl Environment {
    pub fn new(max_concurrency: usize) -> Self {
        Self {
            phase: Phase::Cold,
            slots: (0..max_concurrency).map(|_| Slot::Idle).collect(),
            polls: VecDeque::new(),
            recycle: false,
        }
    }

    pub fn busy(&self) -> bool {
        self.slots.iter().any(|s| !matches!(s, Slot::Idle))
    }
}
