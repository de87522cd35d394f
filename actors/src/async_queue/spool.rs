//! Queued event payloads kept out of the heap: up to `async_queue_size` events (1 MiB each) may wait,
//! so a payload above a small threshold goes to a file in a private temp dir (0700, files 0600), read
//! back when the event is dispatched and deleted when the event is done.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tempfile::{TempDir, TempPath};

/// Payloads up to this size stay in memory (10,000 of them at most 40 MB); larger ones are spooled.
pub const SPOOL_THRESHOLD: usize = 4096;

/// Where spooled payloads go. Cheap to clone; the dir is removed when the last clone is dropped.
#[derive(Clone)]
pub struct Spool {
    dir: Option<Arc<TempDir>>,
}

/// A queued event's payload.
pub enum Payload {
    Memory(Bytes),
    /// Deleted when dropped.
    File(TempPath),
}

/// What a dispatch needs to read a payload without borrowing the queued event.
pub enum Source {
    Memory(Bytes),
    File(PathBuf),
}

impl Spool {
    /// A fresh private dir; without one (the temp dir is not writable) payloads stay in memory.
    /// It is `smyth-events-<pid>-<random>`; dirs left by a server that was killed are removed first.
    pub fn create() -> Spool {
        match crate::scratch::private_dir("events") {
            Ok(dir) => Spool { dir: Some(Arc::new(dir)) },
            Err(err) => {
                tracing::warn!(
                    "cannot create a spool dir for asynchronous events ({err}); they stay in memory"
                );
                Spool { dir: None }
            }
        }
    }

    /// Keeps `bytes` as a payload: in a file when large. Blocking: call it off the actor thread.
    pub fn store(&self, bytes: Bytes) -> Payload {
        let Some(dir) = self.dir.as_ref().filter(|_| bytes.len() > SPOOL_THRESHOLD) else {
            return Payload::Memory(bytes);
        };
        let written = tempfile::NamedTempFile::new_in(dir.path()).and_then(|mut file| {
            file.write_all(&bytes)?;
            Ok(file.into_temp_path())
        });
        match written {
            Ok(path) => {
                drop(bytes);
                crate::memory::release_freed();
                Payload::File(path)
            }
            Err(err) => {
                tracing::warn!("cannot spool an asynchronous event ({err}); it stays in memory");
                Payload::Memory(bytes)
            }
        }
    }
}

impl Payload {
    pub fn source(&self) -> Source {
        match self {
            Payload::Memory(bytes) => Source::Memory(bytes.clone()),
            Payload::File(path) => Source::File(path.to_path_buf()),
        }
    }
}

impl Source {
    /// The payload's bytes; a spooled one is read on the blocking pool.
    pub async fn load(self) -> std::io::Result<Bytes> {
        match self {
            Source::Memory(bytes) => Ok(bytes),
            Source::File(path) => actix_rt::task::spawn_blocking(move || std::fs::read(path))
                .await
                .map_err(std::io::Error::other)?
                .map(Bytes::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn large_payloads_go_to_a_file_that_is_deleted_with_the_event() {
        let spool = Spool::create();
        let small = spool.store(Bytes::from(vec![b'a'; SPOOL_THRESHOLD]));
        assert!(matches!(small, Payload::Memory(_)));
        let large = spool.store(Bytes::from(vec![b'b'; SPOOL_THRESHOLD + 1]));
        let Payload::File(path) = &large else { panic!("a large payload is spooled") };
        let path = path.to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SPOOL_THRESHOLD as u64 + 1);
        let read = large.source().load().await.unwrap();
        assert_eq!(read, Bytes::from(vec![b'b'; SPOOL_THRESHOLD + 1]));
        drop(large);
        assert!(!path.exists(), "the file goes with the event");
    }
}
