//! Bad input: every problem names the file, the line and the key; all come together.

use super::*;

/// A handler table whose line 5 onwards is `body`, or global keys at line 2 onwards.
pub(super) fn handler_problems(body: &str) -> Vec<Problem> {
    let text = format!(
        "[tool.smyth]\n[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n{body}\n"
    );
    try_parse(&text).map(|_| panic!("accepted: {body}")).unwrap_err().problems().to_vec()
}

pub(super) fn global_problems(body: &str) -> Vec<Problem> {
    let text = format!("[tool.smyth]\n{body}\n{MINIMAL}");
    try_parse(&text).map(|_| panic!("accepted: {body}")).unwrap_err().problems().to_vec()
}

pub(super) fn assert_one(problems: &[Problem], line: usize, key: &str, needle: &str) {
    assert!(
        problems.iter().any(|p| p.line == line && p.key == key && p.message.contains(needle)),
        "expected line {line}, key {key}, message with {needle:?}; got {problems:#?}"
    );
}

#[test]
fn bad_handler_values() {
    let cases: &[(&str, &str, &str)] = &[
        ("concurency = 2", "concurency", "did you mean `concurrency`?"),
        ("timout = 2", "timout", "did you mean `timeout`?"),
        ("port = 1", "port", "global key"),
        ("concurrency = 0", "concurrency", "between 1 and 1000"),
        ("concurrency = -2", "concurrency", "between 1 and 1000"),
        ("concurrency = \"two\"", "concurrency", "expected an integer, found string"),
        ("concurrency = 1.5", "concurrency", "expected an integer"),
        ("timeout = -1", "timeout", "above 0"),
        ("timeout = 0", "timeout", "above 0"),
        ("timeout = \"3s\"", "timeout", "expected a number of seconds"),
        ("idle_timeout = 0", "idle_timeout", "above 0"),
        ("debugpy_port = 70000", "debugpy_port", "between 1 and 65535"),
        ("provisioned_concurrency = 2", "provisioned_concurrency", "more than"),
        ("provisioned_concurrency = -1", "provisioned_concurrency", "between 0 and 1000"),
        ("reserved_concurrency = -1", "reserved_concurrency", "between 0 and 1000"),
        ("reserved_concurrency = 2\nconcurrency = 3", "concurrency", "conflicts with reserved_concurrency"),
        ("queue_size = 0", "queue_size", "between 1 and 1000000"),
        ("maximum_retry_attempts = 3", "maximum_retry_attempts", "between 0 and 2"),
        ("retry_delay = 0", "retry_delay", "above 0"),
        ("memory_size = 64", "memory_size", "between 128 and 10240"),
        ("memory_size = 20000", "memory_size", "between 128 and 10240"),
        ("strategy = \"fastest\"", "strategy", "not one of first_warm"),
        ("event_format = \"sqs\"", "event_format", "not one of apigw-v2"),
        ("log_level = \"LOUD\"", "log_level", "not one of DEBUG"),
        ("runtime = \"node\"", "runtime", "not one of python"),
        ("runtime = \"command\"", "command", "required when runtime = \"command\""),
        ("runtime = \"command\"\ncommand = []", "command", "non-empty"),
        ("command = [\"./bootstrap\"]", "command", "only used with runtime = \"command\""),
        ("command = \"./bootstrap\"", "command", "expected an array"),
        ("env = { PORT = 5432 }", "env.PORT", "expected a string"),
        ("fake_coldstart = \"yes\"", "fake_coldstart", "expected a boolean"),
        ("on_success = \"handler:nope\"", "on_success", "names no handler of this project"),
        ("on_failure = \"sqs:queue\"", "on_failure", "use \"handler:NAME\" or \"file:PATH\""),
        ("on_failure = \"file:../out.jsonl\"", "on_failure", "relative path inside the project"),
        ("tenant_isolation = \"yes\"", "tenant_isolation", "expected a boolean"),
        ("provisioned_concurrency = 1\ntenant_isolation = true", "tenant_isolation", "provisioned concurrency"),
        ("event_format = \"function-url\"\ntenant_isolation = true", "tenant_isolation", "function URLs"),
        ("tenant_isolation = true\ntenant_id_header = \"x tenant\"", "tenant_id_header", "not an HTTP header"),
        ("tenant_id_header = \"x-org\"", "tenant_id_header", "only means something with tenant_isolation"),
        (
            "strategy_generator_path = \"my.strategies.fastest\"",
            "strategy_generator_path",
            "accepted: \"smyth.runner.strategy.first_warm\", \"smyth.runner.strategy.round_robin\"",
        ),
        (
            "strategy_function_path = \"my.strategies.fastest\"",
            "strategy_function_path",
            "smyth.runner.strategy.round_robin",
        ),
        (
            "event_data_function_path = \"my.events.sqs\"",
            "event_data_function_path",
            "accepted: \"smyth.event.generate_api_gw_v2_event_data\", \"smyth.event.generate_lambda_invocation_event_data\"",
        ),
        (
            "context_data_function_path = \"my.context\"",
            "context_data_function_path",
            "accepted: \"smyth.context.generate_context_data\"",
        ),
        ("log_format = \"xml\"", "log_format", "not one of Text, JSON"),
        ("application_log_level = \"DEBUG\"", "application_log_level", "needs log_format = \"JSON\""),
        ("log_format = \"Text\"\nsystem_log_level = \"WARN\"", "system_log_level", "needs log_format"),
        ("log_format = \"JSON\"\napplication_log_level = \"LOUD\"", "application_log_level", "not one of TRACE"),
        ("log_format = \"JSON\"\nsystem_log_level = \"ERROR\"", "system_log_level", "DEBUG, INFO, WARN"),
        (
            "strategy = \"first_warm\"\nstrategy_function_path = \"smyth.runner.strategy.round_robin\"",
            "strategy_function_path",
            "`strategy` says first_warm",
        ),
    ];
    for (body, key, needle) in cases {
        let problems = handler_problems(body);
        // The offending key is on the last line of the body.
        let line = 4 + body.lines().count();
        assert_one(&problems, line, &format!("handlers.h.{key}"), needle);
    }
}

