//! Containment: no process a worker starts outlives the server, whatever it does to its process group
//! or session (`setsid()`, a new group, a double-forked daemon).
//!
//! With a writable cgroup v2 (Linux), the server makes a group of its own, `smyth-<pid>`, and moves
//! itself into it at start-up, so every worker and all its descendants are born in it. (Moving each
//! worker in before its exec would cost a cold start about 10 ms: a migration waits for an RCU grace
//! period unless another happened just before.) `cgroup.kill` ends the whole tree at once: at a clean
//! stop the server leaves the group and kills it; when the server dies by any means, SIGKILL included, a
//! watchdog process does it. The watchdog, started before the server enters the group, holds the read
//! end of a pipe whose write end only the server holds: end of file means the server is gone.
//!
//! Without one, the server becomes a child subreaper: orphans become its children, and it kills them
//! at a clean stop. A SIGKILL of the server cannot be covered then, and one WARN says so.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Set (to anything but empty or `0`) to act as if no cgroup v2 were available: tests the fallback.
pub const DISABLE_VAR: &str = "SMYTH_DISABLE_CGROUP";

/// Pids of the workers [`crate::process::spawn`] started, which their own wait threads reap: the
/// orphan reaper leaves them alone.
static WORKERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Fallback: how often adopted orphans that exited are reaped.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// After `cgroup.kill`, how many 10 ms polls the group gets to empty before it is removed anyway.
const EMPTY_POLLS: u32 = 1000;

/// Starts a worker through `spawn` and records it, atomically with respect to the orphan reaper, which
/// must never reap a child that a wait thread waits for.
pub(crate) fn spawn_worker(spawn: impl FnOnce() -> io::Result<Child>) -> io::Result<Child> {
    let mut workers = WORKERS.lock().unwrap_or_else(PoisonError::into_inner);
    let child = spawn()?;
    workers.push(child.id());
    Ok(child)
}

/// The worker's wait thread has reaped it.
pub(crate) fn worker_reaped(pid: u32) {
    WORKERS.lock().unwrap_or_else(PoisonError::into_inner).retain(|worker| *worker != pid);
}

/// How worker processes are contained. Dropping it (at a clean stop, once the workers have stopped)
/// kills whatever they left behind.
pub struct Containment {
    mechanism: Mechanism,
}

enum Mechanism {
    /// Held for its `Drop`, which kills and removes the group.
    Cgroup { group: Group },
    /// Dropping the sender stops the thread that reaps adopted orphans.
    Subreaper { reaper: Option<crossbeam_channel::Sender<()>>, subreaper: bool, reason: String },
}

/// Sets up containment for this server process; call once, before any worker starts. `smyth run`
/// calls it first thing, before the config is read: the watchdog is a fork, and keeps a copy of
/// whatever heap the server has by then. [`Containment::report`] logs the outcome.
pub fn contain() -> Containment {
    let mechanism = match cgroup() {
        Ok(group) => Mechanism::Cgroup { group },
        Err(reason) => {
            // SAFETY: prctl with integer arguments only.
            let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
            Mechanism::Subreaper { reaper: subreaper.then(start_reaper).flatten(), subreaper, reason }
        }
    };
    Containment { mechanism }
}

impl Containment {
    /// Logs how workers are contained, once logging is set up.
    pub fn report(&self) {
        match &self.mechanism {
            Mechanism::Cgroup { group } => tracing::info!(
                cgroup = %group.dir.display(),
                watchdog = group.watchdog.as_ref().map_or(0, |w| w.pid),
                "worker processes are contained in a cgroup v2 group"
            ),
            Mechanism::Subreaper { subreaper, reason, .. } => {
                let stop =
                    if *subreaper { "" } else { "; even a clean stop may leave some (no child subreaper)" };
                tracing::warn!(
                    "no cgroup v2 to contain workers in ({reason}): processes a handler starts outside its \
                     process group (setsid, a double fork) are killed when smyth stops on SIGTERM or Ctrl-C, \
                     but may survive a SIGKILL of smyth{stop}"
                );
            }
        }
    }
}

