//! Every number has a range and every file the config names is read with a bound: a value past a
//! limit is a problem naming its line and key, never a panic, an overflow or a hang later on.

use super::errors::{assert_one, global_problems, handler_problems};
use super::*;

/// (body, key, message fragment): each body is one line of a handler table, out of range.
const BAD_HANDLER_NUMBERS: &[(&str, &str, &str)] = &[
    ("timeout = 1.8e19", "timeout", "above 0 and at most 900"),
    ("timeout = 900.001", "timeout", "at most 900"),
    ("timeout = 0", "timeout", "above 0"),
    ("timeout = -0.5", "timeout", "above 0"),
    ("timeout = nan", "timeout", "got NaN"),
    ("timeout = inf", "timeout", "got inf"),
    ("timeout = -inf", "timeout", "got -inf"),
    ("timeout = 1e-300", "timeout", "above 0"),
    ("init_timeout = 901", "init_timeout", "above 0 and at most 900"),
    ("init_timeout = 0", "init_timeout", "above 0"),
    ("init_timeout = nan", "init_timeout", "got NaN"),
    ("idle_timeout = 86401", "idle_timeout", "above 0 and at most 86400"),
    ("idle_timeout = inf", "idle_timeout", "got inf"),
    ("retry_delay = 21601", "retry_delay", "above 0 and at most 21600"),
    ("retry_delay = 1e300", "retry_delay", "at most 21600"),
    ("concurrency = 1001", "concurrency", "between 1 and 1000"),
    ("concurrency = 9223372036854775807", "concurrency", "between 1 and 1000"),
    ("reserved_concurrency = 1001", "reserved_concurrency", "between 0 and 1000"),
    ("provisioned_concurrency = 1001", "provisioned_concurrency", "between 0 and 1000"),
    ("queue_size = 1000001", "queue_size", "between 1 and 1000000"),
    ("queue_size = -9223372036854775808", "queue_size", "between 1 and 1000000"),
    ("maximum_event_age = 59", "maximum_event_age", "between 60 and 21600"),
    ("maximum_event_age = 21601", "maximum_event_age", "between 60 and 21600"),
    ("debugpy_port = 0", "debugpy_port", "between 1 and 65535"),
    ("check_state_every = 0", "check_state_every", "between 1 and 1000000"),
    ("check_state_every = 1000001", "check_state_every", "between 1 and 1000000"),
];

#[test]
fn handler_numbers_out_of_range_name_line_and_key() {
    for (body, key, needle) in BAD_HANDLER_NUMBERS {
        let problems = handler_problems(body);
        assert_one(&problems, 5, &format!("handlers.h.{key}"), needle);
    }
}

#[test]
fn global_numbers_out_of_range_name_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("account_concurrency = 100001", "account_concurrency", "between 1 and 100000"),
        ("account_concurrency = -1", "account_concurrency", "between 1 and 100000"),
        ("async_queue_size = 1000001", "async_queue_size", "between 1 and 1000000"),
        ("async_queue_size = 0", "async_queue_size", "between 1 and 1000000"),
        ("port = 65536", "port", "between 0 and 65535"),
    ];
    for (body, key, needle) in cases {
        assert_one(&global_problems(body), 2, key, needle);
    }
}

#[test]
fn every_bound_itself_is_accepted() {
    let c = parse(&format!(
        "{MINIMAL}timeout = 900\ninit_timeout = 900\nidle_timeout = 86400\nretry_delay = 21600\n\
         concurrency = 1000\nprovisioned_concurrency = 1000\nqueue_size = 1000000\nmaximum_event_age = 21600\n"
    ));
    let h = &c.handlers[0];
    assert_eq!(h.timeout, Duration::from_secs(900));
    assert_eq!(h.init_timeout, Duration::from_secs(900));
    assert_eq!(h.idle_timeout, Some(Duration::from_secs(86_400)));
    assert_eq!(h.retry_delay, Duration::from_secs(21_600));
    assert_eq!((h.concurrency, h.provisioned_concurrency, h.queue_size), (1000, 1000, 1_000_000));

    let c =
        parse(&format!("[tool.smyth]\naccount_concurrency = 100000\nasync_queue_size = 1000000\n{MINIMAL}"));
    assert_eq!((c.account_concurrency, c.async_queue_size), (100_000, 1_000_000));

    let c = parse(&format!("{MINIMAL}check_state = true\ncheck_state_every = 1000000\n"));
    assert!(c.handlers[0].check_state);
    assert_eq!(c.handlers[0].check_state_every, 1_000_000);
    // Off unless set; every 10th by default; `--check-state` (not a key) is off too.
    let c = parse(MINIMAL);
    assert!(!c.handlers[0].check_state && !c.check_state);
    assert_eq!(c.handlers[0].check_state_every, 10);

    let c = parse(&format!("{MINIMAL}reserved_concurrency = 1000\ntimeout = 0.001\n"));
    assert_eq!(c.handlers[0].concurrency, 1000);
    assert_eq!(c.handlers[0].timeout, Duration::from_millis(1));
}

