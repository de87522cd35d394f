//! The fork server's client: starts a Python process that has done some init (`forkserver.py`,
//! embedded here and written beside the bundled runtime), then asks it over a SOCK_SEQPACKET socket
//! for children, each with its own environment variables and output pipe. The server is their parent:
//! it reports each child's pid and, once it has reaped it, its exit status, which reach the caller as a
//! spawned process's would. SnapStart's template ([`template`]) is one use; the zygote ([`zygote`]),
//! with nothing of the user's imported, that ordinary cold starts fork from, is the other.

mod protocol;
pub mod template;
pub mod zygote;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};

use crate::process::{self, Exit, SpawnSpec};
use protocol::Message;

/// The fork server's Python source.
pub const SOURCE: &str = include_str!("forkserver.py");
/// Its module name is this file's stem: the bundled runtime imports it from its own folder.
pub const MODULE_FILE: &str = "smyth_forkserver.py";
/// The variable that tells the runtime its control socket's descriptor (and that it is a template).
pub const FD_VAR: &str = "SMYTH_FORKSERVER_FD";
/// Where the control socket is in the server process.
const CHILD_FD: i32 = 3;
/// How long the reader waits, after the socket closed, for the server's exit status.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Why a fork could not be had: what the server reported (its init failed), or how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_type: String,
    pub message: String,
}

/// Told the child's pid, or why there is none.
pub type Forked = Box<dyn FnOnce(Result<u32, Failure>) + Send>;
/// Told how a child ended.
pub type Exited = Box<dyn FnOnce(u32, Exit) + Send>;

/// One environment asked for.
pub struct Request {
    pub env: BTreeMap<String, String>,
    /// Becomes the child's stdout and stderr.
    pub output: OwnedFd,
    pub forked: Forked,
    pub exited: Exited,
}

enum Phase {
    /// Its init is running: requests wait.
    Starting,
    Ready,
    Ended(Failure),
}

struct Shared {
    phase: Phase,
    waiting: Vec<Request>,
    in_flight: HashMap<u64, (Forked, Exited)>,
    children: HashMap<u32, Exited>,
    next_id: u64,
    /// The init error the server reported before it exited.
    reported: Option<Failure>,
}

/// A running fork server. Dropping it kills the server, and with it (PR_SET_PDEATHSIG) its children.
pub struct ForkServer {
    pub pid: u32,
    socket: Arc<OwnedFd>,
    shared: Arc<Mutex<Shared>>,
}

