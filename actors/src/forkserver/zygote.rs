//! The zygote: a fork server whose init loads only the bundled runtime, never the user's code. A
//! cold start whose interpreter, folder and start-up variables match is a fork of it, given the
//! handler's environment before the handler is imported: the interpreter's own start-up (20–60 ms
//! here) is paid once, not on every cold start, and the workers share its pages copy-on-write.
//!
//! One zygote per interpreter and folder, shared by every handler; the first cold start that could
//! use it starts it (an unused server has none) and spawns, as do cold starts that a request waits
//! for until it is ready (provisioned workers wait for it instead); it is started again after it
//! ended. Its start-up variables ([`startup_env`]: what Python reads only
//! as it starts) are the server's, before any handler's own `env`. A cold start that cannot use it
//! is a plain spawn: another runtime, a debugger on the terminal, or start-up variables that differ
//! from the zygote's (a handler's PYTHONHASHSEED).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Exited, Failure, ForkServer, Forked, Live, Request};
use crate::process::{Exit, SpawnSpec};

/// Tells the bundled runtime that it is the zygote (beside the fork server's descriptor).
pub const ZYGOTE_VAR: &str = "SMYTH_ZYGOTE";
/// How long the zygote's own init (the interpreter and the runtime) may take.
const INIT_LIMIT: Duration = Duration::from_secs(30);
/// After this many zygotes in a row ended before they were ready, cold starts of that key spawn.
const MAX_START_FAILURES: u32 = 3;

/// Whether `name` is read by the interpreter only as it starts (so a fork cannot apply it): the
/// `PYTHON*` variables (PYTHONHASHSEED, PYTHONPATH, PYTHONIOENCODING, ...), the locale, which sets
/// the file system and stdio encodings, `HOME` (the user's site-packages), and `TZ`.
pub fn read_at_startup(name: &str) -> bool {
    name.starts_with("PYTHON")
        || name.starts_with("LC_")
        || matches!(name, "LANG" | "LANGUAGE" | "HOME" | "TZ")
}

/// The variables of `env` that the interpreter reads only at start-up.
pub fn startup_env<'a>(env: impl IntoIterator<Item = (&'a String, &'a String)>) -> BTreeMap<String, String> {
    env.into_iter().filter(|(name, _)| read_at_startup(name)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Which zygote a spawn would fork from: its interpreter (argv, the bundled runtime's) and folder.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    argv: Vec<String>,
    cwd: PathBuf,
}

/// The zygotes of one server. Dropping it ends them, and with them their children: the workers
/// hold it, so it outlives every process forked from it.
pub struct Zygotes {
    /// The start-up variables of every zygote.
    startup: BTreeMap<String, String>,
    by_key: Mutex<HashMap<Key, Zygote>>,
}

/// One key's zygote: its process while it runs.
#[derive(Default)]
struct Zygote {
    live: Option<Live>,
    /// Zygotes that ended before they were ready, in a row.
    start_failures: Arc<AtomicU32>,
}

impl Zygotes {
    /// Zygotes started with the start-up variables of `server_env` (a worker's environment without
    /// any handler's own `env`).
    pub fn new(server_env: &BTreeMap<String, String>) -> Self {
        Self { startup: startup_env(server_env), by_key: Mutex::default() }
    }

    /// Whether a cold start of `spec` can be a fork of its key's zygote. The zygote is started when
    /// none runs; until it is ready, a cold start that a request waits for spawns (the first cold
    /// start of a server costs what it did without a zygote), and one that no request waits for
    /// (`may_wait`: provisioned concurrency warming up) waits for it.
    pub fn takes(&self, spec: &SpawnSpec, may_wait: bool) -> bool {
        let startup = startup_env(spec.env.iter());
        let mut by_key = self.by_key.lock().unwrap_or_else(PoisonError::into_inner);
        let zygote = by_key.entry(Key::of(spec)).or_default();
        let failures = zygote.start_failures.load(Ordering::Acquire);
        if let Some(why) = plain_spawn_because(spec.attached, &self.startup, &startup, failures) {
            tracing::debug!(
                worker = spec.env.get("SMYTH_WORKER").map(String::as_str),
                "a plain spawn: {why}"
            );
            return false;
        }
        if zygote.live.as_ref().is_none_or(|live| live.server.ended()) {
            match zygote.start(spec, &self.startup) {
                Ok(live) => zygote.live = Some(live),
                Err(err) => {
                    tracing::warn!(%err, "could not start the zygote: cold starts spawn the interpreter");
                    zygote.live = None;
                    zygote.start_failures.store(MAX_START_FAILURES, Ordering::Release);
                    return false;
                }
            }
        }
        zygote.live.as_ref().is_some_and(|live| may_wait || live.server.ready())
    }

    /// Forks a process for `spec` (which [`Zygotes::takes`]) with its environment, its output on
    /// `output`: now if the zygote is ready, once it is if it is starting. `forked` is told the pid,
    /// or why there is none (the zygote ended meanwhile).
    pub fn fork(&self, spec: &SpawnSpec, output: OwnedFd, forked: Forked, exited: Exited) {
        let by_key = self.by_key.lock().unwrap_or_else(PoisonError::into_inner);
        match by_key.get(&Key::of(spec)).and_then(|zygote| zygote.live.as_ref()) {
            Some(live) => live.server.fork(Request { env: spec.env.to_map(), output, forked, exited }),
            None => {
                let message = "the zygote is not running".to_string();
                forked(Err(Failure { error_type: "Runtime.ExitError".into(), message }));
            }
        }
    }
}

impl Key {
    fn of(spec: &SpawnSpec) -> Self {
        Key { argv: spec.argv.clone(), cwd: spec.cwd.clone() }
    }
}

/// Why a cold start cannot be a fork of its key's zygote (started with `zygote_startup`), if it
/// cannot.
fn plain_spawn_because(
    attached: bool,
    zygote_startup: &BTreeMap<String, String>,
    startup: &BTreeMap<String, String>,
    start_failures: u32,
) -> Option<&'static str> {
    if attached {
        Some("the worker shares the terminal (--debug)")
    } else if zygote_startup != startup {
        Some("its start-up variables differ from the zygote's")
    } else if start_failures >= MAX_START_FAILURES {
        Some("the zygote does not start")
    } else {
        None
    }
}

