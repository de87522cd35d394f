//! The resource sampler: one thread for the whole server reads the RSS and CPU of every live worker
//! process every [`INTERVAL`] with `sysinfo`, refreshing only the pids it watches.
//!
//! Workers tell it what to watch through a crossbeam channel ([`Sampler`]); it hands samples back to
//! the worker with `do_send`, and only when a value moved (to a tenth of a MB or of a percent), so an
//! idle worker costs the actor thread nothing and a busy one at most one message per tick.
//!
//! A worker runs in its own process group and may have children (`subprocess`, `multiprocessing`):
//! only the main pid is measured. That is what a Python handler's memory is in practice, and it keeps
//! each tick to one `/proc/PID` read per worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::state::StateKind;

/// How often the watched processes are measured.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Bytes in the MB of `memory_size` (Lambda's MB are MiB).
pub const MIB: u64 = 1024 * 1024;

/// One measurement of a worker's process.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
#[rtype(result = "()")]
pub struct Sample {
    pub pid: u32,
    pub rss_bytes: u64,
    /// Percent of one CPU since the previous measurement (above 100 with several busy threads).
    pub cpu_percent: f32,
}

/// What a worker asks of the sampler.
pub enum Watch {
    /// Measure `pid` from now on and send its samples to `to`.
    Start { pid: u32, to: Recipient<Sample> },
    /// `pid` exited: stop measuring it.
    Stop { pid: u32 },
}

/// A worker's handle on the sampler; sending never blocks.
#[derive(Clone)]
pub struct Sampler(Option<Sender<Watch>>);

impl Sampler {
    /// Starts the sampler thread. It ends when every handle is dropped.
    pub fn start() -> Sampler {
        let (tx, rx) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new().name("sampler".into()).spawn(move || run(rx));
        match spawned {
            Ok(_) => Sampler(Some(tx)),
            Err(err) => {
                tracing::error!(%err, "could not start the memory sampler; memory_size is not enforced");
                Sampler(None)
            }
        }
    }

    pub fn watch(&self, pid: u32, to: Recipient<Sample>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Watch::Start { pid, to });
        }
    }

    pub fn unwatch(&self, pid: u32) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Watch::Stop { pid });
        }
    }
}

fn run(rx: Receiver<Watch>) {
    let mut watched = Watched::default();
    let mut system = match System::new() {
        Ok(system) => system,
        Err(err) => {
            tracing::error!(%err, "could not read process statistics; memory_size is not enforced");
            // Keep draining so workers' sends stay cheap and the thread ends with the server.
            while rx.recv().is_ok() {}
            return;
        }
    };
    let what = ProcessRefreshKind::nothing().with_memory().with_cpu().without_tasks();
    let mut pids: Vec<Pid> = Vec::new();
    let mut next_tick = Instant::now() + INTERVAL;
    loop {
        // Nothing to measure: sleep until a worker starts a process.
        let received = if watched.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_deadline(next_tick)
        };
        match received {
            Ok(command) => {
                if watched.is_empty() {
                    next_tick = Instant::now() + INTERVAL;
                }
                watched.apply(command);
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                next_tick += INTERVAL;
                let now = Instant::now();
                if next_tick <= now {
                    next_tick = now + INTERVAL; // fell behind (suspended machine): don't burst
                }
                pids.clear();
                pids.extend(watched.pids().map(Pid::from_u32));
                system.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, what);
                for pid in &pids {
                    let Some(process) = system.process(*pid) else { continue };
                    let sample = Sample {
                        pid: pid.as_u32(),
                        rss_bytes: process.memory(),
                        cpu_percent: process.cpu_usage(),
                    };
                    if let Some(to) = watched.record(sample) {
                        to.do_send(sample);
                    }
                }
            }
        }
    }
}

/// The sampler's bookkeeping: which pids are watched, who gets their samples, and what was last sent.
pub struct Watched<R = Recipient<Sample>> {
    entries: HashMap<u32, Entry<R>>,
}

impl<R> Default for Watched<R> {
    fn default() -> Self {
        Self { entries: HashMap::new() }
    }
}

struct Entry<R> {
    to: R,
    last_sent: Option<(u64, i64)>,
}

impl<R: Clone> Watched<R> {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.keys().copied()
    }

    pub fn watch(&mut self, pid: u32, to: R) {
        self.entries.insert(pid, Entry { to, last_sent: None });
    }

    pub fn unwatch(&mut self, pid: u32) {
        self.entries.remove(&pid);
    }

    /// Where `sample` should go: its pid's recipient if the pid is watched and the sample differs
    /// from the last one sent (to a tenth of a MB or of a percent); the first sample always goes.
    pub fn record(&mut self, sample: Sample) -> Option<R> {
        let entry = self.entries.get_mut(&sample.pid)?;
        let key = (sample.rss_bytes / (MIB / 10), (sample.cpu_percent * 10.0).round() as i64);
        if entry.last_sent == Some(key) {
            return None;
        }
        entry.last_sent = Some(key);
        Some(entry.to.clone())
    }
}

