//! The reload watcher (README: "Reload"): a thread that watches the project for `.py` and config-file changes,
//! debounces bursts of events into one reload, and tells the router to recycle every worker.
//!
//! `notify` delivers events on its own thread; they cross to ours through a crossbeam channel, and the
//! actor world only ever sees one `Reload` message per burst. The watch is one non-recursive watch per
//! directory, so virtualenvs, caches and VCS folders are never walked or watched.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::Addr;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::messages::Reload;
use crate::router::RouterActor;

/// Quiet time after the last event of a burst before the reload fires. An editor's save (write,
/// rename, chmod) or a `git checkout` comes within a few milliseconds; every millisecond more is
/// added to each reload (README: the reload row of `make bench`).
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// A burst that never goes quiet still reloads after this long.
pub const DEBOUNCE_MAX: Duration = Duration::from_secs(1);

/// Folders never watched: caches, virtualenvs, dependencies, VCS and build output (and hidden ones).
const IGNORED_DIRS: &[&str] = &["__pycache__", ".venv", "venv", "node_modules", ".git", "target"];

/// Whether a directory named `name` is skipped, with everything under it.
pub fn ignored_dir(name: &str) -> bool {
    IGNORED_DIRS.contains(&name) || name.starts_with('.')
}

/// Whether a change to `path` reloads: the config file, or a `.py` file under `root` outside ignored
/// and hidden folders (editors' hidden files such as `.#app.py` are skipped too).
pub fn triggers_reload(root: &Path, config_file: &Path, path: &Path) -> bool {
    if path == config_file {
        return true;
    }
    let Ok(relative) = path.strip_prefix(root) else { return false };
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        let std::path::Component::Normal(name) = component else { return false };
        let Some(name) = name.to_str() else { return false };
        if components.peek().is_some() {
            if ignored_dir(name) {
                return false;
            }
        } else {
            return !name.starts_with('.') && name.ends_with(".py") && name.len() > ".py".len();
        }
    }
    false
}

/// Trailing-edge debounce: a burst of changes becomes one reload, `window` after its last event (or
/// `max` after its first, if it never goes quiet). Pure: the caller passes the clock.
#[derive(Debug)]
pub struct Debounce {
    window: Duration,
    max: Duration,
    pending: Option<Burst>,
}

#[derive(Debug)]
struct Burst {
    /// The first path that changed: the one the log line names.
    path: PathBuf,
    first: Instant,
    last: Instant,
}

impl Debounce {
    pub fn new(window: Duration, max: Duration) -> Self {
        Self { window, max, pending: None }
    }

    /// Records a change at `now`.
    pub fn record(&mut self, path: PathBuf, now: Instant) {
        match &mut self.pending {
            Some(burst) => burst.last = now,
            None => self.pending = Some(Burst { path, first: now, last: now }),
        }
    }

    /// When the pending burst is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let burst = self.pending.as_ref()?;
        Some((burst.last + self.window).min(burst.first + self.max))
    }

    /// The burst's first path once it is due at `now`; the burst is then over.
    pub fn due(&mut self, now: Instant) -> Option<PathBuf> {
        if now < self.deadline()? {
            return None;
        }
        self.pending.take().map(|burst| burst.path)
    }
}

enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// The running watcher. Stopping it (or dropping it) ends its thread and the `notify` watch.
pub struct WatchHandle {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts watching `root` (recursively, skipping ignored folders) and `config_file`; each debounced
/// burst of changes sends `Reload` to `router`. The watches are in place when this returns.
pub fn start(root: &Path, config_file: &Path, router: Addr<RouterActor>) -> io::Result<WatchHandle> {
    let root = root.canonicalize()?;
    let config_file = config_file.canonicalize()?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let events = tx.clone();
    let config = config_file.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.as_ref().map_or(true, |event| worth_a_look(event, &config)) {
            let _ = events.send(Msg::Event(event));
        }
    })
    .map_err(io::Error::other)?;
    let mut watched = Watched::default();
    watch_tree(&mut watcher, &root, &mut watched, &mut |_| {});
    if let Some(folder) = config_file.parent().filter(|f| !f.starts_with(&root)) {
        watch_dir(&mut watcher, folder, &mut watched);
    }
    if watched.failed > 0 {
        tracing::warn!("{} folders are not watched: changes in them do not reload", watched.failed);
    }
    tracing::debug!(root = %root.display(), folders = watched.ok, "watching for changes");
    // The config the server started with, to name what an edit changed.
    let started_with = crate::config_diff::smyth_table(&config_file);
    let thread = std::thread::Builder::new().name("smyth-watcher".into()).spawn(move || {
        let mut watcher = watcher;
        run(&mut watcher, &rx, &root, &config_file, |path, is_config| {
            let changed = match (is_config, &started_with) {
                (false, _) => None,
                (true, Some(old)) => crate::config_diff::smyth_table(path)
                    .map(|new| crate::config_diff::changed_keys(old, &new)),
                (true, None) => Some(Vec::new()),
            };
            announce(&root, path, is_config, changed);
            router.do_send(Reload);
        });
    })?;
    Ok(WatchHandle { tx, thread: Some(thread) })
}