#[test]
fn bad_required_keys_and_patterns() {
    let text = "[tool.smyth.handlers.h]\nhandler_path = \"app\"\n\
                [tool.smyth.handlers.g]\nurl_path = \"/g/{id:integer}\"\n\
                [tool.smyth.handlers.f]\nhandler_path = \"app.f\"\nurl_path = \"f\"\n";
    let problems = try_parse(text).unwrap_err().problems().to_vec();
    assert_one(&problems, 1, "handlers.h.url_path", "required");
    assert_one(&problems, 2, "handlers.h.handler_path", "not `module.function`");
    assert_one(&problems, 3, "handlers.g.handler_path", "required");
    assert_one(&problems, 4, "handlers.g.url_path", "unknown converter `integer`");
    assert_one(&problems, 7, "handlers.f.url_path", "must start with `/`");
}

#[test]
fn bad_global_values() {
    let cases: &[(&str, &str, &str)] = &[
        ("prot = 8080", "prot", "did you mean `port`?"),
        ("concurrency = 2", "concurrency", "handler key"),
        ("port = 70000", "port", "between 0 and 65535"),
        ("port = -1", "port", "between 0 and 65535"),
        ("port = \"80\"", "port", "expected an integer"),
        ("log_level = \"verbose\"", "log_level", "not one of DEBUG"),
        ("log_format = \"yaml\"", "log_format", "not one of text, json"),
        ("account_concurrency = 0", "account_concurrency", "between 1 and 100000"),
        ("reload = \"no\"", "reload", "expected a boolean"),
        ("python_path = \"src\"", "python_path", "expected an array"),
        ("smyth_path_prefix = \"smyth\"", "smyth_path_prefix", "must start with `/`"),
        ("smyth_path_prefix = \"/_s{x\"", "smyth_path_prefix", "only letters, digits"),
        ("smyth_path_prefix = \"/a'b\"", "smyth_path_prefix", "only letters, digits"),
        ("env_file = \"missing.env\"", "env_file", "file not found"),
        ("host = \"\"", "host", "must not be empty"),
        ("env = { \"A=B\" = \"x\" }", "env", "not a valid variable name"),
    ];
    for (body, key, needle) in cases {
        assert_one(&global_problems(body), 2, key, needle);
    }
}