/// A running fork server that smyth keeps (a template, a zygote), and whether smyth is ending it on
/// purpose: its `on_end` reads the flag, and such an exit is no failure.
struct Live {
    server: ForkServer,
    retired: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.retired.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl ForkServer {
    /// Starts `spec` with the control socket at descriptor 3 (named in [`FD_VAR`]). `on_ready` gets
    /// the server's `ready` info once its init is done, within `init_limit` or it is killed; `on_end`
    /// its exit.
    pub fn start(
        spec: &SpawnSpec,
        name: &str,
        init_limit: Duration,
        on_line: impl Fn(&str) + Send + 'static,
        on_ready: impl FnOnce(serde_json::Value) + Send + 'static,
        on_end: impl FnOnce(Exit, &Failure) + Send + 'static,
    ) -> io::Result<Self> {
        let (ours, theirs) =
            socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        let mut spec = spec.clone();
        Arc::make_mut(&mut spec.env).insert(FD_VAR.into(), CHILD_FD.to_string());
        let (exit_tx, exit_rx) = crossbeam_channel::bounded(1);
        let raw = theirs.as_raw_fd();
        let spawned = process::spawn_with(
            &spec,
            name,
            on_line,
            move |_, exit| {
                let _ = exit_tx.send(exit);
            },
            // SAFETY: dup2 and fcntl are async-signal-safe.
            |command| unsafe {
                command.pre_exec(move || {
                    let done = if raw == CHILD_FD {
                        libc::fcntl(raw, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(raw, CHILD_FD)
                    };
                    if done < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            },
        )?;
        drop(theirs);
        let shared = Arc::new(Mutex::new(Shared {
            phase: Phase::Starting,
            waiting: Vec::new(),
            in_flight: HashMap::new(),
            children: HashMap::new(),
            next_id: 0,
            reported: None,
        }));
        let socket = Arc::new(ours);
        let reader = Reader { socket: socket.clone(), shared: shared.clone(), pid: spawned.pid, init_limit };
        std::thread::Builder::new().name(format!("fork {name}")).spawn(move || {
            reader.run(on_ready);
            let exit = exit_rx.recv_timeout(EXIT_WAIT).unwrap_or(Exit::Signal(libc::SIGKILL));
            let failure = reader.end(exit);
            on_end(exit, &failure);
        })?;
        Ok(Self { pid: spawned.pid, socket, shared })
    }

    /// Asks for a child: now if the server is ready, once it is if its init is running; at once with
    /// the failure if it has ended.
    pub fn fork(&self, request: Request) {
        let mut shared = lock(&self.shared);
        match &shared.phase {
            Phase::Starting => shared.waiting.push(request),
            Phase::Ready => send(&self.socket, &mut shared, request),
            Phase::Ended(failure) => {
                let failure = failure.clone();
                drop(shared);
                (request.forked)(Err(failure));
            }
        }
    }

    /// The requests still waiting for its init, taken back (to hand to its replacement).
    pub fn take_waiting(&self) -> Vec<Request> {
        std::mem::take(&mut lock(&self.shared).waiting)
    }

    /// Whether the server's init is done: a fork asked for now is made at once.
    pub fn ready(&self) -> bool {
        matches!(lock(&self.shared).phase, Phase::Ready)
    }

    /// Whether the server has ended (a new one is needed).
    pub fn ended(&self) -> bool {
        matches!(lock(&self.shared).phase, Phase::Ended(_))
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        process::kill_group(self.pid, Signal::SIGKILL);
        let _ = socket::shutdown(self.socket.as_raw_fd(), socket::Shutdown::Both);
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends one fork request, its output descriptor passed along.
fn send(socket: &OwnedFd, shared: &mut Shared, request: Request) {
    let id = shared.next_id;
    shared.next_id += 1;
    let message = protocol::fork_request(id, &request.env);
    let fds = [request.output.as_raw_fd()];
    let sent = socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(&message)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
    match sent {
        Ok(_) => {
            shared.in_flight.insert(id, (request.forked, request.exited));
        }
        Err(err) => (request.forked)(Err(Failure {
            error_type: "Runtime.ExitError".into(),
            message: format!("the fork server did not take the request: {err}"),
        })),
    }
    // Our copy of the output descriptor closes here: the child holds the pipe's write end.
}

/// The reader thread's side: every message from the server.
struct Reader {
    socket: Arc<OwnedFd>,
    shared: Arc<Mutex<Shared>>,
    pid: u32,
    init_limit: Duration,
}

impl Reader {
    fn run(&self, on_ready: impl FnOnce(serde_json::Value)) {
        if !self.first_message_within_limit() {
            let seconds = self.init_limit.as_secs_f64();
            let message = format!("Init timed out after {seconds:.2} seconds");
            lock(&self.shared).reported = Some(Failure { error_type: "Sandbox.Timedout".into(), message });
            process::kill_group(self.pid, Signal::SIGKILL);
        }
        let mut on_ready = Some(on_ready);
        let mut buf = vec![0u8; protocol::MAX_MESSAGE];
        loop {
            let got = match socket::recv(self.socket.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return,
                Ok(got) => got,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let Some(message) = Message::parse(&buf[..got]) else {
                tracing::warn!("the fork server sent a message smyth does not understand");
                continue;
            };
            let mut shared = lock(&self.shared);
            match message {
                Message::Ready(info) => {
                    shared.phase = Phase::Ready;
                    for request in std::mem::take(&mut shared.waiting) {
                        send(&self.socket, &mut shared, request);
                    }
                    drop(shared);
                    if let Some(on_ready) = on_ready.take() {
                        on_ready(info);
                    }
                }
                Message::InitError(failure) => shared.reported = Some(failure),
                Message::Forked { id, pid } => {
                    if let Some((forked, exited)) = shared.in_flight.remove(&id) {
                        shared.children.insert(pid, exited);
                        drop(shared);
                        forked(Ok(pid));
                    }
                    // Only now may the child call the Runtime API: its worker knows its pid.
                    let release = protocol::release(pid);
                    let _ = socket::send(self.socket.as_raw_fd(), &release, MsgFlags::MSG_NOSIGNAL);
                }
                Message::ForkFailed { id, error } => {
                    if let Some((forked, _)) = shared.in_flight.remove(&id) {
                        drop(shared);
                        let message = format!("the fork server could not fork: {error}");
                        forked(Err(Failure { error_type: "Runtime.ExitError".into(), message }));
                    }
                }
                Message::Exited { pid, exit } => {
                    if let Some(exited) = shared.children.remove(&pid) {
                        drop(shared);
                        exited(pid, exit);
                    }
                }
            }
        }
    }

    /// Whether the server's first message (the end of its init) came within the init limit.
    fn first_message_within_limit(&self) -> bool {
        let mut poll = libc::pollfd { fd: self.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let limit = libc::c_int::try_from(self.init_limit.as_millis()).unwrap_or(libc::c_int::MAX);
        loop {
            // SAFETY: one pollfd, a bounded timeout.
            match unsafe { libc::poll(&mut poll, 1, limit) } {
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                0 => return false,
                _ => return true,
            }
        }
    }

    /// The server is gone: what waited fails with its reported error (else its exit), and its
    /// children, killed by their death signal, are reported killed.
    fn end(&self, exit: Exit) -> Failure {
        let mut shared = lock(&self.shared);
        let failure = shared.reported.take().unwrap_or_else(|| Failure {
            error_type: "Runtime.ExitError".into(),
            message: format!("Runtime exited with error: {exit}"),
        });
        shared.phase = Phase::Ended(failure.clone());
        let waiting = std::mem::take(&mut shared.waiting);
        let in_flight: Vec<_> = shared.in_flight.drain().map(|(_, pair)| pair).collect();
        let children: Vec<_> = shared.children.drain().collect();
        drop(shared);
        for request in waiting {
            (request.forked)(Err(failure.clone()));
        }
        for (forked, _) in in_flight {
            forked(Err(failure.clone()));
        }
        for (pid, exited) in children {
            exited(pid, Exit::Signal(libc::SIGKILL));
        }
        failure
    }
}