impl Drop for Containment {
    fn drop(&mut self) {
        if let Mechanism::Subreaper { reaper, .. } = &mut self.mechanism {
            reaper.take();
            kill_adopted_children();
        }
    }
}

/// The server's cgroup: its directory, the paths the cleanup needs, the way home, and the watchdog.
struct Group {
    dir: PathBuf,
    paths: Paths,
    /// `cgroup.procs` of the group the server came from, open for writing: it goes back there before
    /// it kills its own.
    home: OwnedFd,
    watchdog: Option<Watchdog>,
}

/// Paths as C strings, made before any fork: the cleanup may run where nothing can be allocated.
struct Paths {
    dir: CString,
    kill: CString,
    events: CString,
}

impl Paths {
    fn new(dir: &Path) -> io::Result<Paths> {
        let c = |path: &Path| CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other);
        Ok(Paths { dir: c(dir)?, kill: c(&dir.join("cgroup.kill"))?, events: c(&dir.join("cgroup.events"))? })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Err(err) = enter(self.home.as_raw_fd()) {
            // Still inside: the watchdog kills the group once this process has exited. Its pipe must
            // stay open until then, or it would kill this process now.
            tracing::warn!(cgroup = %self.dir.display(), %err, "cannot leave the workers' cgroup");
            std::mem::forget(self.watchdog.take());
            return;
        }
        // SAFETY: plain system calls on paths owned by self.
        if !unsafe { kill_and_remove(&self.paths) } {
            tracing::warn!(cgroup = %self.dir.display(), "could not remove the workers' cgroup");
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.dismiss();
        }
    }
}

fn cgroup() -> Result<Group, String> {
    if disabled(std::env::var_os(DISABLE_VAR).as_deref()) {
        return Err(format!("{DISABLE_VAR} is set"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|err| err.to_string())?;
    let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own_cgroup(&own).ok_or("this process has no cgroup v2 group")?;
    let home = mount.join(own.trim_start_matches('/'));
    let name = format!("smyth-{}", std::process::id());
    let mut failures = Vec::new();
    for parent in parents(&mount, Some(own)) {
        match create(&parent.join(&name), &home) {
            Ok(group) => return Ok(group),
            Err(err) => failures.push(format!("{}: {err}", parent.display())),
        }
    }
    Err(failures.join("; "))
}

/// Makes the group, starts its watchdog, and moves this process in; undoes it all on failure. `home`
/// is the group this process is in now.
fn create(dir: &Path, home: &Path) -> io::Result<Group> {
    match std::fs::create_dir(dir) {
        // Left by a dead process that had our pid: take it over.
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
        _ => {}
    }
    let setup = || {
        if !dir.join("cgroup.kill").exists() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no cgroup.kill (needs Linux 5.14)"));
        }
        let open = |path: PathBuf| std::fs::OpenOptions::new().write(true).open(path).map(OwnedFd::from);
        let procs = open(dir.join("cgroup.procs"))?;
        let home = open(home.join("cgroup.procs"))?;
        let paths = Paths::new(dir)?;
        // Outside the group, so that its own `cgroup.kill` spares it.
        let watchdog = Watchdog::start(&paths)?;
        if let Err(err) = enter(procs.as_raw_fd()) {
            watchdog.dismiss();
            return Err(err);
        }
        Ok(Group { dir: dir.to_path_buf(), paths, home, watchdog: Some(watchdog) })
    };
    setup().inspect_err(|_| {
        let _ = std::fs::remove_dir(dir);
    })
}

/// Moves this whole process (every thread) into the group whose `cgroup.procs` is open as `procs`.
fn enter(procs: RawFd) -> io::Result<()> {
    // SAFETY: writes one byte from a static buffer; "0" means the writing process.
    match unsafe { libc::write(procs, b"0".as_ptr().cast(), 1) } {
        1 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Waits for a child of ours; its exit code (None if it was killed or already reaped).
fn reap(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int through the pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, 0) };
        if got == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if got < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// A forked child (it execs nothing) that cleans the group up once the server is gone.
struct Watchdog {
    pid: libc::pid_t,
    /// The write end of the pipe: the server's death closes it.
    pipe: OwnedFd,
}

impl Watchdog {
    fn start(paths: &Paths) -> io::Result<Watchdog> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array. Close-on-exec: workers must not hold the write end.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds are fresh and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child runs `watch`, which makes only async-signal-safe calls and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { watch(read.as_raw_fd(), paths) },
            pid => Ok(Watchdog { pid, pipe: write }),
        }
    }

    /// A clean stop: the server cleaned up itself; closing the pipe lets the watchdog exit.
    fn dismiss(self) {
        drop(self.pipe);
        reap(self.pid);
    }
}