impl Zygote {
    /// Starts the zygote of `spec`'s key: its interpreter, folder and start-up variables, nothing of
    /// any handler's.
    fn start(&self, spec: &SpawnSpec, startup: &BTreeMap<String, String>) -> std::io::Result<Live> {
        let mut env = startup.clone();
        env.insert(ZYGOTE_VAR.into(), "1".into());
        env.insert("SMYTH_WORKER".into(), "zygote".into());
        let spec = SpawnSpec {
            argv: spec.argv.clone(),
            env: Arc::new(env.into()),
            cwd: spec.cwd.clone(),
            attached: false,
        };
        let retired = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let on_ready = {
            let (ready, failures) = (ready.clone(), self.start_failures.clone());
            move |_: serde_json::Value| {
                ready.store(true, Ordering::Release);
                failures.store(0, Ordering::Release);
                tracing::debug!("the zygote is ready");
            }
        };
        let on_end = {
            let (retired, failures) = (retired.clone(), self.start_failures.clone());
            move |exit: Exit, failure: &Failure| {
                if !ready.load(Ordering::Acquire) {
                    failures.fetch_add(1, Ordering::AcqRel);
                }
                if !retired.load(Ordering::Acquire) {
                    let error_type = &failure.error_type;
                    tracing::warn!(%error_type, "the zygote exited: {exit}; the next cold start starts another");
                }
            }
        };
        let on_line = |line: &str| tracing::warn!(worker = "zygote", "{line}");
        let server = ForkServer::start(&spec, "zygote", INIT_LIMIT, on_line, on_ready, on_end)?;
        tracing::debug!(pid = server.pid, "started the zygote");
        Ok(Live { server, retired })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_interpreter_reads_as_it_starts_is_a_start_up_variable() {
        for (name, startup) in [
            ("PYTHONHASHSEED", true),
            ("PYTHONPATH", true),
            ("PYTHONDONTWRITEBYTECODE", true),
            ("LC_ALL", true),
            ("LANG", true),
            ("HOME", true),
            ("TZ", true),
            ("AWS_REGION", false),
            ("_HANDLER", false),
            ("PATH", false),
            ("MY_PYTHONISH", false),
        ] {
            assert_eq!(read_at_startup(name), startup, "{name}");
        }
    }

    #[test]
    fn the_start_up_environment_leaves_the_rest_out() {
        let env: BTreeMap<String, String> = [("PYTHONPATH", "/p"), ("AWS_REGION", "x"), ("TZ", ":UTC")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let startup: Vec<_> = startup_env(&env).into_keys().collect();
        assert_eq!(startup, ["PYTHONPATH", "TZ"]);
    }

    #[test]
    fn a_cold_start_forks_unless_the_terminal_the_start_up_variables_or_the_zygote_say_otherwise() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let zygote = env(&[("PYTHONPATH", "/p")]);
        for (attached, startup, failures, fork) in [
            (false, env(&[("PYTHONPATH", "/p")]), 0, true),
            (false, env(&[("PYTHONPATH", "/p")]), MAX_START_FAILURES - 1, true),
            (true, env(&[("PYTHONPATH", "/p")]), 0, false),
            (false, env(&[("PYTHONPATH", "/p"), ("PYTHONHASHSEED", "123")]), 0, false),
            (false, env(&[("PYTHONPATH", "/q")]), 0, false),
            (false, env(&[]), 0, false),
            (false, env(&[("PYTHONPATH", "/p")]), MAX_START_FAILURES, false),
        ] {
            let why = plain_spawn_because(attached, &zygote, &startup, failures);
            assert_eq!(why.is_none(), fork, "{attached} {startup:?} {failures}: {why:?}");
        }
    }

    #[test]
    fn an_interpreter_that_does_not_start_means_plain_spawns() {
        let spec = SpawnSpec {
            argv: vec!["/nonexistent/python".into(), "/nonexistent/runtime.py".into()],
            env: Default::default(),
            cwd: std::env::temp_dir(),
            attached: false,
        };
        let zygotes = Zygotes::new(&BTreeMap::new());
        assert!(!zygotes.takes(&spec, true), "no zygote could start");
        let (tx, rx) = std::sync::mpsc::channel();
        let output: OwnedFd = std::io::pipe().unwrap().1.into();
        zygotes.fork(&spec, output, Box::new(move |result| tx.send(result).unwrap()), Box::new(|_, _| {}));
        let failure = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap_err();
        assert!(failure.message.contains("not running"), "{}", failure.message);
        let by_key = zygotes.by_key.lock().unwrap();
        let failures = by_key[&Key::of(&spec)].start_failures.load(Ordering::Acquire);
        assert_eq!(failures, MAX_START_FAILURES, "it is not tried again");
    }
}
