//! Who may use a worker's Runtime API: only its own process and that process's descendants. On the
//! bundled runtime's Unix socket the kernel names the caller (SO_PEERCRED): its pid must be in the
//! tree. On TCP, for each new connection the worker finds the socket's other end in `/proc/net/tcp`,
//! and looks for it among the descriptors of its own process tree; anything else is an outsider. Once
//! per connection: a runtime keeps one connection open.

use std::path::Path;

use crate::messages::Peer;

/// Connections already admitted for the current process (the bootstrap keeps one open; a runtime
/// with a connection pool has a few). Cleared when the process changes.
#[derive(Debug, Default)]
pub struct Trusted {
    connections: Vec<u64>,
}

/// More than this many live connections from one runtime is not a runtime: the oldest is forgotten
/// (and checked again should it be used).
const REMEMBERED: usize = 16;

impl Trusted {
    pub fn clear(&mut self) {
        self.connections.clear();
    }

    /// Whether `peer` may speak for the worker whose process is `worker`.
    pub fn admits(&mut self, worker: u32, peer: Peer) -> bool {
        let (connection, port, local_port) = match peer {
            // The bootstrap itself: no /proc read on the hot path.
            Peer::Unix { pid: Some(pid) } => return pid == worker || in_process_tree(worker, pid),
            Peer::Unix { pid: None } => return false,
            Peer::Tcp { connection, port, local_port } => (connection, port, local_port),
        };
        if self.connections.contains(&connection) {
            return true;
        }
        let Some(inode) = socket_inode(port, local_port) else { return false };
        if socket_holder(worker, inode).is_none() {
            return false;
        }
        if self.connections.len() == REMEMBERED {
            self.connections.remove(0);
        }
        self.connections.push(connection);
        true
    }
}

/// The inode of the caller's socket: the `/proc/net/tcp` line whose local port is the caller's and
/// whose remote port is the worker's.
pub(crate) fn socket_inode(port: u16, local_port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    find_inode(&table, port, local_port)
}

/// Parses `/proc/net/tcp`: `sl local_address rem_address st queues tr retrnsmt uid timeout inode …`,
/// addresses as `HEXIP:HEXPORT`.
fn find_inode(table: &str, port: u16, remote_port: u16) -> Option<u64> {
    let port_of = |address: &str| address.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (local, remote) = (fields.get(1)?, fields.get(2)?);
        (port_of(local)? == port && port_of(remote)? == remote_port).then(|| fields.get(9)?.parse().ok())?
    })
}

/// The process of `root`'s tree (`root` itself first) that holds the socket `inode`, if any.
pub(crate) fn socket_holder(root: u32, inode: u64) -> Option<u32> {
    let link = format!("socket:[{inode}]");
    if holds(root, &link) {
        return Some(root);
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != root && in_process_tree(root, *pid))
        .find(|pid| holds(*pid, &link))
}

/// Whether `pid` is `root` or of its tree, as `/proc` tells it now.
pub(crate) fn in_process_tree(root: u32, pid: u32) -> bool {
    in_tree(root, pid, &proc_parent)
}

/// Whether process `pid` has a descriptor that links to `link`.
fn holds(pid: u32, link: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == Path::new(link)))
}

/// Whether `pid` is `root` or descends from it; `parent` reads a process's parent and process group.
/// A descendant that left the group (setsid, setpgid) is still found through its parents.
pub fn in_tree(root: u32, pid: u32, parent: &dyn Fn(u32) -> Option<(u32, u32)>) -> bool {
    let mut current = pid;
    // Bounded: a process tree is never this deep, and a loop in a changing /proc must end.
    for _ in 0..64 {
        if current == root {
            return true;
        }
        match parent(current) {
            Some((_, group)) if group == root => return true,
            Some((ppid, _)) if ppid > 1 => current = ppid,
            _ => return false,
        }
    }
    false
}

/// A process's parent and process group, from `/proc/PID/stat`.
fn proc_parent(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last `)`.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace().skip(1); // state
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, pgrp))
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn the_tree_is_the_process_its_descendants_and_its_group() {
        // pid → (parent, group). 10 is the worker; 11 its child; 12 a grandchild that called setsid;
        // 20 a stranger; 30 in the worker's group though its parent is gone.
        let table = |pid| match pid {
            11 => Some((10, 10)),
            12 => Some((11, 12)),
            20 => Some((5, 20)),
            5 => Some((1, 5)),
            30 => Some((1, 10)),
            _ => None,
        };
        let cases = [(10, true), (11, true), (12, true), (30, true), (20, false), (5, false), (99, false)];
        for (pid, expected) in cases {
            assert_eq!(in_tree(10, pid, &table), expected, "pid {pid}");
        }
    }

    #[test]
    fn proc_net_tcp_lines_are_read_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0\n   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0\n";
        assert_eq!(find_inode(table, 0xC350, 0x1F90), Some(222));
        assert_eq!(find_inode(table, 0x1F90, 0xC350), None);
        assert_eq!(find_inode("garbage\n1: x", 1, 2), None);
    }

    #[test]
    fn a_connection_of_this_process_is_admitted_once_and_strangers_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local_port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", local_port)).unwrap();
        let port = client.local_addr().unwrap().port();
        let me = std::process::id();
        let mut trusted = Trusted::default();
        assert!(trusted.admits(me, Peer::Tcp { connection: 1, port, local_port }));
        // Another process's tree does not hold it (pid 1 is init, never our ancestor's child).
        assert!(!Trusted::default().admits(1, Peer::Tcp { connection: 1, port, local_port }));
        // A port nobody holds.
        assert!(!trusted.admits(me, Peer::Tcp { connection: 2, port: 1, local_port }));
        drop(client);
        // Known connection: admitted without a second look.
        assert!(trusted.admits(me, Peer::Tcp { connection: 1, port, local_port }));
    }

    #[test]
    fn unix_callers_are_judged_by_their_pid() {
        let me = std::process::id();
        let mut trusted = Trusted::default();
        assert!(trusted.admits(me, Peer::Unix { pid: Some(me) }));
        // Our own process is not in pid 1's tree, and a caller without credentials is nobody's.
        assert!(!trusted.admits(1, Peer::Unix { pid: Some(me) }));
        assert!(!trusted.admits(me, Peer::Unix { pid: None }));
    }
}