/// The watchdog's whole life. Only async-signal-safe calls: it was forked from a threaded process.
unsafe fn watch(read: RawFd, paths: &Paths) -> ! {
    // Hold nothing of the server's but the pipe (not its listening sockets, not the write end).
    close_fds_except(read);
    // Out of the terminal's foreground group, deaf to the signals that stop the server: it must
    // outlive the server to do its job.
    libc::setpgid(0, 0);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE, libc::SIGTSTP] {
        libc::signal(signal, libc::SIG_IGN);
    }
    let mut byte = 0u8;
    loop {
        let got = libc::read(read, (&mut byte as *mut u8).cast(), 1);
        if got == 0 || (got < 0 && *libc::__errno_location() != libc::EINTR) {
            break;
        }
    }
    kill_and_remove(paths);
    libc::_exit(0)
}

/// Closes every fd from 3 up but `keep`. Async-signal-safe.
unsafe fn close_fds_except(keep: RawFd) {
    let keep = keep as libc::c_uint;
    if keep > 3 {
        libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, keep - 1, 0 as libc::c_uint);
    }
    libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0 as libc::c_uint);
}

/// Kills every process in the group, waits (bounded) until it is empty, and removes it; whether it is
/// gone. Async-signal-safe: the watchdog runs it too.
unsafe fn kill_and_remove(paths: &Paths) -> bool {
    let kill = libc::open(paths.kill.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if kill < 0 {
        return false; // already removed
    }
    libc::write(kill, b"1".as_ptr().cast(), 1);
    libc::close(kill);
    for _ in 0..EMPTY_POLLS {
        if !read_populated(&paths.events) {
            break;
        }
        let pause = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
        libc::nanosleep(&pause, std::ptr::null_mut());
    }
    libc::rmdir(paths.dir.as_ptr()) == 0
}

/// Whether `cgroup.events` says a process is still in the group. Async-signal-safe.
unsafe fn read_populated(events: &CString) -> bool {
    let fd = libc::open(events.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 256];
    let got = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
    libc::close(fd);
    got > 0 && populated(&buf[..got as usize])
}

/// Fallback: a thread that reaps, every [`REAP_EVERY`], the adopted orphans that have exited (they
/// would stay zombies of the server all day); it ends when the sender is dropped.
fn start_reaper() -> Option<crossbeam_channel::Sender<()>> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let reaper = move || {
        while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(REAP_EVERY) {
            let workers = WORKERS.lock().unwrap_or_else(PoisonError::into_inner);
            for pid in children_of(std::process::id()).into_iter().filter(|pid| !workers.contains(pid)) {
                // SAFETY: WNOHANG: reaps it only if it has exited; a null status is allowed.
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    };
    std::thread::Builder::new().name("reap orphans".into()).spawn(reaper).ok()?;
    Some(stop)
}

/// Fallback at a clean stop: kills the processes adopted as subreaper (and what they leave in turn).
fn kill_adopted_children() {
    let me = std::process::id();
    for _ in 0..50 {
        let children = children_of(me);
        if children.is_empty() {
            return;
        }
        for pid in &children {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::SIGKILL);
        }
        for pid in children {
            reap(pid as libc::pid_t);
        }
    }
    tracing::warn!("some processes started by workers could not be stopped");
}

/// Every process whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| parent_pid(&stat))
                == Some(parent)
        })
        .collect()
}

