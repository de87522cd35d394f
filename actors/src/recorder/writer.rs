//! The writer thread: takes rows and log lines off the queue, a batch at a time, and commits each
//! batch in one transaction; keeps only the newest `record_keep` rows. A line may come before its
//! row (held until the row comes) or after it (appended to the row already written).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::packed::{unpack_line, unpack_row, PackedRow};
use super::queue::{entries, Kind, Queue};
use super::row::{cut, cut_text, CUT_AT};
use super::Flush;

/// How long a batch gathers messages after its first, so that many invocations share one
/// transaction: a commit costs far more than a row. A flush ends the gathering at once.
const GATHER: Duration = Duration::from_millis(50);
/// Under load (a batch of at least [`BUSY`] messages after [`GATHER`]) a batch gathers this long in
/// all: each commit writes the table's last page (64 KB) and its parents again, however few rows it
/// adds, so that is done four times a second rather than twenty; what waits meanwhile is packed rows,
/// a few hundred KB.
const GATHER_BUSY: Duration = Duration::from_millis(250);
const BUSY: usize = 32;
const MAX_BATCH: usize = 20_000;
/// The writer's nice: a lower priority than the request path's threads, so that on a busy machine it
/// waits for them (no-op throughput with recording on went from 0.87 to 1.02 × off in `make bench`).
/// Not lower: at nice 5 it still has a quarter of a core shared with one busy thread, where it needs
/// under 4 % at full load, so it never falls behind for long.
const NICE: libc::c_int = 5;
/// Bytes of buffer kept between batches, at most.
const MAX_SPARE: usize = 4 * 1024 * 1024;
/// Requests whose lines are held, at most; rows are remembered as written for as many invocations
/// after them (and at most twice as many are kept between prunings).
const MAX_TRACKED: usize = 4_096;
/// A fast hash for ids the writer makes itself (not an attacker's keys): SipHash cost it 5 %.
type Ids<V> = HashMap<String, V, foldhash::fast::RandomState>;

pub struct Writer {
    conn: Connection,
    path: PathBuf,
    keep: usize,
    on: Arc<AtomicBool>,
    /// Lines of requests whose row has not come yet.
    early_lines: Ids<String>,
    /// Rows written lately, and each one's `seq`, for lines that come after them.
    written: Ids<i64>,
}

impl Writer {
    pub fn new(conn: Connection, path: PathBuf, keep: usize, on: Arc<AtomicBool>) -> Self {
        Writer { conn, path, keep, on, early_lines: Ids::default(), written: Ids::default() }
    }

    pub fn run(mut self, queue: &Queue) {
        yield_to_requests();
        let mut spare = Vec::new();
        while queue.wait() {
            gather(queue);
            let batch = queue.take(spare);
            if let Err(err) = self.write(&batch.bytes) {
                // One WARN, and no more writes: a full or read-only disk never fails a request.
                self.on.store(false, Ordering::Relaxed);
                tracing::warn!(
                    path = %self.path.display(),
                    "recording is off: cannot write {}: {err}",
                    self.path.display()
                );
                answer(batch.flushes);
                // Answer later flushes at once, and drop the rest.
                while queue.wait() {
                    answer(queue.take(Vec::new()).flushes);
                }
                return;
            }
            if batch.flushes.iter().any(|flush| flush.checkpoint) {
                // The process ends: leave one self-contained file behind.
                let _ = self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            }
            answer(batch.flushes);
            spare = batch.bytes;
            // A burst's buffer is not kept whole while idle.
            spare.clear();
            spare.shrink_to(MAX_SPARE);
        }
    }

    fn write(&mut self, batch: &[u8]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut rows = 0;
        for (kind, bytes) in entries(batch) {
            match kind {
                Kind::Row => {
                    let Ok(row) = unpack_row(bytes) else {
                        tracing::debug!("recorder: a row came torn; it is not recorded");
                        continue;
                    };
                    let early = (!self.early_lines.is_empty()).then(|| self.early_lines.remove(row.id));
                    let log = early.flatten().unwrap_or_default();
                    insert(&tx, &row, &log)?;
                    rows += 1;
                    let seq = tx.last_insert_rowid();
                    self.written.insert(row.id.to_string(), seq);
                    if self.written.len() > 2 * MAX_TRACKED {
                        self.written.retain(|_, written| *written > seq - MAX_TRACKED as i64);
                    }
                }
                Kind::Line => {
                    let Ok(line) = unpack_line(bytes) else { continue };
                    let (id, text) = (line.id, line.text);
                    if let Some(seq) = self.written.get(id) {
                        tx.prepare_cached(
                            "UPDATE invocations SET log = log || ?2 || char(10) WHERE seq = ?1 AND length(log) < ?3",
                        )?
                        .execute(params![seq, text, CUT_AT as i64])?;
                    } else if self.early_lines.len() < MAX_TRACKED || self.early_lines.contains_key(id) {
                        let lines = self.early_lines.entry(id.to_string()).or_default();
                        if lines.len() < CUT_AT {
                            lines.push_str(text);
                            lines.push('\n');
                        }
                    }
                }
            }
        }
        if rows > 0 {
            tx.prepare_cached(
                "DELETE FROM invocations WHERE seq <= (SELECT MAX(seq) FROM invocations) - ?1",
            )?
            .execute(params![self.keep as i64])?;
        }
        tx.commit()
    }
}

