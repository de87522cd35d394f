//! The data of one managed-instances environment, as `machine::step` reads and changes it: its main
//! process's phase, its N slots (each holding at most one invocation), and the `/next` calls its
//! processes have parked; and the step's events, facts and effects.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::invocation::{Invocation, LogSink, Outcome};
use crate::messages::{NextEvent, Reply, RuntimeApiError};

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

#[derive(Debug)]
pub enum Event {
    Run {
        slot: usize,
        job: Job,
    },
    Spawned {
        pid: u32,
    },
    SpawnFailed {
        message: String,
    },
    /// A `/next` from `holder`, a process of the environment's tree.
    Next {
        waiter: oneshot::Sender<NextEvent>,
        holder: u32,
    },
    Result {
        request_id: String,
        body: Bytes,
        is_error: bool,
    },
    TooLarge {
        request_id: String,
    },
    InitError {
        error_type: String,
        message: String,
    },
    InitTimeout {
        pid: u32,
    },
    Deadline {
        request_id: String,
    },
    /// A process of the tree (not the main one) is gone.
    ProcessGone {
        pid: u32,
    },
    /// The main process exited.
    Exited {
        pid: u32,
        exit: String,
    },
    /// The runtime's connection closed before it read the event.
    Undelivered {
        request_id: String,
    },
    Recycle,
    Shutdown {
        force: bool,
    },
}

/// What the step needs of the world.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub now: Instant,
    pub wall: SystemTime,
    pub timeout: Duration,
    pub init_timeout: Duration,
    pub shutting_down: bool,
}

#[derive(Debug)]
pub enum Effect {
    Spawn,
    Kill {
        pid: u32,
        force: bool,
    },
    Deliver {
        waiter: oneshot::Sender<NextEvent>,
        request_id: String,
        deadline: SystemTime,
        invocation: Invocation,
    },
    /// Answer the caller; `duration` for the REPORT line when the code ran; `log` wants the
    /// invocation's log lines (the Invoke API's `Tail`).
    Answer {
        reply: Reply,
        outcome: Outcome,
        duration: Option<Duration>,
        log: Option<LogSink>,
    },
    Refuse {
        reply: Reply,
    },
    ArmDeadline {
        request_id: String,
        after: Duration,
    },
    ArmInit {
        pid: u32,
        after: Duration,
    },
    InitDone {
        duration: Duration,
    },
    /// Slot `slot` changed; `finished`: its invocation is over, it may take the next one.
    SlotChanged {
        slot: usize,
        finished: bool,
    },
    Api(Result<(), RuntimeApiError>),
}
