//! Child processes: spawn in their own process group (and in the server's containment, see
//! [`crate::containment`]), die with the server, log every line (capped) with the worker's name,
//! report the exit, and get killed by group.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::lines::{self, Lines};
use crate::worker_env::WorkerEnv;

/// Everything needed to start one worker's child.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    /// Shared by a handler's slots until one adds its own keys (`Arc::make_mut`), and itself a
    /// layer over the server's environment that every handler shares.
    pub env: Arc<WorkerEnv>,
    pub cwd: PathBuf,
    /// `--debug`: the child shares the terminal (stdin, output, foreground process group) so a
    /// debugger can prompt; otherwise it gets its own group and its output is logged line by line.
    pub attached: bool,
}

/// How a child ended, as the Runtime API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        match status.code() {
            Some(code) => Exit::Code(code),
            None => Exit::Signal(status.signal().unwrap_or(0)),
        }
    }
}

impl std::fmt::Display for Exit {
    /// AWS's wording: `exit status 3`, `signal: killed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => match Signal::try_from(*sig) {
                Ok(Signal::SIGKILL) => f.write_str("signal: killed"),
                Ok(Signal::SIGSEGV) => f.write_str("signal: segmentation fault"),
                Ok(Signal::SIGTERM) => f.write_str("signal: terminated"),
                Ok(Signal::SIGABRT) => f.write_str("signal: aborted"),
                Ok(other) => write!(f, "signal: {}", other.as_str()),
                Err(_) => write!(f, "signal: {sig}"),
            },
        }
    }
}

/// A started child.
pub struct Spawned {
    pub pid: u32,
    /// What of its output is not handed to `on_line` yet; None when it shares the terminal.
    pub output: Option<Output>,
    /// A pidfd on it: says at the cost of one poll whether it has exited (None on kernels without
    /// pidfd_open).
    pub exit_watch: Option<ExitWatch>,
}

/// A pidfd on a child: readable once it has exited. Opened before its reaper starts, so the pid
/// cannot be reused under it.
pub struct ExitWatch(std::os::fd::OwnedFd);

impl ExitWatch {
    pub(crate) fn open(pid: u32) -> Option<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        // SAFETY: a non-negative result is a descriptor we now own.
        (fd >= 0).then(|| Self(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }))
    }

    /// Whether the child has exited (it may not be reaped yet). One poll, no /proc read.
    pub fn exited(&self) -> bool {
        let mut poll =
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&self.0), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, a zero timeout.
        unsafe { libc::poll(&mut poll, 1, 0) > 0 }
    }
}

/// A second handle on the pipe the child's output goes through, and the pump's mark for bytes it has
/// read but not yet handed on: together they say whether output is still on its way.
pub struct Output {
    pipe: io::PipeReader,
    in_hand: Arc<AtomicBool>,
}

impl Output {
    /// Whether bytes the child wrote have not reached `on_line` yet: unread in the pipe, or read by
    /// the pump and still being cut into lines.
    pub fn pending(&self) -> bool {
        unread_bytes(&self.pipe) > 0 || self.in_hand.load(Ordering::Acquire)
    }
}

/// Spawns the child and two threads: one pumps its output to `on_line` (which logs it), one reaps
/// it and calls `on_exit`. Call this from a thread that lives as long as the server: the death signal
/// is tied to the forking thread.
pub fn spawn(
    spec: &SpawnSpec,
    name: &str,
    on_line: impl Fn(&str) + Send + 'static,
    on_exit: impl FnOnce(u32, Exit) + Send + 'static,
) -> io::Result<Spawned> {
    spawn_with(spec, name, on_line, on_exit, |_| {})
}

