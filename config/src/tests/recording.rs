//! The recording keys and the `[tool.smyth.chaos]` table: defaults, values, and bad values.

use super::errors::{assert_one, global_problems};
use super::*;

#[test]
fn recording_and_chaos_defaults_and_values() {
    let c = parse(MINIMAL);
    let expected = RecordConfig {
        enabled: true,
        path: Path::new("/nonexistent/proj/.smyth/invocations.db").into(),
        keep: DEFAULT_RECORD_KEEP,
    };
    assert_eq!(c.record, expected);
    assert_eq!(c.chaos, ChaosConfig::default());
    let c = parse(&format!(
        "[tool.smyth]\nrecord = false\nrecord_path = \"db/x.db\"\nrecord_keep = 7\n\
         [tool.smyth.chaos]\nkill_idle = 0.5\nkill_busy = 1\nthrottle = 0.25\nlatency_ms = 30\nseed = 9\n{MINIMAL}"
    ));
    assert_eq!(c.record, RecordConfig { enabled: false, path: "/nonexistent/proj/db/x.db".into(), keep: 7 });
    let chaos = ChaosConfig {
        enabled: false,
        kill_idle: 0.5,
        kill_busy: 1.0,
        cold_start: 0.0,
        throttle: 0.25,
        latency_ms: 30,
        seed: Some(9),
    };
    assert_eq!(c.chaos, chaos, "the table alone does not turn chaos mode on");
}

#[test]
fn bad_recording_and_chaos_values() {
    let cases: &[(&str, usize, &str, &str)] = &[
        ("record_keep = 0", 2, "record_keep", "between 1 and"),
        ("record_path = \" \"", 2, "record_path", "must not be empty"),
        ("[tool.smyth.chaos]\nkill_busy = 1.5", 3, "chaos.kill_busy", "probability from 0 to 1"),
        ("[tool.smyth.chaos]\nthrottle = -0.1", 3, "chaos.throttle", "probability from 0 to 1"),
        ("[tool.smyth.chaos]\nlatency_ms = 60001", 3, "chaos.latency_ms", "between 0 and 60000"),
        ("[tool.smyth.chaos]\nseed = -1", 3, "chaos.seed", "between 0 and"),
    ];
    for (body, line, key, needle) in cases {
        assert_one(&global_problems(body), *line, key, needle);
    }
}