/// Lowers this thread's priority to [`NICE`] (on Linux, nice is per thread), so that where the
/// writer and an invocation's own processes want the same core, the invocation goes first.
fn yield_to_requests() {
    // SAFETY: setpriority reads its arguments only; the id is this thread's own.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, NICE) } != 0;
    if failed {
        tracing::debug!("recorder: cannot lower the writer's priority: {}", std::io::Error::last_os_error());
    }
}

/// Lets entries gather (see [`GATHER`]) before the batch is taken. It sleeps through the window
/// rather than waking for each entry (a wake-up per invocation would cost the writer, and the
/// request's thread, more than its row); a flush or closing wakes it and ends the gathering.
fn gather(queue: &Queue) {
    let started = Instant::now();
    let mut window = GATHER;
    loop {
        let (waiting, now) = queue.pending();
        if now || waiting >= MAX_BATCH {
            return;
        }
        let left = window.saturating_sub(started.elapsed());
        if left.is_zero() {
            if waiting < BUSY || window == GATHER_BUSY {
                return;
            }
            window = GATHER_BUSY;
            continue;
        }
        std::thread::park_timeout(left);
    }
}

fn answer(flushed: Vec<Flush>) {
    for flush in flushed {
        let _ = flush.done.send(());
    }
}

fn insert(tx: &rusqlite::Transaction, row: &PackedRow, log: &str) -> rusqlite::Result<()> {
    // Prepared once per connection: the writer's hot path.
    tx.prepare_cached(
        "INSERT INTO invocations (id, handler, worker, pid, cold, tenant, source, started_at_ms,
            init_ms, run_ms, status, event, result, error_type, error_message, error_stack, log, http_request,
            chaos, worker_name, event_size, result_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
            ?21, ?22)",
    )?
    .execute(params![
        row.id,
        row.handler,
        row.worker.map(|w| w as i64),
        row.pid,
        row.cold,
        row.tenant,
        row.source,
        row.started_at_ms as i64,
        row.init_ms,
        row.run_ms,
        row.status,
        cut(row.event),
        row.result.map(cut),
        row.error_type,
        row.error_message.map(cut_text),
        row.error_stack.map(cut_text),
        cut_text(log),
        row.http_request.as_ref().map(|request| request.to_json()),
        row.chaos,
        row.worker_name,
        row.event.len() as i64,
        row.result.map(|r| r.len() as i64),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::Invocation;
    use crate::recorder::packed::PackedLine;
    use crate::recorder::Row;

    fn row(id: String) -> Row {
        let invocation = Invocation::of(bytes::Bytes::from_static(b"{}"));
        Row::new(id, "h", &invocation, 0)
    }

    #[test]
    fn the_default_keeps_the_newest_ten_thousand_and_lines_find_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invocations.db");
        let conn = super::super::schema::open(&path).unwrap();
        let on = Arc::new(AtomicBool::new(true));
        let writer = Writer::new(conn, path.clone(), smyth_config::DEFAULT_RECORD_KEEP, on);
        let queue = Arc::new(Queue::default());
        let thread = {
            let queue = queue.clone();
            std::thread::spawn(move || writer.run(&queue))
        };
        // A line before its row, and one after it.
        queue.push(Kind::Line, &PackedLine { id: "r0", text: "early" });
        for i in 0..10_050 {
            queue.push(Kind::Row, &PackedRow::of(&row(format!("r{i}"))));
        }
        queue.push(Kind::Line, &PackedLine { id: "r10049", text: "late" });
        let (done, flushed) = crossbeam_channel::bounded(1);
        queue.flush(Flush { done, checkpoint: true });
        flushed.recv_timeout(Duration::from_secs(60)).unwrap();
        queue.close();
        thread.join().unwrap();
        let conn = Connection::open(&path).unwrap();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM invocations", [], |r| r.get(0)).unwrap();
        let (first, last): (i64, i64) = conn
            .query_row("SELECT MIN(seq), MAX(seq) FROM invocations", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((count, first, last), (10_000, 51, 10_050));
        let log: String =
            conn.query_row("SELECT log FROM invocations WHERE id = 'r10049'", [], |r| r.get(0)).unwrap();
        assert_eq!(log, "late\n");
        let gone: i64 =
            conn.query_row("SELECT COUNT(*) FROM invocations WHERE id = 'r0'", [], |r| r.get(0)).unwrap();
        assert_eq!(gone, 0, "the oldest are deleted");
    }

    #[test]
    fn the_writer_runs_below_the_request_path() {
        let nice = std::thread::spawn(|| {
            yield_to_requests();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // After the command's closing parenthesis: state is field 3, nice field 19.
            stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse::<i32>().unwrap()
        });
        assert_eq!(nice.join().unwrap(), NICE);
    }
}
