//! Records every invocation in SQLite (`.smyth/invocations.db`), off the request path: workers and
//! supervisors hand finished invocations ([`Row`]) and their log lines, packed, to one writer thread
//! through a queue ([`queue`]); it batches them into transactions (WAL). A write that fails (full or read-only disk)
//! logs one WARN and turns recording off; a request never waits on the disk, nor fails for it.
//! `query` reads the database for `smyth invocations` and `/_smyth/invocations`.

pub mod origin;
mod packed;
pub mod query;
mod queue;
pub mod row;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smyth_config::RecordConfig;

use queue::{Kind, Queue};

pub use origin::{HttpParts, HttpRequestRecord, Origin, Source};
pub use row::Row;

/// Answered once everything pushed before it is committed.
struct Flush {
    done: crossbeam_channel::Sender<()>,
    /// The process ends: fold the write-ahead log into the file too.
    checkpoint: bool,
}

/// The handle every actor holds: cheap to clone; a no-op when recording is off.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: Arc<Queue>,
    /// Cleared when a write fails: from then on nothing is sent.
    on: Arc<AtomicBool>,
    path: PathBuf,
}

impl Drop for Inner {
    /// The last handle is gone: the writer writes what waits, then ends.
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Recorder {
    /// Opens (or creates) the database and starts the writer; off when `record = false`, and off with
    /// one WARN when the database cannot be opened.
    pub fn start(config: &RecordConfig) -> Recorder {
        if !config.enabled {
            return Recorder::default();
        }
        let conn = match schema::open(&config.path) {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(path = %config.path.display(), "recording is off: cannot open {}: {err}", config.path.display());
                return Recorder::default();
            }
        };
        let queue = Arc::new(Queue::default());
        let on = Arc::new(AtomicBool::new(true));
        let writer = writer::Writer::new(conn, config.path.clone(), config.keep, on.clone());
        let writes = queue.clone();
        let spawned = std::thread::Builder::new().name("recorder".into()).spawn(move || writer.run(&writes));
        if let Err(err) = spawned {
            tracing::warn!("recording is off: cannot start its thread: {err}");
            return Recorder::default();
        }
        Recorder { inner: Some(Arc::new(Inner { queue, on, path: config.path.clone() })) }
    }

    pub fn is_on(&self) -> bool {
        self.inner.as_ref().is_some_and(|inner| inner.on.load(Ordering::Relaxed))
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|inner| inner.path.as_path())
    }

    /// Hands `row` to the writer, packed; the row itself is dropped here, on the thread that made it.
    pub fn record(&self, row: Row) {
        self.push(Kind::Row, &packed::PackedRow::of(&row));
    }

    pub fn line(&self, id: &str, text: &str) {
        self.push(Kind::Line, &packed::PackedLine { id, text });
    }

    /// Waits (at most `limit`) until what was sent so far is on disk, in one file: before a
    /// short-lived process (`smyth invoke`) exits, and at shutdown.
    pub fn flush(&self, limit: Duration) {
        self.wait_for_writer(limit, true);
    }

    /// Waits (at most `limit`) until what was sent so far is committed: before the server reads the
    /// record to answer (`/_smyth/invocations`, a replay), so that it sees every invocation answered.
    pub fn commit(&self, limit: Duration) {
        self.wait_for_writer(limit, false);
    }

    fn wait_for_writer(&self, limit: Duration, checkpoint: bool) {
        let Some(inner) = self.inner.as_ref().filter(|_| self.is_on()) else { return };
        let (done, wait) = crossbeam_channel::bounded(1);
        inner.queue.flush(Flush { done, checkpoint });
        let _ = wait.recv_timeout(limit);
    }

    fn push(&self, kind: Kind, value: &impl serde::Serialize) {
        let Some(inner) = self.inner.as_ref().filter(|inner| inner.on.load(Ordering::Relaxed)) else {
            return;
        };
        if !inner.queue.push(kind, value) {
            tracing::debug!("recorder: the writer is behind; an invocation or log line is not recorded");
        }
    }
}
