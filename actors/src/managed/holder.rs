//! Which process of an environment made a Runtime API call. An environment has N processes on one
//! port, so the environment must know which of them holds an invocation (to fail it when that process
//! dies) and must refuse callers outside its process tree. The caller's socket is found in
//! `/proc/net/tcp` by its two ports, then among the descriptors of the tree's processes. On the bundled
//! runtime's Unix socket the kernel names the caller (SO_PEERCRED): it must be of the tree.

use crate::messages::Peer;
use crate::worker::peer::{in_process_tree, socket_holder, socket_inode};

/// The pid in `root`'s process tree that holds the caller's end of `peer`, if any: the worker's
/// peer check, asked which process rather than whether.
pub fn holder(root: u32, peer: Peer) -> Option<u32> {
    match peer {
        Peer::Unix { pid } => pid.filter(|pid| in_process_tree(root, *pid)),
        Peer::Tcp { port, local_port, .. } => socket_holder(root, socket_inode(port, local_port)?),
    }
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
