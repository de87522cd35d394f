//! The config model from inline TOML strings.

mod bounds;
mod config_md;
mod discovery;
mod env;
mod errors;
mod readme;
mod recording;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::*;

/// A project root that does not exist: no `.env`, no `.venv`.
const SOURCE: &str = "/nonexistent/proj/pyproject.toml";

fn try_parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new(SOURCE), &BTreeMap::new())
}

fn parse(text: &str) -> Config {
    try_parse(text).unwrap_or_else(|e| panic!("{e}"))
}

const MINIMAL: &str = r#"
[tool.smyth.handlers.orders]
handler_path = "app.handlers.order_handler"
url_path = "/orders/{path:path}"
"#;

#[test]
fn every_default() {
    let c = parse(MINIMAL);
    assert_eq!(c.source, Path::new(SOURCE));
    assert_eq!(c.root, Path::new("/nonexistent/proj"));
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8080);
    assert_eq!(c.log_level, "INFO");
    assert_eq!(c.smyth_path_prefix, "/_smyth");
    assert!(c.env.is_empty());
    assert_eq!(c.env_file, None);
    assert!(c.env_file_vars.is_empty());
    assert_eq!(c.python, "python3");
    assert!(c.python_path.is_empty());
    assert!(c.reload);
    assert_eq!(c.account_concurrency, 1000);

    let [h] = c.handlers.as_slice() else { panic!("one handler") };
    assert_eq!(h.name, "orders");
    assert_eq!(h.handler_path, "app.handlers.order_handler");
    assert_eq!(h.url_path, "/orders/{path:path}");
    assert_eq!(h.route.as_str(), "/orders/{path:path}");
    assert_eq!(h.timeout, Duration::from_secs(3));
    assert_eq!(h.concurrency, 1);
    assert_eq!(h.reserved_concurrency, None);
    assert_eq!(h.provisioned_concurrency, 0);
    assert_eq!(h.strategy, Strategy::FirstWarm);
    assert_eq!(h.memory_size, 128);
    assert_eq!(h.idle_timeout, None);
    assert_eq!(h.debugpy_port, None);
    assert!(!h.snap_start);
    assert_eq!(h.event_format, EventFormat::ApiGwV2);
    assert_eq!(h.runtime, Runtime::Python);
    assert_eq!(h.log_level, "INFO");
    assert_eq!(h.queue_size, 1000);
    assert_eq!(h.maximum_retry_attempts, 2);
    assert_eq!(h.retry_delay, Duration::from_secs(60));
    assert!(h.env.is_empty());
}

#[test]
fn every_key() {
    let c = parse(
        r#"
[tool.smyth]
host = "0.0.0.0"
port = 9000
log_level = "debug"
smyth_path_prefix = "/smyth/"
env = { STAGE = "dev" }
python = "/opt/py/bin/python3"
python_path = ["src", "lib"]
reload = false
account_concurrency = 50
log_format = "json"

[tool.smyth.handlers.orders]
handler_path = "app.handlers.order_handler"
url_path = "/orders/{id:int}"
timeout = 1.5
concurrency = 4
provisioned_concurrency = 2
queue_size = 10
maximum_retry_attempts = 0
retry_delay = 0.25
strategy = "least_recently_used"
memory_size = 512
idle_timeout = 60
debugpy_port = 5678
event_format = "alb"
runtime = "awslambdaric"
log_level = "warning"
log_format = "json"
application_log_level = "warn"
system_log_level = "WARN"
env = { TABLE = "orders" }

[tool.smyth.handlers.custom]
handler_path = "bin/bootstrap.handler"
url_path = "/custom"
reserved_concurrency = 3
snap_start = true
runtime = "command"
command = ["./bootstrap", "--fast"]
"#,
    );
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.port, 9000);
    assert_eq!(c.log_level, "DEBUG");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.smyth_path_prefix, "/smyth");
    assert_eq!(c.env, BTreeMap::from([("STAGE".into(), "dev".into())]));
    assert_eq!(c.python, "/opt/py/bin/python3");
    assert_eq!(c.python_path, [Path::new("/nonexistent/proj/src"), Path::new("/nonexistent/proj/lib")]);
    assert!(!c.reload);
    assert_eq!(c.account_concurrency, 50);

    let h = c.handler("orders").unwrap();
    assert_eq!(h.route.matches("/orders/7"), Some(vec![("id".into(), "7".into())]));
    assert_eq!(h.timeout, Duration::from_millis(1500));
    assert_eq!(h.concurrency, 4);
    assert_eq!(h.provisioned_concurrency, 2);
    assert_eq!(h.queue_size, 10);
    assert_eq!(h.maximum_retry_attempts, 0);
    assert_eq!(h.retry_delay, Duration::from_millis(250));
    assert_eq!(h.strategy, Strategy::LeastRecentlyUsed);
    assert_eq!(h.memory_size, 512);
    assert_eq!(h.idle_timeout, Some(Duration::from_secs(60)));
    assert_eq!(h.debugpy_port, Some(5678));
    assert!(!h.snap_start);
    assert_eq!(h.event_format, EventFormat::Alb);
    assert_eq!(h.runtime, Runtime::Awslambdaric);
    assert_eq!(h.log_level, "WARNING");
    assert_eq!(
        h.logging,
        FunctionLogging {
            format: Some(LogFormat::Json),
            application_log_level: Some("WARN".into()),
            system_log_level: Some("WARN".into()),
        }
    );
    assert_eq!(h.env, BTreeMap::from([("TABLE".into(), "orders".into())]));

    let h = c.handler("custom").unwrap();
    assert_eq!(h.handler_path, "bin/bootstrap.handler");
    assert_eq!(h.reserved_concurrency, Some(3));
    assert_eq!(h.concurrency, 3);
    assert!(h.snap_start);
    assert_eq!(h.runtime, Runtime::Command(vec!["./bootstrap".into(), "--fast".into()]));
}

