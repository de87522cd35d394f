//! The hand-over between the threads that finish invocations and the writer: each row or log line is
//! packed ([`super::packed`]) onto the end of one buffer under a mutex, and the writer swaps that
//! buffer for the one it wrote last, a batch at a time. So in the steady state nothing is allocated
//! or freed per invocation, and no memory changes threads: a row handed over as itself had the writer
//! free what the request's thread allocated, which sent that thread's next allocations down glibc's
//! slow paths and cost a no-op invocation more than its row.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

use serde::Serialize;

use super::Flush;

/// Bytes that may wait for the writer, beyond which new entries are dropped (the disk is too slow).
const MAX_QUEUED: usize = 64 * 1024 * 1024;
/// A frame: the kind (one byte), the payload's length (four, little-endian), the payload.
const HEADER: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Row = 0,
    Line = 1,
}

#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    entries: usize,
    flushes: Vec<Flush>,
    /// The writer, once it waits for the first time; `idle`: parked until something comes.
    writer: Option<Thread>,
    idle: bool,
    closed: bool,
}

/// What the writer takes at once.
pub struct Batch {
    pub bytes: Vec<u8>,
    pub flushes: Vec<Flush>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Packs `value` onto the queue; false (and nothing queued) when too much waits already.
    pub fn push(&self, kind: Kind, value: &impl Serialize) -> bool {
        let mut state = self.lock();
        if state.bytes.len() >= MAX_QUEUED {
            return false;
        }
        let at = state.bytes.len();
        state.bytes.push(kind as u8);
        state.bytes.extend_from_slice(&[0; HEADER - 1]);
        let bytes = std::mem::take(&mut state.bytes);
        state.bytes = postcard::to_extend(value, bytes).expect("a Vec takes any size");
        let len = (state.bytes.len() - at - HEADER) as u32;
        state.bytes[at + 1..at + HEADER].copy_from_slice(&len.to_le_bytes());
        state.entries += 1;
        let wake = std::mem::take(&mut state.idle).then(|| state.writer.clone()).flatten();
        drop(state);
        if let Some(writer) = wake {
            writer.unpark();
        }
        true
    }

    /// Queues a flush, and wakes the writer from its wait or its gathering.
    pub fn flush(&self, flush: Flush) {
        self.wake_with(|state| state.flushes.push(flush));
    }

    /// No more entries come: the writer writes what waits, then ends.
    pub fn close(&self) {
        self.wake_with(|state| state.closed = true);
    }

    fn wake_with(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        change(&mut state);
        state.idle = false;
        let writer = state.writer.clone();
        drop(state);
        if let Some(writer) = writer {
            writer.unpark();
        }
    }

    /// The writer's side: blocks until something waits (true), or the queue is closed and empty.
    pub fn wait(&self) -> bool {
        let mut state = self.lock();
        loop {
            if state.entries > 0 || !state.flushes.is_empty() {
                return true;
            }
            if state.closed {
                return false;
            }
            state.idle = true;
            if state.writer.is_none() {
                state.writer = Some(std::thread::current());
            }
            drop(state);
            std::thread::park();
            state = self.lock();
        }
    }

    /// Entries waiting, and whether the writer should stop gathering now (a flush, or closing).
    pub fn pending(&self) -> (usize, bool) {
        let state = self.lock();
        (state.entries, !state.flushes.is_empty() || state.closed)
    }

    /// Takes what waits, leaving `spare` (emptied, its capacity kept) for the next entries.
    pub fn take(&self, mut spare: Vec<u8>) -> Batch {
        spare.clear();
        let mut state = self.lock();
        state.entries = 0;
        Batch {
            bytes: std::mem::replace(&mut state.bytes, spare),
            flushes: std::mem::take(&mut state.flushes),
        }
    }
}

/// The entries of a batch, in the order they were pushed.
pub fn entries(mut bytes: &[u8]) -> impl Iterator<Item = (Kind, &[u8])> {
    std::iter::from_fn(move || {
        let (header, rest) = bytes.split_at_checked(HEADER)?;
        let len = u32::from_le_bytes(header[1..].try_into().expect("four bytes")) as usize;
        let (payload, rest) = rest.split_at_checked(len)?;
        bytes = rest;
        let kind = if header[0] == Kind::Row as u8 { Kind::Row } else { Kind::Line };
        Some((kind, payload))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_come_back_in_order_and_the_spare_buffer_is_reused() {
        let queue = Queue::default();
        assert!(queue.push(Kind::Line, &("a", "x")));
        assert!(queue.push(Kind::Row, &7u32));
        assert_eq!(queue.pending(), (2, false));
        let batch = queue.take(Vec::with_capacity(4096));
        let got: Vec<(Kind, &[u8])> = entries(&batch.bytes).collect();
        assert_eq!(got, [(Kind::Line, &b"\x01a\x01x"[..]), (Kind::Row, &b"\x07"[..])]);
        assert_eq!(queue.pending(), (0, false));
        assert!(queue.push(Kind::Row, &1u8));
        let next = queue.take(batch.bytes);
        assert!(next.bytes.capacity() >= 4096, "the buffer taken before is the one filled now");
    }

    #[test]
    fn an_idle_writer_wakes_for_an_entry_and_ends_once_closed_and_drained() {
        let queue = Arc::new(Queue::default());
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while queue.wait() {
                    seen += entries(&queue.take(Vec::new()).bytes).count();
                }
                seen
            })
        };
        // Let it park, then wake it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !queue.lock().idle {
            assert!(std::time::Instant::now() < deadline, "the writer never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        queue.push(Kind::Row, &1u8);
        queue.push(Kind::Row, &2u8);
        queue.close();
        assert_eq!(writer.join().unwrap(), 2);
    }
}
