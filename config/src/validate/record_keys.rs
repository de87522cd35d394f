//! The recording keys (`record`, `record_path`, `record_keep`) and the `[tool.smyth.chaos]` table.

use std::path::Path;

use toml::Spanned;

use super::Check;
use crate::limits::{MAX_CHAOS_LATENCY_MS, MAX_RECORD_KEEP};
use crate::raw::RawGlobal;
use crate::recording::{ChaosConfig, RecordConfig, DEFAULT_RECORD_KEEP};

pub(super) fn record(check: &mut Check, g: &RawGlobal, root: &Path) -> RecordConfig {
    let enabled = g.record.as_ref().is_none_or(|r| *r.get_ref());
    let path = match &g.record_path {
        Some(p) if p.get_ref().trim().is_empty() => {
            check.bad(p, "record_path", "must not be empty");
            root.join(".smyth/invocations.db")
        }
        Some(p) => root.join(p.get_ref()),
        None => root.join(".smyth/invocations.db"),
    };
    let keep =
        check.int(&g.record_keep, "record_keep", 1, MAX_RECORD_KEEP, DEFAULT_RECORD_KEEP as i64) as usize;
    RecordConfig { enabled, path, keep }
}

pub(super) fn chaos(check: &mut Check, g: &RawGlobal) -> ChaosConfig {
    let Some(table) = &g.chaos else { return ChaosConfig::default() };
    let table = table.get_ref();
    let mut share = |v: &Option<Spanned<f64>>, key: &str| match v {
        None => 0.0,
        Some(s) if (0.0..=1.0).contains(s.get_ref()) => *s.get_ref(),
        Some(s) => {
            check.bad(s, key, format!("must be a probability from 0 to 1, got {}", s.get_ref()));
            0.0
        }
    };
    let kill_idle = share(&table.kill_idle, "chaos.kill_idle");
    let kill_busy = share(&table.kill_busy, "chaos.kill_busy");
    let cold_start = share(&table.cold_start, "chaos.cold_start");
    let throttle = share(&table.throttle, "chaos.throttle");
    let latency_ms = check.int(&table.latency_ms, "chaos.latency_ms", 0, MAX_CHAOS_LATENCY_MS, 0) as u64;
    let seed = table.seed.as_ref().map(|_| check.int(&table.seed, "chaos.seed", 0, i64::MAX, 0) as u64);
    ChaosConfig { enabled: false, kill_idle, kill_busy, cold_start, throttle, latency_ms, seed }
}
