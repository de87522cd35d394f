//! Nothing a config file holds may panic or hang smyth. A rich pyproject.toml (the example project's,
//! plus every key) has each key's value swapped to a few edge values, then is mutated by random byte
//! flips, truncations and type swaps of a key's value; each case runs as `smyth check --config F` and must exit 0 or 2 within 5 s. The seed is printed (set
//! `SMYTH_FUZZ_SEED` to replay one) and so is every failing case.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random cases, after the sweep of every key through `EDGES`.
const RANDOM_CASES: usize = 600;
const THREADS: usize = 3;
const LIMIT: Duration = Duration::from_secs(5);
const DEFAULT_SEED: u64 = 0x5eed_c0f1_9000_0008;

/// Every global and handler key (the README tables are checked against this below), in the shape of
/// the example project.
const RICH_KEYS: &str = r#"
[tool.smyth]
host = "127.0.0.1"
port = 0
log_level = "INFO"
smyth_path_prefix = "/_smyth"
env = { STAGE = "dev" }
env_file = "dev.env"
python = "python3"
python_path = ["src"]
reload = false
zygote = true
account_concurrency = 1000
allowed_hosts = ["dev.localhost"]
async_queue_size = 10000
log_format = "json"
record = true
record_path = ".smyth/invocations.db"
record_keep = 10000
chaos = { kill_idle = 0.1, kill_busy = 0.1, cold_start = 0.1, throttle = 0.1, latency_ms = 5, seed = 7 }

[tool.smyth.handlers.everything]
handler_path = "app.handlers.order_handler"
url_path = "/everything/{id:int}/{rest:path}"
timeout = 2.5
init_timeout = 10
concurrency = 3
provisioned_concurrency = 1
queue_size = 100
maximum_retry_attempts = 1
retry_delay = 0.5
maximum_event_age = 3600
strategy = "round_robin"
memory_size = 256
idle_timeout = 60
debugpy_port = 5678
check_state = true
check_state_every = 5
event_format = "apigw-v2"
runtime = "command"
command = ["./bootstrap", "--fast"]
log_level = "DEBUG"
log_format = "JSON"
application_log_level = "DEBUG"
system_log_level = "INFO"
env = { TABLE = "orders" }
strategy_function_path = "smyth.runner.strategy.round_robin"
event_data_function_path = "smyth.event.generate_api_gw_v2_event_data"
context_data_function_path = "smyth.context.generate_context_data"
fake_coldstart = true
on_success = "handler:reserved"
on_failure = "file:failed.jsonl"

[tool.smyth.handlers.reserved]
handler_path = "app.reserved.handler"
url_path = "/reserved/{u:uuid}"
reserved_concurrency = 2
event_format = "raw"
runtime = "awslambdaric"
strategy_generator_path = "smyth.runner.strategy.first_warm"
tenant_isolation = true
tenant_id_header = "x-org"

[tool.smyth.handlers.reserved.env]
MODE = "reserved"

[tool.smyth.handlers.snap]
handler_path = "app.handlers.order_handler"
url_path = "/snap"
snap_start = true

[tool.smyth.handlers.managed]
handler_path = "app.handlers.product_handler"
url_path = "/managed"
managed_instances = true
max_concurrency = 2
"#;

/// The example project's pyproject.toml, its `[tool.smyth]` table replaced by one with every key.
fn rich_pyproject() -> String {
    let example = std::fs::read_to_string(repo().join("examples/pyproject.toml")).unwrap();
    let (before, handlers) = example.split_once("[tool.smyth]\nport = 8080\n").expect("example layout");
    format!("{before}{}{handlers}", RICH_KEYS.trim_start())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Values of every TOML type (and values at and past the edges) for type swaps.
const VALUES: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"/dev/zero\"",
    "\"/_s{x\"",
    "\"..\"",
    "\"\\u0000\"",
    "\"∞ ünï\"",
    "0",
    "-1",
    "1",
    "900",
    "901",
    "1.8e19",
    "1e-300",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "0.5",
    "true",
    "false",
    "[]",
    "[\"a\", \"b\"]",
    "[1, 2]",
    "[[]]",
    "{}",
    "{ a = 1 }",
    "{ A = \"x\" }",
    "1979-05-27T07:32:00Z",
];

/// Values every key is swapped to once: past the ranges, not numbers, streams, other types.
const EDGES: &[&str] = &["\"/dev/zero\"", "1.8e19", "nan", "-1", "[]", "{}", "true"];

/// Every `key = value` line of `base` with each of `EDGES` as its value.
fn sweep(base: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(base);
    let lines: Vec<&str> = text.lines().collect();
    let mut cases = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, _)) = line.split_once(" = ") else { continue };
        for value in EDGES {
            cases.push((format!("line {}: {key} = {value}", i + 1), replace_line(&lines, i, key, value)));
        }
    }
    cases
}

fn replace_line(lines: &[&str], i: usize, key: &str, value: &str) -> Vec<u8> {
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[i] = format!("{key} = {value}");
    (out.join("\n") + "\n").into_bytes()
}