#[test]
fn duplicate_url_paths() {
    let text = "[tool.smyth.handlers.a]\nhandler_path = \"app.a\"\nurl_path = \"/items/{id}\"\n\
                [tool.smyth.handlers.b]\nhandler_path = \"app.b\"\nurl_path = \"/items/{id}\"\n\
                [tool.smyth.handlers.c]\nhandler_path = \"app.c\"\nurl_path = \"/items/{key:str}\"\n\
                [tool.smyth.handlers.d]\nhandler_path = \"app.d\"\nurl_path = \"/items/{id:int}\"\n";
    let problems = try_parse(text).unwrap_err().problems().to_vec();
    assert_one(&problems, 6, "handlers.b.url_path", "same route as handler `a` (line 3)");
    assert_one(&problems, 9, "handlers.c.url_path", "same route as handler `a` (line 3)");
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn all_problems_are_reported_together() {
    let text = r#"[tool.smyth]
prot = 8080
log_level = "LOUD"

[tool.smyth.handlers.orders]
handler_path = "app.orders"
url_path = "/orders"
concurency = 2
timeout = -3

[tool.smyth.handlers.products]
handler_path = "app.products"
url_path = "/products/{id:int}"
concurrency = "many"
strategy_function_path = "my.own.strategy"
"#;
    let err = try_parse(text).unwrap_err();
    let shown = err.to_string();
    let expected = [
        (2, "prot"),
        (3, "log_level"),
        (8, "handlers.orders.concurency"),
        (9, "handlers.orders.timeout"),
        (14, "handlers.products.concurrency"),
        (15, "handlers.products.strategy_function_path"),
    ];
    assert!(shown.starts_with(&format!("6 problems in {SOURCE}:")), "{shown}");
    for (line, key) in expected {
        let wanted = format!("{SOURCE}:{line}: key `{key}`: ");
        assert!(shown.contains(&wanted), "{wanted} in\n{shown}");
    }
    let lines: Vec<_> = err.problems().iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 3, 8, 9, 14, 15]);
}

#[test]
fn syntax_errors_name_the_line() {
    let err = try_parse("[tool.smyth]\nport = 80\nhost = \n").unwrap_err();
    assert_eq!(err.problems()[0].line, 3, "{err}");
    assert!(err.to_string().contains("invalid TOML"), "{err}");
}

#[test]
fn missing_tables() {
    let err = try_parse("[tool.black]\nline-length = 100\n").unwrap_err();
    assert!(err.to_string().contains("no [tool.smyth] table"), "{err}");
    let err = try_parse("[tool.smyth]\nport = 8080\n").unwrap_err();
    assert_one(err.problems(), 1, "handlers", "no handlers configured");
    let err = try_parse("[tool.smyth]\n[tool.smyth.handlers]\n").unwrap_err();
    assert_one(err.problems(), 2, "handlers", "no handlers configured");
    let err = try_parse("[tool.smyth]\nhandlers = 3\n").unwrap_err();
    assert_one(err.problems(), 2, "handlers", "expected a table");
    let err = try_parse("[tool.smyth.handlers]\nh = \"app.h\"\n").unwrap_err();
    assert_one(err.problems(), 2, "handlers.h", "expected a table");
}

#[test]
fn bad_handler_names() {
    let text = "[tool.smyth.handlers.\"my orders\"]\nhandler_path = \"app.a\"\nurl_path = \"/a\"\n";
    let err = try_parse(text).unwrap_err();
    assert!(err.problems()[0].message.contains("AWS function name"), "{err}");
}
