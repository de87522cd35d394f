//! Child processes: spawn in their own process group (and in the server's containment, see
//! [`crate::containment`]), die with the server, log every line (capped) with the worker's name,
//! report the exit, and get killed by group.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::lines::{self, Lines};

/// Everything needed to start one worker's child.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
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
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(&spec.env).current_dir(&spec.cwd);
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
    let mut child = crate::containment::spawn_worker(|| command.spawn())?;
    drop(command); // closes our copies of the pipe's write end, so the pump sees EOF
    let pid = child.id();
    let in_hand = Arc::new(AtomicBool::new(false));
    let output = match &reader {
        Some(reader) => Some(Output { pipe: reader.try_clone()?, in_hand: in_hand.clone() }),
        None => None,
    };
    if let Some(reader) = reader {
        std::thread::Builder::new()
            .name(format!("log {name}"))
            .spawn(move || pump_lines(reader, &in_hand, on_line))?;
    }
    std::thread::Builder::new().name(format!("wait {name}")).spawn(move || {
        let exit = child.wait().map(Exit::from).unwrap_or(Exit::Code(-1));
        crate::containment::worker_reaped(pid);
        on_exit(pid, exit);
    })?;
    Ok(Spawned { pid, output })
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
/// nothing can catch). Reads `/proc/PID/status`.
pub fn doomed(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return true };
    let kill = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|line| match line.split_once(':') {
        Some(("State", state)) => state.trim_start().starts_with(['Z', 'X']),
        Some(("SigPnd" | "ShdPnd", mask)) => {
            u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & kill != 0)
        }
        _ => false,
    })
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
            env: BTreeMap::new(),
            cwd: std::env::temp_dir(),
            attached: false,
        };
        spawn(&spec, "test:0", |_| {}, move |_, exit| tx.send(exit).unwrap()).unwrap();
        let exit = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(exit, Exit::Code(3));
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
            env: BTreeMap::new(),
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
            env: BTreeMap::from([("PATH".to_string(), std::env::var("PATH").unwrap_or_default())]),
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
