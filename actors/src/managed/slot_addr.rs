//! Where the supervisor sends a slot's messages: a worker actor (one slot, one process) or one slot of
//! a managed-instances environment. The supervisor's code reads the same for both (`addr.do_send`).

use actix::Addr;

use super::actor::{EnvironmentActor, RunInSlot};
use crate::messages::{Recycle, Run, SetProvisioned, Warmup};
use crate::worker::{Stop, WorkerActor};

#[derive(Clone)]
pub enum SlotAddr {
    Worker(Addr<WorkerActor>),
    /// Slot `slot` (0 … max_concurrency − 1) of an environment.
    Environment {
        addr: Addr<EnvironmentActor>,
        slot: usize,
    },
}

/// A message the supervisor sends to a slot.
pub trait SlotMessage {
    fn send_to(self, addr: &SlotAddr);
}

impl SlotAddr {
    pub fn do_send<M: SlotMessage>(&self, msg: M) {
        msg.send_to(self);
    }
}

impl SlotMessage for Run {
    fn send_to(self, addr: &SlotAddr) {
        match addr {
            SlotAddr::Worker(worker) => worker.do_send(self),
            SlotAddr::Environment { addr, slot } => addr.do_send(RunInSlot { slot: *slot, run: self }),
        }
    }
}

/// Messages both actors take as they are.
macro_rules! both_take {
    ($($message:ty),*) => {$(
        impl SlotMessage for $message {
            fn send_to(self, addr: &SlotAddr) {
                match addr {
                    SlotAddr::Worker(worker) => worker.do_send(self),
                    SlotAddr::Environment { addr, .. } => addr.do_send(self),
                }
            }
        }
    )*};
}

both_take!(Warmup, Recycle, SetProvisioned, Stop);
