//! Which process of an environment made a Runtime API call. An environment has N processes on one
//! port, so the environment must know which of them holds an invocation (to fail it when that process
//! dies) and must refuse callers outside its process tree. The caller's socket is found in
//! `/proc/net/tcp` by its two ports, then among the descriptors of the tree's processes. On the bundled
//! runtime's Unix socket the kernel names the caller (SO_PEERCRED): it must be of the tree.

use std::path::Path;

use crate::messages::Peer;

/// The pid in `root`'s process tree that holds the caller's end of `peer`, if any.
pub fn holder(root: u32, peer: Peer) -> Option<u32> {
    let (port, local_port) = match peer {
        Peer::Unix { pid } => return pid.filter(|pid| descends(root, *pid)),
        Peer::Tcp { port, local_port, .. } => (port, local_port),
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = find_inode(&table, port, local_port)?;
    let link = format!("socket:[{inode}]");
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut holders = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| holds(*pid, &link));
    holders.find(|pid| descends(root, *pid))
}

/// `/proc/net/tcp`: `sl local_address rem_address st … uid timeout inode`, addresses `HEXIP:HEXPORT`.
fn find_inode(table: &str, port: u16, remote_port: u16) -> Option<u64> {
    let port_of = |address: &str| address.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (local, remote) = (fields.get(1)?, fields.get(2)?);
        (port_of(local)? == port && port_of(remote)? == remote_port).then(|| fields.get(9)?.parse().ok())?
    })
}

fn holds(pid: u32, link: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(Result::ok).any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == Path::new(link)))
}

/// Whether `pid` is `root` or one of its descendants, through `/proc/PID/stat`'s parent field.
fn descends(root: u32, pid: u32) -> bool {
    let mut current = pid;
    for _ in 0..64 {
        if current == root {
            return true;
        }
        match parent(current) {
            Some(ppid) if ppid > 1 => current = ppid,
            _ => return false,
        }
    }
    false
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn the_holder_is_found_in_its_own_tree_only() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local_port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", local_port)).unwrap();
        let port = client.local_addr().unwrap().port();
        let peer = Peer::Tcp { connection: 1, port, local_port };
        let me = std::process::id();
        assert_eq!(holder(me, peer), Some(me));
        assert_eq!(holder(1, peer).filter(|p| *p != me), None, "pid 1's tree does not count us");
        assert_eq!(
            holder(me, Peer::Tcp { connection: 1, port: 1, local_port }),
            None,
            "nobody holds that port"
        );
    }

    #[test]
    fn a_unix_caller_is_its_own_pid_when_of_the_tree() {
        let me = std::process::id();
        assert_eq!(holder(me, Peer::Unix { pid: Some(me) }), Some(me));
        assert_eq!(holder(1, Peer::Unix { pid: Some(me) }).filter(|p| *p != me), None);
        assert_eq!(holder(me, Peer::Unix { pid: None }), None);
    }
}