/// One mutation of `base`: what was done (for the report) and the resulting bytes.
fn mutate(base: &[u8], rng: &mut StdRng) -> (String, Vec<u8>) {
    match rng.random_range(0..4) {
        0 => flip(base, rng),
        1 => {
            let at = rng.random_range(0..base.len());
            (format!("truncate at {at}"), base[..at].to_vec())
        }
        2 => swap(base, rng),
        _ => {
            let (what, swapped) = swap(base, rng);
            let (more, flipped) = flip(&swapped, rng);
            (format!("{what}; {more}"), flipped)
        }
    }
}

/// Flips 1 to 8 bits, mostly inside ASCII (so the text stays UTF-8 and reaches the parser).
fn flip(base: &[u8], rng: &mut StdRng) -> (String, Vec<u8>) {
    let mut bytes = base.to_vec();
    let mut done = Vec::new();
    for _ in 0..rng.random_range(1..=8) {
        let at = rng.random_range(0..bytes.len());
        let bit = if rng.random_bool(0.9) { rng.random_range(0..7) } else { 7 };
        bytes[at] ^= 1 << bit;
        done.push(format!("{at}^{:#x}", 1 << bit));
    }
    (format!("flip {}", done.join(",")), bytes)
}

/// Replaces the value of one `key = value` line with a value of another type.
fn swap(base: &[u8], rng: &mut StdRng) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(base);
    let lines: Vec<&str> = text.lines().collect();
    let keyed: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(" = ")).collect();
    if keyed.is_empty() {
        return flip(base, rng);
    }
    let i = keyed[rng.random_range(0..keyed.len())];
    let key = lines[i].split(" = ").next().unwrap();
    let value = VALUES[rng.random_range(0..VALUES.len())];
    (format!("line {}: {key} = {value}", i + 1), replace_line(&lines, i, key, value))
}

/// What one `smyth check` did: its exit status, or None when it ran past `LIMIT` and was killed.
fn check(dir: &Path, config: &Path) -> (Option<ExitStatus>, String) {
    let err = tempfile::tempfile().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smyth"))
        .args(["check", "--no-import", "--config"])
        .arg(config)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("run smyth");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = Vec::new();
    let mut err = err;
    err.seek(SeekFrom::Start(0)).unwrap();
    err.take(4000).read_to_end(&mut stderr).unwrap();
    (status, String::from_utf8_lossy(&stderr).into_owned())
}

/// A project dir with what the rich config refers to.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.env"), "A=1\nB=${A}-2\n").unwrap();
    std::fs::write(dir.path().join(".env"), "C=3\n").unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    dir
}

#[test]
fn the_rich_config_has_every_key_and_passes() {
    let base = rich_pyproject();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let keys: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys.iter().filter(|k| **k != "handlers") {
        assert!(base.contains(&format!("\n{key} = ")), "the fuzz base lacks `{key}`");
    }
    let dir = project();
    let file = dir.path().join("pyproject.toml");
    std::fs::write(&file, &base).unwrap();
    let (status, stderr) = check(dir.path(), &file);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}\n{base}");
}

#[test]
fn no_config_panics_or_hangs_smyth_check() {
    let seed = std::env::var("SMYTH_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    let base = rich_pyproject().into_bytes();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cases = sweep(&base);
    cases.extend((0..RANDOM_CASES).map(|_| mutate(&base, &mut rng)));
    let total = cases.len();
    assert!(total >= 1000, "{total} cases");
    eprintln!("config fuzz: seed {seed} (SMYTH_FUZZ_SEED={seed} replays it), {total} cases");

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    // How far cases got: accepted, refused by the TOML parser, refused by validation.
    let (accepted, unparsed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let dir = project();
                let file = dir.path().join("pyproject.toml");
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((what, bytes)) = cases.get(n) else { break };
                    std::fs::write(&file, bytes).unwrap();
                    let (status, stderr) = check(dir.path(), &file);
                    if status.is_some_and(|s| s.success()) {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    } else if stderr.contains("invalid TOML") || stderr.contains("UTF-8") {
                        unparsed.fetch_add(1, Ordering::Relaxed);
                    }
                    let verdict = match status {
                        None => Some(format!("still running after {LIMIT:?}: killed")),
                        Some(s) if matches!(s.code(), Some(0 | 2)) => None,
                        Some(s) => Some(format!("exited with {s}")),
                    };
                    if let Some(verdict) = verdict {
                        let text = String::from_utf8_lossy(bytes);
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("case {n} ({what}): {verdict}\n{stderr}\n--- config ---\n{text}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "config fuzz: {total} cases in {:?}: {} accepted, {} not TOML, the rest refused by validation; {} failed",
        started.elapsed(),
        accepted.into_inner(),
        unparsed.into_inner(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {total} cases failed; the first:\n{}",
        failures.len(),
        failures.iter().take(3).cloned().collect::<Vec<_>>().join("\n=========\n")
    );
}