/// Whether an event may matter, decided on notify's thread: writes to a log or any other file that is
/// neither Python nor the config (a server whose output goes to a file in the project writes one for
/// every request) must not wake the watcher thread.
fn worth_a_look(event: &notify::Event, config_file: &Path) -> bool {
    let data_only = matches!(event.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Data(_)));
    !data_only || event.paths.iter().any(|p| p == config_file || p.extension().is_some_and(|e| e == "py"))
}

/// The watcher thread's loop: collects changes, debounces them, calls `reload` once per burst.
fn run(
    watcher: &mut RecommendedWatcher,
    rx: &Receiver<Msg>,
    root: &Path,
    config_file: &Path,
    mut reload: impl FnMut(&Path, bool),
) {
    let mut debounce = Debounce::new(DEBOUNCE, DEBOUNCE_MAX);
    loop {
        let msg = match debounce.deadline() {
            Some(deadline) => rx.recv_deadline(deadline),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Event(Ok(event))) => {
                for path in changed_paths(watcher, root, config_file, event) {
                    debounce.record(path, Instant::now());
                }
            }
            Ok(Msg::Event(Err(err))) => tracing::warn!("file watcher: {err}"),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Some(path) = debounce.due(Instant::now()) {
            reload(&path, path == config_file);
        }
    }
}

/// The paths of `event` that trigger a reload. A new folder gets watched, and the `.py` files already
/// in it (written before its watch existed) count as changes.
fn changed_paths(
    watcher: &mut RecommendedWatcher,
    root: &Path,
    config_file: &Path,
    event: notify::Event,
) -> Vec<PathBuf> {
    if !matches!(
        event.kind,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    ) {
        return Vec::new();
    }
    let mut changed = Vec::new();
    for path in event.paths {
        // A folder created or moved in: watch it and what it holds.
        let arrived = matches!(event.kind, EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)));
        let new_dir = arrived && path.is_dir();
        if new_dir && path.starts_with(root) && !hidden_or_ignored(root, &path) {
            watch_tree(watcher, &path, &mut Watched::default(), &mut |file| {
                if triggers_reload(root, config_file, file) {
                    changed.push(file.to_path_buf());
                }
            });
        } else if triggers_reload(root, config_file, &path) {
            changed.push(path);
        }
    }
    changed
}

/// Whether any folder from `root` down to `dir` (inclusive) is ignored.
fn hidden_or_ignored(root: &Path, dir: &Path) -> bool {
    dir.strip_prefix(root)
        .map(|rel| rel.components().any(|c| c.as_os_str().to_str().is_none_or(ignored_dir)))
        .unwrap_or(true)
}

/// Watches `dir` and every folder under it that is not ignored; `file` sees every file found.
fn watch_tree(
    watcher: &mut RecommendedWatcher,
    dir: &Path,
    watched: &mut Watched,
    file: &mut dyn FnMut(&Path),
) {
    watch_dir(watcher, dir, watched);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() {
            if !entry.file_name().to_str().is_none_or(ignored_dir) {
                watch_tree(watcher, &path, watched, file);
            }
        } else {
            file(&path);
        }
    }
}

/// Folders watched and not, for one walk; only the first failure is a warning (a full inotify table
/// fails every folder after it).
#[derive(Debug, Default)]
struct Watched {
    ok: usize,
    failed: usize,
}

fn watch_dir(watcher: &mut RecommendedWatcher, dir: &Path, watched: &mut Watched) {
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => watched.ok += 1,
        Err(err) => {
            watched.failed += 1;
            if watched.failed == 1 {
                tracing::warn!(folder = %dir.display(), "cannot watch for changes: {err}");
            }
        }
    }
}

