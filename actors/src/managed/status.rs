//! What `/_smyth/status` shows of a managed-instances handler: its `max_concurrency` and capacity,
//! and each environment with its process and its slots (each slot's state, request id and the
//! process serving it). The supervisor keeps the latest report of each environment.

use serde::Serialize;

use super::actor::EnvironmentActor;
use super::machine::{Phase, Slot};
use crate::state::StateKind;
use crate::status::{epoch_ms, WorkerStatus};

/// One environment as its actor reports it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    /// `handler:N`, N the environment's number (0 … concurrency − 1).
    pub id: String,
    /// `cold`, `starting`, `warm` (every slot idle), `busy` (a slot taken) or `stopping`.
    pub state: StateKind,
    /// The environment's main process.
    pub pid: Option<u32>,
    /// The scratch folder its processes share (`TMPDIR`).
    pub tmpdir: Option<String>,
    pub invocations: u64,
    pub cold_starts: u64,
    pub max_concurrency: usize,
    pub slots: Vec<SlotStatus>,
}

/// One slot of an environment.
#[derive(Debug, Clone, Serialize)]
pub struct SlotStatus {
    pub slot: usize,
    /// `idle`, `busy`, or `timed_out` (the caller got the timeout; the code still runs).
    pub state: &'static str,
    pub request_id: Option<String>,
    /// The process serving the slot's invocation.
    pub pid: Option<u32>,
}

/// The handler-level part, flattened into the handler's status.
#[derive(Debug, Clone, Serialize)]
pub struct ManagedStatus {
    pub managed_instances: Capacity,
    pub environments: Vec<EnvironmentStatus>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Capacity {
    pub max_concurrency: usize,
    /// Environments × `max_concurrency`: invocations the handler serves at once.
    pub capacity: usize,
}

/// The supervisor's record of its environments (empty for an ordinary handler).
#[derive(Debug, Default)]
pub struct Environments(Vec<Option<EnvironmentStatus>>);

impl Environments {
    pub fn update(&mut self, index: usize, status: EnvironmentStatus) {
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(status);
    }

    /// The handler's managed part, when it has environments.
    pub fn shown(&self, handler: &smyth_config::HandlerConfig) -> Option<ManagedStatus> {
        let managed = handler.managed_instances?;
        Some(ManagedStatus {
            managed_instances: Capacity {
                max_concurrency: managed.max_concurrency,
                capacity: handler.capacity(),
            },
            environments: self.0.iter().flatten().cloned().collect(),
        })
    }
}

impl EnvironmentActor {
    /// The environment's state in the worker states' names.
    pub(super) fn kind(&self) -> StateKind {
        match self.env.phase {
            Phase::Cold => StateKind::Cold,
            Phase::Spawning | Phase::Starting { .. } => StateKind::Starting,
            Phase::Ready { .. } if self.env.busy() => StateKind::Busy,
            Phase::Ready { .. } => StateKind::Warm,
            Phase::Stopping { .. } => StateKind::Stopping,
        }
    }

    /// Slot `slot` as a worker of the supervisor's pool: busy while it holds an invocation, else in
    /// the environment's state.
    pub fn slot_status(&self, slot: usize) -> WorkerStatus {
        let busy = !matches!(self.env.slots[slot], Slot::Idle);
        let state = match self.kind() {
            StateKind::Busy if !busy => StateKind::Warm,
            kind if busy && kind != StateKind::Starting => StateKind::Busy,
            kind => kind,
        };
        WorkerStatus {
            invocations: if slot == 0 { self.invocations } else { 0 },
            // Counted once per environment, so the handler's sum is the environment's.
            cold_starts: if slot == 0 { self.cold_starts } else { 0 },
            last_used: self.last_used.map(epoch_ms),
            ..WorkerStatus::new(format!("{}.{slot}", self.name), state, self.env.phase.pid())
        }
    }

    pub fn status(&self) -> EnvironmentStatus {
        EnvironmentStatus {
            id: self.name.clone(),
            state: self.kind(),
            pid: self.env.phase.pid(),
            tmpdir: self.scratch.as_ref().map(|d| d.path().to_string_lossy().into_owned()),
            invocations: self.invocations,
            cold_starts: self.cold_starts,
            max_concurrency: self.env.slots.len(),
            slots: (self.env.slots.iter().enumerate())
                .map(|(slot, s)| SlotStatus {
                    slot,
                    state: s.state_name(),
                    request_id: s.request_id().map(str::to_string),
                    pid: s.holder(),
                })
                .collect(),
        }
    }
}
