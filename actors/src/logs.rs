//! Worker output and worker failures in the server log. Data goes in tracing fields (`handler`,
//! `worker`, `pid`, `request_id`), never into the message as decoration: colour and layout belong to
//! the server's log formatter, and `--log-format json` ships the same fields to log shippers.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The target of every line a worker printed.
pub const WORKER_TARGET: &str = "smyth::worker";
/// The target of smyth's per-invocation `REPORT` lines.
pub const REPORT_TARGET: &str = "smyth::report";

/// Who printed a line: one per process a worker slot starts, shared with that process's log pump.
#[derive(Debug)]
pub struct WorkerLog {
    handler: Arc<str>,
    worker: Arc<str>,
    /// 0 until the spawn returns.
    pid: AtomicU32,
    /// The invocation the process was last handed: its lines up to the next one are that
    /// invocation's, as in CloudWatch; none during init.
    request_id: Mutex<Option<Arc<str>>>,
}

impl WorkerLog {
    pub fn new(handler: &str, worker: &str) -> Arc<Self> {
        Arc::new(Self {
            handler: handler.into(),
            worker: worker.into(),
            pid: AtomicU32::new(0),
            request_id: Mutex::new(None),
        })
    }

    pub fn started(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    pub fn serving(&self, request_id: &str) {
        *self.request_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(request_id.into());
    }

    /// One line the process printed.
    pub fn line(&self, line: &str) {
        let pid = Some(self.pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0);
        let request_id = self.request_id.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tracing::info!(
            target: WORKER_TARGET,
            handler = %self.handler,
            worker = %self.worker,
            pid,
            request_id = request_id.as_deref(),
            "{line}"
        );
    }
}

/// `file:line` of the innermost frame of an `/init/error` body's `stackTrace` (the user's frame: the
/// runtimes leave their own out), relative to `root` when it is inside. Reads both Python's
/// `File "x.py", line 3` and AWS's syntax-error `File "x.py" Line 3`.
pub fn init_error_location(body: &[u8], root: &Path) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let frames = doc.get("stackTrace")?.as_array()?;
    frames.iter().rev().filter_map(|frame| frame.as_str()).find_map(|frame| {
        let rest = &frame[frame.find("File \"")? + 6..];
        let (file, rest) = rest.split_once('"')?;
        let rest = rest.trim_start_matches(',').trim_start();
        let rest = rest.strip_prefix("line ").or_else(|| rest.strip_prefix("Line "))?;
        let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if line.is_empty() {
            return None;
        }
        let file = Path::new(file);
        let shown = file.strip_prefix(root).unwrap_or(file);
        Some(format!("{}:{line}", shown.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_frame_of_an_init_error() {
        let root = Path::new("/proj");
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"stackTrace": ["  File \"/proj/app/views.py\", line 2, in <module>\n    import x\n",
                                   "  File \"/proj/app/models.py\", line 14, in <module>\n    import y\n"]}"#,
                Some("app/models.py:14"),
            ),
            (r#"{"stackTrace": ["  File \"/proj/broken.py\" Line 3\n    def (:\n"]}"#, Some("broken.py:3")),
            (r#"{"stackTrace": ["  File \"/usr/lib/x.py\", line 9, in f\n"]}"#, Some("/usr/lib/x.py:9")),
            (r#"{"stackTrace": []}"#, None),
            (r#"{"errorMessage": "no trace"}"#, None),
            ("not json", None),
        ];
        for (body, expected) in cases {
            assert_eq!(init_error_location(body.as_bytes(), root).as_deref(), *expected, "{body}");
        }
    }
}