/// `changed`: for a config edit, the keys that differ from the config smyth started with (`None`
/// when the file does not parse now).
fn announce(root: &Path, path: &Path, is_config: bool, changed: Option<Vec<String>>) {
    let shown = path.strip_prefix(root).unwrap_or(path);
    tracing::info!("reloading: {} changed", shown.display());
    if !is_config {
        return;
    }
    match changed {
        Some(keys) if keys.is_empty() => {}
        Some(keys) => tracing::warn!(
            keys = %keys.join(", "),
            "workers were recycled with the config smyth started with; restart smyth for these changed keys: {}",
            keys.join(", ")
        ),
        None => tracing::warn!(
            "workers were recycled with the config smyth started with; the config file does not parse now \
             (`smyth check` says why)"
        ),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_events_that_may_matter_wake_the_watcher() {
        use notify::event::{AccessKind, CreateKind, DataChange};
        let config = Path::new("/p/pyproject.toml");
        let event = |kind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let cases = [
            (event(write, "/p/server.log"), false),
            (event(EventKind::Access(AccessKind::Any), "/p/app.py"), true),
            (event(write, "/p/app.py"), true),
            (event(write, "/p/pyproject.toml"), true),
            (event(EventKind::Create(CreateKind::Folder), "/p/newpkg"), true),
            (event(EventKind::Remove(notify::event::RemoveKind::Any), "/p/notes.txt"), true),
        ];
        for (event, expected) in cases {
            assert_eq!(worth_a_look(&event, config), expected, "{event:?}");
        }
    }
    use super::*;

    #[test]
    fn which_paths_trigger_a_reload() {
        let root = Path::new("/p");
        let config = Path::new("/p/pyproject.toml");
        let cases = [
            ("/p/app.py", true),
            ("/p/pkg/sub/mod.py", true),
            ("/p/pyproject.toml", true),
            ("/p/other.toml", false),
            ("/p/README.md", false),
            ("/p/app.pyc", false),
            ("/p/app.py~", false),
            ("/p/.#app.py", false),
            ("/p/.py", false),
            ("/p/__pycache__/app.cpython-312.pyc", false),
            ("/p/pkg/__pycache__/x.py", false),
            ("/p/.venv/lib/site.py", false),
            ("/p/venv/lib/site.py", false),
            ("/p/node_modules/x/y.py", false),
            ("/p/.git/hooks/x.py", false),
            ("/p/target/gen.py", false),
            ("/p/.hidden/x.py", false),
            ("/p/src/.cache/x.py", false),
            ("/elsewhere/app.py", false),
            ("/p", false),
        ];
        for (path, expected) in cases {
            assert_eq!(triggers_reload(root, config, Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn ignored_folders() {
        for name in ["__pycache__", ".venv", "venv", "node_modules", ".git", "target", ".mypy_cache"] {
            assert!(ignored_dir(name), "{name}");
        }
        for name in ["src", "pkg", "venvironment", "targets"] {
            assert!(!ignored_dir(name), "{name}");
        }
    }

    #[test]
    fn a_burst_is_one_reload_after_it_goes_quiet() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(100), ms(1000));
        assert_eq!(d.deadline(), None);
        assert_eq!(d.due(t0), None);
        d.record("a.py".into(), t0);
        d.record("b.py".into(), t0 + ms(50));
        assert_eq!(d.deadline(), Some(t0 + ms(150)));
        assert_eq!(d.due(t0 + ms(120)), None, "not quiet long enough");
        assert_eq!(d.due(t0 + ms(150)), Some(PathBuf::from("a.py")), "names the first change");
        assert_eq!(d.due(t0 + ms(400)), None, "one reload per burst");
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn a_burst_that_never_goes_quiet_still_reloads() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(100), ms(300));
        for i in 0..10 {
            d.record("a.py".into(), t0 + ms(i * 50));
        }
        assert_eq!(d.deadline(), Some(t0 + ms(300)));
        assert_eq!(d.due(t0 + ms(300)), Some(PathBuf::from("a.py")));
        d.record("c.py".into(), t0 + ms(310));
        assert_eq!(d.due(t0 + ms(410)), Some(PathBuf::from("c.py")), "a new burst after the first");
    }
}
