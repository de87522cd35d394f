//! Reading a file the config names without trusting it: it must be a regular file no bigger than a
//! limit, checked with metadata before a byte is read, and the read itself stops at the limit, so
//! `/dev/zero`, a FIFO or a file that grows cannot hang or exhaust the server.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// The text of `path`, a regular UTF-8 file of at most `limit` bytes; the error says which rule failed.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<String> {
    check(&std::fs::metadata(path)?, limit)?;
    // Non-blocking, so that a FIFO swapped in after the check cannot block the open.
    let file = OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(path)?;
    check(&file.metadata()?, limit)?;
    read_at_most(file, limit)
}

fn check(meta: &Metadata, limit: u64) -> io::Result<()> {
    if !meta.is_file() {
        let kind = kind(meta);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a regular file ({kind})")));
    }
    if meta.len() > limit {
        return Err(too_big(limit, &format!("is {} bytes", meta.len())));
    }
    Ok(())
}

fn read_at_most(file: File, limit: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit, "grew while being read"));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_big(limit: u64, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, format!("{what}; at most {limit} bytes are read"))
}

fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}