#[test]
fn slots_across_all_handlers_are_bounded() {
    // Each slot binds a loopback port: eleven pools of 1000 would take 11,000 of them.
    let mut text = String::new();
    for i in 0..11 {
        text.push_str(&format!(
            "[tool.smyth.handlers.h{i}]\nhandler_path = \"app.h\"\nurl_path = \"/h{i}\"\nconcurrency = 1000\n"
        ));
    }
    let err = try_parse(&text).unwrap_err();
    assert_one(err.problems(), 44, "handlers.h10.concurrency", "10000 worker slots");
    assert_eq!(err.problems().len(), 1, "{err}");
}

#[test]
fn nul_bytes_cannot_reach_a_process() {
    let cases: &[(&str, &str)] = &[
        ("env = { A = \"x\\u0000y\" }", "env"),
        ("runtime = \"command\"\ncommand = [\"./boot\", \"a\\u0000\"]", "command"),
    ];
    for (body, key) in cases {
        let line = 4 + body.lines().count();
        assert_one(&handler_problems(body), line, &format!("handlers.h.{key}"), "NUL");
    }
    assert_one(&global_problems("python = \"py\\u0000thon\""), 2, "python", "NUL");
}

/// Parses MINIMAL in a temp project whose root holds what `setup` puts there.
fn in_project(globals: &str, setup: impl FnOnce(&Path)) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    parse_str(
        &format!("[tool.smyth]\n{globals}\n{MINIMAL}"),
        &dir.path().join("pyproject.toml"),
        &BTreeMap::new(),
    )
}

fn env_file_problem(globals: &str, setup: impl FnOnce(&Path), needle: &str) {
    let err = in_project(globals, setup).map(|c| panic!("accepted: {:?}", c.env_file)).unwrap_err();
    // An explicit file is reported on its line; the default `.env` on line 1.
    let line = if globals.is_empty() { 1 } else { 2 };
    assert_one(err.problems(), line, "env_file", needle);
}

#[test]
fn env_file_must_be_a_small_regular_file() {
    let started = std::time::Instant::now();
    env_file_problem("env_file = \"/dev/zero\"", |_| {}, "not a regular file");
    env_file_problem(
        "env_file = \"conf\"",
        |root| std::fs::create_dir(root.join("conf")).unwrap(),
        "directory",
    );
    env_file_problem("env_file = \"pipe\"", |root| mkfifo(&root.join("pipe")), "not a regular file");
    env_file_problem(
        "env_file = \"big.env\"",
        |root| std::fs::write(root.join("big.env"), "A=1\n".repeat(512 * 1024)).unwrap(),
        "at most 1048576 bytes",
    );
    env_file_problem(
        "env_file = \"latin1.env\"",
        |root| std::fs::write(root.join("latin1.env"), b"A=caf\xe9\n").unwrap(),
        "UTF-8",
    );
    // The default `.env` gets the same checks when it exists at all.
    env_file_problem("", |root| std::fs::create_dir(root.join(".env")).unwrap(), "directory");
    env_file_problem("", |root| mkfifo(&root.join(".env")), "not a regular file");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    // Just under the limit is fine.
    let c = in_project("env_file = \"ok.env\"", |root| {
        let line = format!("A={}\n", "x".repeat(1024 * 1024 - 3));
        std::fs::write(root.join("ok.env"), line).unwrap()
    })
    .unwrap();
    assert_eq!(c.env_file_vars["A"].len(), 1024 * 1024 - 3);
}

#[test]
fn env_file_substitution_cannot_blow_up() {
    // Each line doubles the last: 40 lines would expand to terabytes.
    let mut text = String::from("A0=xxxxxxxxxxxxxxxx\n");
    for i in 1..40 {
        text.push_str(&format!("A{i}=${{A{p}}}${{A{p}}}\n", p = i - 1));
    }
    env_file_problem(
        "env_file = \"bomb.env\"",
        |root| std::fs::write(root.join("bomb.env"), &text).unwrap(),
        "substitution",
    );
    // Ordinary substitution still works.
    let c = in_project("", |root| std::fs::write(root.join(".env"), "A=1\nB=${A}-2\n").unwrap()).unwrap();
    assert_eq!(c.env_file_vars["B"], "1-2");
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
}