#[test]
fn every_value_of_the_enums() {
    for s in Strategy::ALL {
        let c = parse(&format!("{MINIMAL}strategy = \"{}\"\n", s.as_str()));
        assert_eq!(c.handlers[0].strategy, s);
    }
    for f in [EventFormat::ApiGwV2, EventFormat::ApiGwV1, EventFormat::Alb, EventFormat::Raw] {
        let c = parse(&format!("{MINIMAL}event_format = \"{}\"\n", f.as_str()));
        assert_eq!(c.handlers[0].event_format, f);
    }
}

#[test]
fn smyths_own_keys() {
    // The configs of Smyth's docs, unchanged.
    let c = parse(
        r#"
[tool.smyth]
host = "0.0.0.0"
port = 8080
log_level = "INFO"
smyth_path_prefix = "/smyth"

[tool.smyth.handlers.order_handler]
handler_path = "smyth_test_app.handlers.order_handler"
url_path = "/orders/{path:path}"
timeout = 1
concurrency = 2
event_data_function_path = "smyth.event.generate_api_gw_v2_event_data"
context_data_function_path = "smyth.context.generate_context_data"
strategy_generator_path = "smyth.runner.strategy.first_warm"
log_level = "DEBUG"

[tool.smyth.handlers.product_handler]
handler_path = "smyth_test_app.handlers.product_handler"
url_path = "/products/{path:path}"
concurrency = 2
fake_coldstart = true
strategy_function_path = "smyth.runner.strategy.round_robin"

[tool.smyth.handlers.invoked]
handler_path = "smyth_test_app.handlers.invoked"
url_path = "/invoke"
event_data_function_path = "smyth.event.generate_lambda_invocation_event_data"
"#,
    );
    assert_eq!(c.smyth_path_prefix, "/smyth");
    let names: Vec<_> = c.handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["order_handler", "product_handler", "invoked"]);
    assert_eq!(c.handlers[0].strategy, Strategy::FirstWarm);
    assert_eq!(c.handlers[0].event_format, EventFormat::ApiGwV2);
    assert_eq!(c.handlers[0].log_level, "DEBUG");
    assert_eq!(c.handlers[1].strategy, Strategy::RoundRobin);
    assert_eq!(c.handlers[2].event_format, EventFormat::Raw);

    // Smyth's keys and ours may both be given when they agree.
    let c = parse(&format!(
        "{MINIMAL}strategy = \"round_robin\"\nstrategy_function_path = \"smyth.runner.strategy.round_robin\"\n\
         event_format = \"raw\"\nevent_data_function_path = \"smyth.event.generate_lambda_invocation_event_data\"\n"
    ));
    assert_eq!(c.handlers[0].strategy, Strategy::RoundRobin);
    assert_eq!(c.handlers[0].event_format, EventFormat::Raw);
}

