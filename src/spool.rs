//! Large answers wait on disk, not in memory. A client that never reads its answer would otherwise pin
//! the whole body in the server's heap for as long as it keeps the connection open (twenty such
//! clients of a 5 MB answer: 100 MB). As nginx buffers large upstream responses to a temp file, a body
//! over [`SPOOL_AT`] is written to an unlinked temp file and streamed back in [`CHUNK`]-sized reads, so
//! a stalled connection holds at most one chunk plus actix's write buffer.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, SizedStream};
use actix_web::web::{self, Bytes};
use futures_util::Stream;
use smyth_actors::memory::release_freed;

/// Answers larger than this are spooled to disk.
pub const SPOOL_AT: usize = 256 * 1024;

/// What one read of the temp file hands to the connection.
const CHUNK: usize = 64 * 1024;

/// Writes `body` to an unlinked temp file and gives the heap it held back to the system; the body as
/// a stream of the file. On any I/O error the body is handed back unchanged, to be sent from memory.
pub async fn spool(body: Bytes) -> Result<BoxBody, Bytes> {
    let size = body.len() as u64;
    let file = web::block(move || {
        let written = tempfile::tempfile().and_then(|mut file| file.write_all(&body).map(|()| file));
        match written {
            Ok(file) => {
                drop(body);
                release_freed();
                Ok(file)
            }
            Err(err) => {
                tracing::warn!("cannot spool a large answer to a temp file, sending it from memory: {err}");
                Err(body)
            }
        }
    })
    .await
    // The blocking pool is gone only while the server shuts down: nothing will read this answer.
    .map_err(|_| Bytes::new())??;
    Ok(BoxBody::new(SizedStream::new(size, Chunks { file, offset: 0, size })))
}

/// The spooled file, read a chunk at a time as the connection drains. Reads hit the page cache and
/// take microseconds, so they run inline.
struct Chunks {
    file: File,
    offset: u64,
    size: u64,
}

impl Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.offset >= this.size {
            return Poll::Ready(None);
        }
        let mut chunk = vec![0; CHUNK.min((this.size - this.offset) as usize)];
        if let Err(err) = this.file.read_exact_at(&mut chunk, this.offset) {
            return Poll::Ready(Some(Err(err)));
        }
        this.offset += chunk.len() as u64;
        Poll::Ready(Some(Ok(Bytes::from(chunk))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[actix_rt::test]
    async fn a_spooled_body_streams_back_every_byte_in_chunks() {
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let body = spool(Bytes::from(data.clone())).await.expect("spooled");
        assert_eq!(body.size(), actix_web::body::BodySize::Sized(data.len() as u64));
        let back = actix_web::body::to_bytes(body).await.expect("read back");
        assert_eq!(back, data);
    }
}
