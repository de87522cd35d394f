//! `smyth replay ID [--fresh | --warm] [--handler H]` and `smyth replay --failed [--since 10m]`:
//! through the running server's API when one answers at the config's address, else alone (a
//! server of its own with no client port, as `smyth invoke` does).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use smyth_config::Config;

use super::{plan, print, run, source, Mode, Plan, Report};
use crate::server;

/// What to replay.
pub struct Request {
    pub id: Option<String>,
    pub mode: Mode,
    pub handler: Option<String>,
    /// `--failed`: every failed invocation since this long ago (None: since the record began).
    pub failed: Option<Option<Duration>>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// Parses `--since`: `10m`, `1h 30m`, `90s` (humantime).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("--since `{text}`: {err} (e.g. 10m, 2h, 90s)"))
}

pub fn replay(config: Config, request: Request) -> ExitCode {
    let plans = match plans(&config, &request) {
        Ok(plans) => plans,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    if plans.is_empty() {
        println!("no failed invocations to replay");
        return ExitCode::SUCCESS;
    }
    let reports = match running_server(&config, &request) {
        Some(base) => {
            eprintln!("replaying on the running server at {base}");
            plans.iter().map(|plan| through_api(&base, plan)).collect()
        }
        None => {
            eprintln!("no server answering: replaying alone");
            alone(config, &plans)
        }
    };
    match request.failed {
        None => single(reports.into_iter().next().expect("one plan")),
        Some(_) => summary(&plans, reports),
    }
}

fn plans(config: &Config, request: &Request) -> Result<Vec<Plan>, String> {
    let source = source::Source::open(&source::database_path(config))?;
    let handler = request.handler.as_deref();
    match (&request.id, request.failed) {
        (Some(id), None) => Ok(vec![plan(&source, id, request.mode, handler)?]),
        (None, Some(since)) => {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            let from = since.map_or(0, |since| now.saturating_sub(since).as_millis() as i64);
            let failed = source.failed_since(from)?;
            failed.iter().map(|r| plan(&source, &r.id, request.mode, handler)).collect()
        }
        _ => Err("give a recorded invocation's id, or --failed".into()),
    }
}

/// The base URL of smyth's endpoints on a server that answers at the given or configured address.
fn running_server(config: &Config, request: &Request) -> Option<String> {
    let host = request.host.as_deref().unwrap_or(&config.host);
    let port = request.port.unwrap_or(config.port);
    if port == 0 {
        return None;
    }
    let base = format!("http://{host}:{port}{}", config.smyth_path_prefix.trim_end_matches('/'));
    let agent = agent(Duration::from_secs(2));
    agent.get(&format!("{base}/status")).call().ok().filter(|r| r.status().is_success()).map(|_| base)
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into()
}

fn through_api(base: &str, plan: &Plan) -> Result<Report, String> {
    let url =
        format!("{base}/replay/{}?mode={}&handler={}", plan.record.id, plan.mode.as_str(), plan.handler);
    // Long enough for a warm replay of many invocations, each bounded by the handler's timeout.
    let mut answer =
        agent(Duration::from_secs(900)).post(&url).send_empty().map_err(|err| err.to_string())?;
    let status = answer.status();
    let body: serde_json::Value = answer.body_mut().read_json().map_err(|err| err.to_string())?;
    if !status.is_success() {
        return Err(body["message"].as_str().unwrap_or("the replay failed").to_string());
    }
    serde_json::from_value(body).map_err(|err| err.to_string())
}

/// Starts the handlers the plans need, one worker each (none of them used: replays run on the
/// shadow environment), runs every plan, and stops.
fn alone(mut config: Config, plans: &[Plan]) -> Vec<Result<Report, String>> {
    config.handlers.retain(|h| plans.iter().any(|p| p.handler == h.name));
    for handler in &mut config.handlers {
        handler.concurrency = 1;
        handler.reserved_concurrency = None;
        handler.provisioned_concurrency = 0;
    }
    config.reload = false;
    let system = actix_rt::System::new();
    system.block_on(async move {
        let running = match server::start(config, None, smyth_actors::containment::contain()).await {
            Ok(running) => running,
            Err(err) => {
                return plans.iter().map(|_| Err(format!("cannot start the handlers: {err}"))).collect()
            }
        };
        let mut reports = Vec::new();
        for plan in plans {
            reports.push(run(running.router(), plan).await);
        }
        running.stop(Duration::ZERO).await;
        reports
    })
}

/// One replay: its report; exit 0 when the replayed invocation succeeded.
fn single(report: Result<Report, String>) -> ExitCode {
    match report {
        Ok(report) => {
            print!("{}", print(&report));
            if report.passes {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `--failed`: a line per invocation, then how many pass now; exit 0 only if all do.
fn summary(plans: &[Plan], reports: Vec<Result<Report, String>>) -> ExitCode {
    let mut passing = 0;
    for (plan, report) in plans.iter().zip(&reports) {
        let line = match report {
            Ok(report) if report.passes => {
                passing += 1;
                format!("passes      {} {}", plan.record.id, plan.handler)
            }
            Ok(report) => format!(
                "still fails {} {}: {} {}",
                plan.record.id, plan.handler, report.replayed["errorType"], report.replayed["errorMessage"]
            ),
            Err(why) => format!("not replayed {} {}: {why}", plan.record.id, plan.handler),
        };
        println!("{line}");
    }
    println!("{passing} of {} failed invocations now pass", plans.len());
    if passing == plans.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