#[test]
fn reserved_concurrency_sets_the_pool() {
    let h = |extra: &str| parse(&format!("{MINIMAL}{extra}")).handlers[0].clone();
    let zero = h("reserved_concurrency = 0\n");
    assert_eq!((zero.concurrency, zero.reserved_concurrency), (0, Some(0)));
    let three = h("reserved_concurrency = 3\n");
    assert_eq!((three.concurrency, three.reserved_concurrency), (3, Some(3)));
    let same = h("reserved_concurrency = 3\nconcurrency = 3\nprovisioned_concurrency = 3\n");
    assert_eq!((same.concurrency, same.provisioned_concurrency), (3, 3));
}

#[test]
fn handlers_keep_file_order() {
    let mut text = String::new();
    for name in ["zeta", "alpha", "mid"] {
        text.push_str(&format!(
            "[tool.smyth.handlers.{name}]\nhandler_path = \"app.{name}\"\nurl_path = \"/{name}\"\n"
        ));
    }
    let names: Vec<_> = parse(&text).handlers.into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn smyth_toml_has_the_keys_at_top_level() {
    let text = "port = 9001\n[handlers.a]\nhandler_path = \"app.a\"\nurl_path = \"/a\"\n";
    let c = parse_str(text, Path::new("/nonexistent/proj/smyth.toml"), &BTreeMap::new()).unwrap();
    assert_eq!(c.port, 9001);
    assert_eq!(c.handlers[0].name, "a");
}

#[test]
fn describe_lists_globals_and_one_line_per_handler() {
    let c = parse(&format!(
        "{MINIMAL}concurrency = 2\nprovisioned_concurrency = 1\n\
         [tool.smyth.handlers.t]\nhandler_path = \"app.t\"\nurl_path = \"/t\"\nreserved_concurrency = 0\n"
    ));
    let out = c.describe();
    assert!(out.contains("http://127.0.0.1:8080"), "{out}");
    assert!(out.contains("python   python3"), "{out}");
    let orders = out.lines().find(|l| l.contains("orders")).unwrap();
    for part in [
        "/orders/{path:path}",
        "app.handlers.order_handler",
        "concurrency=2",
        "provisioned=1",
        "strategy=first_warm",
        "timeout=3s",
    ] {
        assert!(orders.contains(part), "{part} in {orders}");
    }
    let t = out.lines().find(|l| l.contains("app.t")).unwrap();
    assert!(t.contains("concurrency=0 reserved=0"), "{t}");
}

#[test]
fn debugging_gives_each_handler_one_untimed_worker() {
    let c = parse(
        r#"
[tool.smyth.handlers.a]
handler_path = "app.a"
url_path = "/a"
concurrency = 4
provisioned_concurrency = 2
strategy = "round_robin"
timeout = 1
idle_timeout = 5

[tool.smyth.handlers.b]
handler_path = "app.b"
url_path = "/b"
reserved_concurrency = 0
"#,
    )
    .for_debugging();
    assert!(c.debug);
    for h in &c.handlers {
        assert_eq!(
            (h.concurrency, h.reserved_concurrency, h.provisioned_concurrency),
            (1, None, 0),
            "{}",
            h.name
        );
        assert_eq!(h.strategy, Strategy::FirstWarm);
        assert!(h.timeout >= Duration::from_secs(3600));
        assert_eq!(h.idle_timeout, None);
    }
}

#[test]
fn destinations_name_handlers_and_project_files() {
    let c = parse(&format!(
        "{MINIMAL}on_success = \"handler:audit\"\non_failure = \"file:failed.jsonl\"\n\n\
         [tool.smyth.handlers.audit]\nhandler_path = \"app.audit\"\nurl_path = \"/audit\"\n\
         on_failure = \"arn:aws:lambda:us-east-1:123456789012:function:orders\"\n"
    ));
    assert_eq!(c.handlers[0].on_success, Some(Destination::Handler("audit".into())));
    assert_eq!(c.handlers[0].on_failure, Some(Destination::File("/nonexistent/proj/failed.jsonl".into())));
    assert_eq!(c.handlers[1].on_success, None);
    assert_eq!(c.handlers[1].on_failure, Some(Destination::Handler("orders".into())));
}