impl Watched<Recipient<Sample>> {
    fn apply(&mut self, command: Watch) {
        match command {
            Watch::Start { pid, to } => self.watch(pid, to),
            Watch::Stop { pid } => self.unwatch(pid),
        }
    }
}

/// What to do about a worker's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryVerdict {
    Within,
    /// The process passed `memory_size`: kill it (`Runtime.OutOfMemory`).
    Kill,
}

/// Whether a process in `state` using `rss_bytes` must die for `memory_size_mb`. A process already
/// being stopped (or gone) is left alone; passing the limit means using more than it, as on AWS.
pub fn memory_verdict(state: StateKind, rss_bytes: u64, memory_size_mb: u32) -> MemoryVerdict {
    let alive = matches!(state, StateKind::Starting | StateKind::Warm | StateKind::Busy);
    if alive && rss_bytes > u64::from(memory_size_mb) * MIB {
        MemoryVerdict::Kill
    } else {
        MemoryVerdict::Within
    }
}

/// Whole MB, rounded up, as the REPORT line prints `Max Memory Used`.
pub fn whole_mb(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

/// The resident set of `pid` right now, read straight from `/proc` (Linux); None elsewhere or when it
/// is gone. For the one reading a worker takes when its init ends, before the sampler's first tick.
pub fn rss_now(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::MemoryVerdict::*;
    use super::*;

    #[test]
    fn memory_limit_table() {
        let cases = [
            // state, RSS, memory_size MB, verdict
            (StateKind::Busy, 64 * MIB, 128, Within),
            (StateKind::Busy, 128 * MIB, 128, Within),
            (StateKind::Busy, 128 * MIB + 1, 128, Kill),
            (StateKind::Busy, 300 * MIB, 128, Kill),
            (StateKind::Warm, 141 * MIB, 128, Kill),
            (StateKind::Starting, 141 * MIB, 128, Kill),
            (StateKind::Busy, 300 * MIB, 512, Within),
            (StateKind::Busy, 10_241 * MIB, 10_240, Kill),
            (StateKind::Stopping, 300 * MIB, 128, Within),
            (StateKind::Cold, 300 * MIB, 128, Within),
            (StateKind::Busy, 0, 128, Within),
        ];
        for (state, rss, limit, expected) in cases {
            assert_eq!(memory_verdict(state, rss, limit), expected, "{state:?} {rss} B / {limit} MB");
        }
    }

    fn sample(pid: u32, rss_bytes: u64, cpu_percent: f32) -> Sample {
        Sample { pid, rss_bytes, cpu_percent }
    }

    #[test]
    fn only_watched_pids_and_changed_samples_are_sent() {
        let mut watched = Watched::<&str>::default();
        assert!(watched.is_empty());
        watched.watch(10, "a");
        watched.watch(20, "b");
        let mut pids: Vec<u32> = watched.pids().collect();
        pids.sort();
        assert_eq!(pids, [10, 20]);

        let steps = [
            (sample(10, 20 * MIB, 0.0), Some("a")),    // first sample always goes
            (sample(10, 20 * MIB, 0.0), None),         // unchanged
            (sample(10, 20 * MIB + 1000, 0.02), None), // below a tenth of a MB / percent
            (sample(10, 21 * MIB, 0.0), Some("a")),    // memory moved
            (sample(10, 21 * MIB, 12.5), Some("a")),   // CPU moved
            (sample(20, 9 * MIB, 0.0), Some("b")),
            (sample(30, 9 * MIB, 0.0), None), // not watched
        ];
        for (i, (s, expected)) in steps.into_iter().enumerate() {
            assert_eq!(watched.record(s), expected, "step {i}: {s:?}");
        }

        watched.unwatch(10);
        assert_eq!(watched.record(sample(10, 50 * MIB, 0.0)), None, "unwatched");
        // A pid watched again (reused) starts over: its first sample goes.
        watched.watch(10, "c");
        assert_eq!(watched.record(sample(10, 21 * MIB, 12.5)), Some("c"));
        watched.unwatch(10);
        watched.unwatch(20);
        assert!(watched.is_empty());
    }

    #[test]
    fn report_rounds_memory_up_to_whole_mb() {
        assert_eq!(whole_mb(0), 0);
        assert_eq!(whole_mb(1), 1);
        assert_eq!(whole_mb(MIB), 1);
        assert_eq!(whole_mb(MIB + 1), 2);
        assert_eq!(whole_mb(141 * MIB - 5), 141);
    }

    #[test]
    fn rss_now_reads_this_process() {
        let rss = rss_now(std::process::id()).expect("/proc is readable");
        assert!(rss > MIB, "{rss}");
        assert_eq!(rss_now(u32::MAX), None);
    }
}
