//! Chaos mode (`smyth run --chaos[=SEED]`): injects what AWS does to environments at the rates of
//! `[tool.smyth.chaos]` — an idle worker killed before reuse, a worker dying mid-run, a forced cold
//! start, a throttle, a fixed latency. Each handler draws from its own RNG seeded from the seed and
//! its name, four draws per request in dispatch order, so the same seed and the same requests give
//! the same faults. [`decide`] is the pure rule; the supervisor and the worker carry the faults out.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use smyth_config::ChaosConfig;

/// The fault kinds, as logged, counted and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    KillIdle,
    KillBusy,
    ColdStart,
    Throttle,
    Latency,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::KillIdle => "kill_idle",
            Fault::KillBusy => "kill_busy",
            Fault::ColdStart => "cold_start",
            Fault::Throttle => "throttle",
            Fault::Latency => "latency",
        }
    }
}

/// What the draws for one request decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drawn {
    pub kill_idle: bool,
    pub kill_busy: bool,
    pub cold_start: bool,
    pub throttle: bool,
}

/// The pure rule: a fault happens when its draw (uniform in `0..1`) falls below its rate; the draws
/// are `[kill_idle, kill_busy, cold_start, throttle]`.
pub fn decide(rates: &ChaosConfig, draws: [f64; 4]) -> Drawn {
    let hit = |rate: f64, draw: f64| rate > 0.0 && draw < rate;
    Drawn {
        kill_idle: hit(rates.kill_idle, draws[0]),
        kill_busy: hit(rates.kill_busy, draws[1]),
        cold_start: hit(rates.cold_start, draws[2]),
        throttle: hit(rates.throttle, draws[3]),
    }
}

/// The faults of one invocation: those drawn, and those carried out (recorded with it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Injected {
    pub seed: u64,
    pub drawn: Drawn,
    pub applied: Vec<Fault>,
    pub latency_ms: u64,
}

impl Injected {
    pub fn applies(&self, fault: Fault) -> bool {
        self.applied.contains(&fault)
    }

    /// The `chaos` column: `{"seed", "faults": [...], "latency_ms"}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({"seed": self.seed, "faults": self.applied, "latency_ms": self.latency_ms})
            .to_string()
    }
}

/// A handler's chaos: its RNG and its counts per fault kind (the status's `chaos` object).
#[derive(Debug)]
pub struct HandlerChaos {
    rates: ChaosConfig,
    seed: u64,
    handler: String,
    rng: StdRng,
    pub counts: ChaosCounts,
    /// Whether `kill_idle`, `kill_busy` and `cold_start` apply: not on managed instances, whose one
    /// environment serves many invocations at once.
    process_faults: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChaosCounts {
    pub kill_idle: u64,
    pub kill_busy: u64,
    pub cold_start: u64,
    pub throttle: u64,
    pub latency: u64,
}

impl HandlerChaos {
    /// None unless chaos mode is on.
    pub fn new(rates: &ChaosConfig, handler: &str) -> Option<Self> {
        let seed = rates.seed.filter(|_| rates.enabled)?;
        let rng = StdRng::seed_from_u64(seed ^ name_hash(handler));
        Some(HandlerChaos {
            rates: *rates,
            seed,
            handler: handler.to_string(),
            rng,
            counts: ChaosCounts::default(),
            process_faults: true,
        })
    }

    /// Only the faults of admission (`throttle`, `latency_ms`), for a managed-instances handler; says
    /// so once when the process faults have a rate.
    pub fn admission_only(mut self) -> Self {
        self.process_faults = false;
        if self.rates.kill_idle > 0.0 || self.rates.kill_busy > 0.0 || self.rates.cold_start > 0.0 {
            tracing::info!(
                handler = %self.handler,
                "chaos: kill_idle, kill_busy and cold_start do not apply to a managed-instances handler \
                 (one environment serves many invocations at once); throttle and latency_ms do"
            );
        }
        self
    }

    /// The next request's draws.
    pub fn draw(&mut self) -> Injected {
        let draws = [self.rng.random(), self.rng.random(), self.rng.random(), self.rng.random()];
        Injected {
            seed: self.seed,
            drawn: decide(&self.rates, draws),
            applied: vec![],
            latency_ms: self.rates.latency_ms,
        }
    }

