//! Dispatch decisions as pure functions: which slot takes a request, and whether it runs now, waits
//! in the queue or is throttled. The supervisor applies them; the tables below test them.

use std::ops::Range;

use smyth_config::Strategy;

use crate::invocation::Rejection;
use crate::state::StateKind;

/// What the supervisor knows of one slot when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    pub state: StateKind,
    /// An invocation is assigned to this slot (set at dispatch, cleared when it finishes).
    pub assigned: bool,
    /// Dispatch sequence number of the slot's last use (higher = more recent); None = never used.
    pub last_used: Option<u64>,
}

impl SlotView {
    fn free(&self) -> bool {
        !self.assigned
    }
}

/// Picks the slot for the next request, or None to wait for one.
/// `random(n)` returns a number below n (injected so tests are deterministic).
pub fn pick(strategy: Strategy, slots: &[SlotView], random: &mut dyn FnMut(usize) -> usize) -> Option<usize> {
    let free = || slots.iter().enumerate().filter(|(_, s)| s.free());
    match strategy {
        Strategy::FirstWarm => free().min_by_key(|(i, s)| (first_warm_rank(s.state), *i)).map(|(i, _)| i),
        Strategy::RoundRobin => {
            let (i, slot) = slots.iter().enumerate().min_by_key(|(i, s)| (s.last_used, *i))?;
            slot.free().then_some(i)
        }
        Strategy::Random => {
            let candidates: Vec<usize> = free().map(|(i, _)| i).collect();
            (!candidates.is_empty()).then(|| candidates[random(candidates.len())])
        }
        Strategy::LeastRecentlyUsed => free().min_by_key(|(i, s)| (s.last_used, *i)).map(|(i, _)| i),
        Strategy::AlwaysCold => free().min_by_key(|(i, s)| (always_cold_rank(s.state), *i)).map(|(i, _)| i),
    }
}

/// Warm first, then one already starting, then a cold one to start; a stopping one last.
fn first_warm_rank(state: StateKind) -> u8 {
    match state {
        StateKind::Warm => 0,
        StateKind::Starting => 1,
        StateKind::Cold | StateKind::Backoff => 2,
        StateKind::Stopping | StateKind::Busy => 3,
    }
}

/// A cold slot gives a fresh process soonest; a stopping one becomes cold shortly.
fn always_cold_rank(state: StateKind) -> u8 {
    match state {
        StateKind::Cold => 0,
        StateKind::Stopping => 1,
        _ => 2,
    }
}

/// The handler's limits, as the admission decision needs them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Reserved concurrency is set: throttle instead of queueing.
    pub reserved: bool,
    /// The most requests that may wait.
    pub queue_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Dispatch(usize),
    Queue,
    Throttle(Rejection),
}

/// Decides what happens to a newly arrived request.
pub fn admit(
    strategy: Strategy,
    slots: &[SlotView],
    queued: usize,
    limits: Limits,
    account_has_room: bool,
    random: &mut dyn FnMut(usize) -> usize,
) -> Admission {
    admit_picking(slots, queued, limits, account_has_room, || pick(strategy, slots, random))
}

/// [`admit`] with the slot chosen by `choose` (tenant isolation chooses among a tenant's slots).
pub fn admit_picking(
    slots: &[SlotView],
    queued: usize,
    limits: Limits,
    account_has_room: bool,
    choose: impl FnOnce() -> Option<usize>,
) -> Admission {
    let any_free = slots.iter().any(SlotView::free);
    if limits.reserved && !any_free {
        return Admission::Throttle(Rejection::ReservedConcurrency);
    }
    // FIFO: nobody overtakes a request that is already waiting.
    let slot = if queued == 0 { choose() } else { None };
    match slot {
        Some(_) if !account_has_room => Admission::Throttle(Rejection::AccountConcurrency),
        Some(i) => Admission::Dispatch(i),
        None if queued >= limits.queue_size => Admission::Throttle(Rejection::QueueFull),
        None => Admission::Queue,
    }
}

/// The slots that take requests: every slot, or the first `reserved` of them while reserved concurrency
/// is set (the pool never grows past the slots bound at start).
pub fn pool_size(reserved: Option<usize>, capacity: usize) -> usize {
    reserved.map_or(capacity, |r| r.min(capacity))
}

/// What a live concurrency change does to the slots, by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resize {
    /// Newly provisioned: marked provisioned and started warm.
    pub provision: Range<usize>,
    /// No longer provisioned but still in the pool: on demand again, stopped after their invocation.
    pub unprovision: Range<usize>,
    /// Outside the new pool: stopped after their invocation and never picked.
    pub retire: Range<usize>,
}