/// [`spawn`], with `prepare` given the command last (to hand the child a descriptor, say).
pub fn spawn_with(
    spec: &SpawnSpec,
    name: &str,
    on_line: impl Fn(&str) + Send + 'static,
    on_exit: impl FnOnce(u32, Exit) + Send + 'static,
    prepare: impl FnOnce(&mut Command),
) -> io::Result<Spawned> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(spec.env.iter()).current_dir(&spec.cwd);
    let reader = if spec.attached {
        // Its own process group would get SIGTTIN on reading the terminal.
        command.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        None
    } else {
        let (reader, writer) = io::pipe()?;
        command.stdin(Stdio::null()).stdout(writer.try_clone()?).stderr(writer).process_group(0);
        Some(reader)
    };
    let server_pid = std::process::id();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The server may have died before prctl took effect.
            if libc::getppid() as u32 != server_pid {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    prepare(&mut command);
    let mut child = crate::containment::spawn_worker(|| command.spawn())?;
    drop(command); // closes our copies of the pipe's write end, so the pump sees EOF
    let pid = child.id();
    let exit_watch = ExitWatch::open(pid);
    let output = match reader {
        Some(reader) => Some(pump_output(reader, name, on_line)?),
        None => None,
    };
    std::thread::Builder::new().name(format!("wait {name}")).spawn(move || {
        let exit = child.wait().map(Exit::from).unwrap_or(Exit::Code(-1));
        crate::containment::worker_reaped(pid);
        on_exit(pid, exit);
    })?;
    Ok(Spawned { pid, output, exit_watch })
}

/// Starts the thread that hands what arrives on `reader` to `on_line`, line by line.
pub(crate) fn pump_output(
    reader: io::PipeReader,
    name: &str,
    on_line: impl Fn(&str) + Send + 'static,
) -> io::Result<Output> {
    let in_hand = Arc::new(AtomicBool::new(false));
    let output = Output { pipe: reader.try_clone()?, in_hand: in_hand.clone() };
    std::thread::Builder::new()
        .name(format!("log {name}"))
        .spawn(move || pump_lines(reader, &in_hand, on_line))?;
    Ok(output)
}

/// Bytes the child wrote that the pump has not read yet.
fn unread_bytes(pipe: &io::PipeReader) -> usize {
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer.
    let ok = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(pipe), libc::FIONREAD, &mut unread) } == 0;
    if ok {
        unread.max(0) as usize
    } else {
        0
    }
}

/// Hands the child's output to `on_line` line by line, each capped at [`lines::MAX_LINE`], reading in
/// bounded pieces: a huge line is never held whole.
fn pump_lines(mut reader: io::PipeReader, in_hand: &AtomicBool, on_line: impl Fn(&str)) {
    let mut lines = Lines::new(lines::MAX_LINE);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut emit = |line: &str, cut: bool| {
        on_line(line);
        if cut {
            // Formatting a cut line took a few of its size: give them back.
            crate::memory::release_freed();
        }
    };
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(got) => {
                in_hand.store(true, Ordering::Release);
                lines.feed(&chunk[..got], &mut emit);
                in_hand.store(false, Ordering::Release);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    lines.finish(&mut emit);
}

/// Whether the process is beyond saving: gone, a zombie, or with SIGKILL already pending (which
/// nothing can catch). Reads `/proc/PID/stat` (cheaper than `/proc/PID/status`).
pub fn doomed(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| stat_says_doomed(&stat))
}

/// `/proc/PID/stat` says the process is dying: its state (field 3) is zombie or dead, or SIGKILL is
/// in its pending signals (field 31, decimal; a fatal SIGKILL is added to every thread's set).
fn stat_says_doomed(stat: &str) -> bool {
    // Fields after the command name, which is in parentheses and may hold spaces or parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else { return true };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("X");
    let pending = fields.nth(27).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    state.starts_with(['Z', 'X', 'x']) || pending & (1 << (libc::SIGKILL - 1)) != 0
}