    /// Counts and logs a fault carried out on `injected`'s invocation.
    pub fn inject(&mut self, injected: &mut Injected, fault: Fault) {
        let count = match fault {
            Fault::KillIdle => &mut self.counts.kill_idle,
            Fault::KillBusy => &mut self.counts.kill_busy,
            Fault::ColdStart => &mut self.counts.cold_start,
            Fault::Throttle => &mut self.counts.throttle,
            Fault::Latency => &mut self.counts.latency,
        };
        *count += 1;
        injected.applied.push(fault);
        tracing::info!(
            handler = %self.handler,
            fault = fault.as_str(),
            seed = self.seed,
            "chaos: {} (seed {})",
            fault.as_str(),
            self.seed
        );
    }
}

/// The faults of a request dispatched to a slot (`warm`: its process is parked, idle): `kill_idle`
/// and `cold_start` only mean something for a warm one; `kill_busy` for any.
pub fn at_dispatch(chaos: &mut HandlerChaos, warm: bool, injected: &mut Injected) {
    if !chaos.process_faults {
        return;
    }
    let drawn = injected.drawn;
    if drawn.kill_idle && warm {
        chaos.inject(injected, Fault::KillIdle);
    } else if drawn.cold_start && warm {
        chaos.inject(injected, Fault::ColdStart);
    }
    if drawn.kill_busy {
        chaos.inject(injected, Fault::KillBusy);
    }
}

/// FNV-1a of the handler's name: stable across runs and builds, unlike std's hasher.
fn name_hash(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(kill_idle: f64, kill_busy: f64, cold_start: f64, throttle: f64) -> ChaosConfig {
        ChaosConfig {
            enabled: true,
            kill_idle,
            kill_busy,
            cold_start,
            throttle,
            latency_ms: 0,
            seed: Some(1),
        }
    }

    #[test]
    fn a_fault_happens_when_its_draw_falls_below_its_rate() {
        let none = Drawn::default();
        let cases = [
            (rates(0.0, 0.0, 0.0, 0.0), [0.0, 0.0, 0.0, 0.0], none),
            (rates(1.0, 0.0, 0.0, 0.0), [0.999, 0.0, 0.0, 0.0], Drawn { kill_idle: true, ..none }),
            (rates(0.0, 1.0, 0.0, 0.0), [0.0, 0.5, 0.0, 0.0], Drawn { kill_busy: true, ..none }),
            (rates(0.0, 0.0, 0.5, 0.0), [0.0, 0.0, 0.49, 0.0], Drawn { cold_start: true, ..none }),
            (rates(0.0, 0.0, 0.5, 0.0), [0.0, 0.0, 0.5, 0.0], none),
            (rates(0.0, 0.0, 0.0, 0.25), [0.9, 0.9, 0.9, 0.1], Drawn { throttle: true, ..none }),
            (
                rates(1.0, 1.0, 1.0, 1.0),
                [0.3, 0.3, 0.3, 0.3],
                Drawn { kill_idle: true, kill_busy: true, cold_start: true, throttle: true },
            ),
        ];
        for (rates, draws, expected) in cases {
            assert_eq!(decide(&rates, draws), expected, "{rates:?} {draws:?}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults_and_each_handler_its_own() {
        let rates = ChaosConfig { seed: Some(42), ..rates(0.5, 0.5, 0.5, 0.5) };
        let run = |name: &str| {
            let mut chaos = HandlerChaos::new(&rates, name).unwrap();
            (0..50).map(|_| chaos.draw().drawn).collect::<Vec<_>>()
        };
        assert_eq!(run("orders"), run("orders"));
        assert_ne!(run("orders"), run("users"));
        let other = ChaosConfig { seed: Some(43), ..rates };
        let mut chaos = HandlerChaos::new(&other, "orders").unwrap();
        assert_ne!((0..50).map(|_| chaos.draw().drawn).collect::<Vec<_>>(), run("orders"));
        assert!(HandlerChaos::new(&ChaosConfig { enabled: false, ..rates }, "orders").is_none(), "off");
    }
}