/// The slots a change from `(pool, provisioned)` `before` to `after` touches. Provisioned slots are
/// always the first ones of the pool.
pub fn resize(before: (usize, usize), after: (usize, usize)) -> Resize {
    let ((pool_before, prov_before), (pool_after, prov_after)) = (before, after);
    Resize {
        provision: prov_before..prov_after.max(prov_before),
        unprovision: prov_after..prov_before.min(pool_after).max(prov_after),
        retire: pool_after..pool_before.max(pool_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateKind::*;

    fn slot(state: StateKind, assigned: bool, last_used: Option<u64>) -> SlotView {
        SlotView { state, assigned, last_used }
    }

    fn first(_: usize) -> usize {
        0
    }

    #[test]
    fn pick_table() {
        let cases: Vec<(Strategy, Vec<SlotView>, Option<usize>)> = vec![
            // first_warm: warm over cold, starting over cold, wait when all assigned
            (Strategy::FirstWarm, vec![slot(Cold, false, None), slot(Warm, false, Some(1))], Some(1)),
            (Strategy::FirstWarm, vec![slot(Cold, false, None), slot(Starting, false, None)], Some(1)),
            (Strategy::FirstWarm, vec![slot(Warm, true, Some(2)), slot(Cold, false, None)], Some(1)),
            (Strategy::FirstWarm, vec![slot(Busy, true, Some(1)), slot(Busy, true, Some(2))], None),
            (Strategy::FirstWarm, vec![slot(Warm, false, Some(5)), slot(Warm, false, Some(1))], Some(0)),
            // round_robin: the slot unused longest, even if that means waiting for it
            (Strategy::RoundRobin, vec![slot(Warm, false, Some(3)), slot(Cold, false, None)], Some(1)),
            (Strategy::RoundRobin, vec![slot(Warm, false, Some(3)), slot(Warm, false, Some(2))], Some(1)),
            (Strategy::RoundRobin, vec![slot(Busy, true, Some(1)), slot(Warm, false, Some(2))], None),
            // least_recently_used: the free slot unused longest
            (
                Strategy::LeastRecentlyUsed,
                vec![slot(Busy, true, Some(1)), slot(Warm, false, Some(2))],
                Some(1),
            ),
            (
                Strategy::LeastRecentlyUsed,
                vec![slot(Warm, false, Some(4)), slot(Warm, false, Some(2))],
                Some(1),
            ),
            // always_cold: a cold slot first
            (Strategy::AlwaysCold, vec![slot(Stopping, false, Some(1)), slot(Cold, false, None)], Some(1)),
            (Strategy::AlwaysCold, vec![slot(Stopping, false, Some(1)), slot(Busy, true, None)], Some(0)),
            (Strategy::AlwaysCold, vec![slot(Busy, true, Some(1))], None),
            // random: only free slots are candidates
            (Strategy::Random, vec![slot(Busy, true, Some(1)), slot(Warm, false, Some(2))], Some(1)),
            (Strategy::Random, vec![slot(Busy, true, Some(1))], None),
            // an empty pool (reserved_concurrency = 0) never picks
            (Strategy::FirstWarm, vec![], None),
        ];
        for (strategy, slots, expected) in cases {
            assert_eq!(pick(strategy, &slots, &mut first), expected, "{strategy:?} {slots:?}");
        }
    }

    #[test]
    fn random_uses_the_injected_choice() {
        let slots = [slot(Warm, false, None), slot(Busy, true, None), slot(Warm, false, None)];
        assert_eq!(pick(Strategy::Random, &slots, &mut |n| n - 1), Some(2));
    }

    #[test]
    fn admit_table() {
        let queueing = Limits { reserved: false, queue_size: 2 };
        let reserved = Limits { reserved: true, queue_size: 2 };
        let busy = vec![slot(Busy, true, Some(1))];
        let free = vec![slot(Warm, false, Some(1))];
        let cases: Vec<(&[SlotView], usize, Limits, bool, Admission)> = vec![
            (&free, 0, queueing, true, Admission::Dispatch(0)),
            (&busy, 0, queueing, true, Admission::Queue),
            (&busy, 1, queueing, true, Admission::Queue),
            (&busy, 2, queueing, true, Admission::Throttle(Rejection::QueueFull)),
            // a free slot does not let a newcomer overtake the queue
            (&free, 1, queueing, true, Admission::Queue),
            (&busy, 0, reserved, true, Admission::Throttle(Rejection::ReservedConcurrency)),
            (&[], 0, reserved, true, Admission::Throttle(Rejection::ReservedConcurrency)),
            (&free, 0, reserved, true, Admission::Dispatch(0)),
            (&free, 0, queueing, false, Admission::Throttle(Rejection::AccountConcurrency)),
        ];
        for (slots, queued, limits, room, expected) in cases {
            let got = admit(Strategy::FirstWarm, slots, queued, limits, room, &mut first);
            assert_eq!(got, expected, "{slots:?} queued={queued} {limits:?} room={room}");
        }
    }
    #[test]
    fn pool_size_table() {
        let cases = [(None, 3, 3), (Some(0), 3, 0), (Some(2), 3, 2), (Some(3), 3, 3), (Some(9), 3, 3)];
        for (reserved, capacity, expected) in cases {
            assert_eq!(pool_size(reserved, capacity), expected, "{reserved:?} of {capacity}");
        }
    }

    #[test]
    fn resize_table() {
        let r = |provision: Range<usize>, unprovision: Range<usize>, retire: Range<usize>| Resize {
            provision,
            unprovision,
            retire,
        };
        let cases = [
            // more provisioned workers in the same pool
            ((3, 0), (3, 2), r(0..2, 2..2, 3..3)),
            ((3, 1), (3, 3), r(1..3, 3..3, 3..3)),
            // fewer provisioned: the released ones go back to on demand
            ((3, 3), (3, 1), r(3..3, 1..3, 3..3)),
            // reserved shrinks the pool: slots outside it retire (not also "unprovisioned")
            ((3, 2), (1, 1), r(2..2, 1..1, 1..3)),
            ((3, 0), (0, 0), r(0..0, 0..0, 0..3)),
            // reserved removed: the pool grows back, nothing to stop
            ((0, 0), (3, 0), r(0..0, 0..0, 3..3)),
            // no change
            ((2, 1), (2, 1), r(1..1, 1..1, 2..2)),
        ];
        for (before, after, expected) in cases {
            assert_eq!(resize(before, after), expected, "{before:?} -> {after:?}");
        }
    }
}