/// The parent pid in a `/proc/PID/stat` line (the field after the state, after the command in parens).
fn parent_pid(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the variable asks to go without a cgroup.
fn disabled(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The mount point of the cgroup2 file system, from `/proc/self/mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        (rest.split_whitespace().next()? == "cgroup2").then(|| unescape(fields.split_whitespace().nth(4)?))?
    })
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> Option<PathBuf> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

/// The server's own cgroup v2 path (`0::/path` in `/proc/self/cgroup`).
fn own_cgroup(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| line.strip_prefix("0::"))
}

/// Where the server's group may go: under its own group, else at the mount's root.
fn parents(mount: &Path, own: Option<&str>) -> Vec<PathBuf> {
    let mut parents = Vec::new();
    if let Some(own) = own.map(|own| own.trim_start_matches('/')).filter(|own| !own.is_empty()) {
        parents.push(mount.join(own));
    }
    parents.push(mount.to_path_buf());
    parents
}

/// Whether `cgroup.events` text says the group still holds a process.
fn populated(events: &[u8]) -> bool {
    events.split(|byte| *byte == b'\n').any(|line| line == b"populated 1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_among_v1_mounts_and_unescaped() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let spaced = "29 23 0:26 / /mnt/my\\040groups rw - cgroup2 none rw\n";
        let none = "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n";
        let cases = [
            (hybrid, Some("/sys/fs/cgroup/unified")),
            (unified, Some("/sys/fs/cgroup")),
            (spaced, Some("/mnt/my groups")),
            (none, None),
        ];
        for (mountinfo, expected) in cases {
            assert_eq!(cgroup2_mount(mountinfo), expected.map(PathBuf::from), "{mountinfo}");
        }
    }

    #[test]
    fn the_group_goes_under_the_servers_own_group_then_the_root() {
        let mount = Path::new("/cg");
        let cases: [(&str, Vec<&str>); 4] = [
            ("0::/user.slice/session-1.scope\n", vec!["/cg/user.slice/session-1.scope", "/cg"]),
            ("4:memory:/x\n0::/\n", vec!["/cg"]),
            ("4:memory:/x\n", vec!["/cg"]),
            ("", vec!["/cg"]),
        ];
        for (proc_cgroup, expected) in cases {
            let expected: Vec<PathBuf> = expected.into_iter().map(PathBuf::from).collect();
            assert_eq!(parents(mount, own_cgroup(proc_cgroup)), expected, "{proc_cgroup:?}");
        }
    }

    #[test]
    fn populated_reads_cgroup_events() {
        assert!(populated(b"populated 1\nfrozen 0\n"));
        assert!(!populated(b"populated 0\nfrozen 0\n"));
        assert!(!populated(b""));
    }

    #[test]
    fn the_parent_pid_is_read_past_a_command_with_parens_and_spaces() {
        assert_eq!(parent_pid("123 (a) b (c)) S 77 123 123 0"), Some(77));
        assert_eq!(parent_pid("123 (sleep) Z 1 5"), Some(1));
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn the_disable_variable_takes_any_value_but_empty_and_zero() {
        let cases =
            [(None, false), (Some(""), false), (Some("0"), false), (Some("1"), true), (Some("yes"), true)];
        for (value, expected) in cases {
            assert_eq!(disabled(value.map(OsStr::new)), expected, "{value:?}");
        }
    }
}