/// Kills the child's whole process group (just the child when it shares the terminal's group, in
/// `--debug`). A process that is already gone counts as success.
pub fn kill_group(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(pid as i32);
    let result = match killpg(pid, signal) {
        Err(nix::errno::Errno::ESRCH) => nix::sys::signal::kill(pid, signal),
        other => other,
    };
    match result {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(err) => tracing::warn!(%pid, %err, "could not signal the worker"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_wording_matches_aws() {
        assert_eq!(Exit::Code(3).to_string(), "exit status 3");
        assert_eq!(Exit::Signal(9).to_string(), "signal: killed");
        assert_eq!(Exit::Signal(11).to_string(), "signal: segmentation fault");
    }

    #[test]
    fn spawned_child_is_reaped_and_reports_its_exit() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spec = SpawnSpec {
            argv: vec!["sh".into(), "-c".into(), "echo hello; exit 3".into()],
            env: Default::default(),
            cwd: std::env::temp_dir(),
            attached: false,
        };
        spawn(&spec, "test:0", |_| {}, move |_, exit| tx.send(exit).unwrap()).unwrap();
        let exit = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(exit, Exit::Code(3));
    }

    #[test]
    fn stat_lines_that_say_doomed() {
        // pid (comm) state ppid … field 31 (signal) is the 28th after the state.
        let line = |comm: &str, state: &str, pending: u64| {
            let middle: Vec<String> = (4..31).map(|n| n.to_string()).collect();
            format!("42 ({comm}) {state} {} {pending} 0 0 0\n", middle.join(" "))
        };
        let kill = 1 << (libc::SIGKILL - 1);
        let cases = [
            (line("python", "S", 0), false),
            (line("python", "R", 1 << 1), false),
            (line("python", "S", kill), true),
            (line("python", "Z", 0), true),
            (line("python", "X", 0), true),
            (line("a) S (b", "S", 0), false),
            (line("a) Z (b", "S", kill | 2), true),
            ("garbage".to_string(), true),
        ];
        for (stat, expected) in cases {
            assert_eq!(stat_says_doomed(&stat), expected, "{stat}");
        }
    }

    #[test]
    fn a_killed_unreaped_child_is_doomed() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!doomed(child.id()));
        let watch = ExitWatch::open(child.id()).expect("pidfd_open");
        assert!(!watch.exited());
        child.kill().unwrap();
        let start = std::time::Instant::now();
        while !doomed(child.id()) || !watch.exited() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "a killed child is doomed");
            std::thread::yield_now();
        }
        child.wait().unwrap();
    }

    #[test]
    fn a_live_process_is_not_doomed_and_a_gone_one_is() {
        assert!(!doomed(std::process::id()));
        assert!(doomed(u32::MAX - 1));
    }

    #[test]
    fn every_line_reaches_the_callback_and_unread_output_is_measured() {
        let (lines, got) = crossbeam_channel::unbounded();
        let (exits, exited) = crossbeam_channel::bounded(1);
        let spec = SpawnSpec {
            argv: vec!["sh".into(), "-c".into(), "echo one; echo two >&2; printf 'no newline'".into()],
            env: Default::default(),
            cwd: std::env::temp_dir(),
            attached: false,
        };
        let spawned = spawn(
            &spec,
            "test:2",
            move |line| lines.send(line.to_string()).unwrap(),
            move |_, exit| exits.send(exit).unwrap(),
        )
        .unwrap();
        assert_eq!(exited.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), Exit::Code(0));
        let seen: Vec<String> =
            (0..3).map(|_| got.recv_timeout(std::time::Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(seen, ["one", "two", "no newline"]);
        assert!(!spawned.output.as_ref().unwrap().pending(), "the pump handed on everything");
    }

    #[test]
    fn kill_group_reports_the_signal() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spec = SpawnSpec {
            argv: vec!["sleep".into(), "30".into()],
            env: Arc::new(WorkerEnv::from(std::collections::BTreeMap::from([(
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            )]))),
            cwd: std::env::temp_dir(),
            attached: false,
        };
        let pid = spawn(&spec, "test:1", |_| {}, move |_, exit| tx.send(exit).unwrap()).unwrap().pid;
        kill_group(pid, Signal::SIGKILL);
        let exit = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(exit, Exit::Signal(9));
        kill_group(pid, Signal::SIGKILL); // already gone: no error
    }
}
