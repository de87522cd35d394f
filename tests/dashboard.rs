//! smyth's own endpoints: the live dashboard in a real browser (headless Chromium) — workers, metrics,
//! failures and backoff, 50 handlers in config order — and the Prometheus metrics.

mod common;

use std::time::Duration;

use common::{pyproject, Server};

const APP: &str = "def handler(event, context):\n    return {'ok': True}\n";

fn serve() -> Server {
    let config = pyproject(
        "[tool.smyth.handlers.dash]\nhandler_path = \"app.handler\"\nurl_path = \"/dash\"\nconcurrency = 2\n",
    );
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

#[test]
fn the_dashboard_shows_live_workers_in_a_browser() {
    let server = serve();
    assert_eq!(server.get("/dash").status, 200);
    server.wait_for("the warm worker's first memory sample", Duration::from_secs(5), || {
        server.workers("dash")[0]["rss_mb"].is_number()
    });
    let Some(dom) = common::tools::rendered_dom(&server.url("/_smyth/")) else { return };
    assert!(dom.contains("data-worker=\"dash:0\""), "{dom}");
    assert!(dom.contains("data-worker=\"dash:1\""), "{dom}");
    assert!(dom.contains("class=\"state warm\">warm<"), "{dom}");
    assert!(dom.contains("class=\"state cold\">cold<"), "{dom}");
    assert!(dom.contains("/dash · first_warm · concurrency 2"), "{dom}");
    assert!(dom.contains("<div id=\"error\"></div>"), "the status fetch failed: {dom}");
    // Memory and CPU: measured for the live worker, a dash for the cold one.
    let warm = cell(&row(&dom, "dash:0"), "rss");
    let mb: f64 = warm.strip_suffix(" MB").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{warm}"));
    assert!(mb > 0.0, "{warm}");
    assert!(cell(&row(&dom, "dash:0"), "cpu").ends_with(" %"), "{dom}");
    assert_eq!(cell(&row(&dom, "dash:1"), "rss"), "–");
    assert_eq!(cell(&row(&dom, "dash:1"), "cpu"), "–");
}

/// The table row of one worker.
fn row(dom: &str, worker: &str) -> String {
    let start =
        dom.find(&format!("data-worker=\"{worker}\"")).unwrap_or_else(|| panic!("no {worker}: {dom}"));
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    dom[start..end].to_string()
}

/// The text of the row's cell with class `class`.
fn cell(row: &str, class: &str) -> String {
    let open = format!("<td class=\"{class}\">");
    let start = row.find(&open).unwrap_or_else(|| panic!("no {class} cell in {row}")) + open.len();
    let end = row[start..].find("</td>").unwrap();
    row[start..start + end].to_string()
}

#[test]
fn metrics_are_prometheus_text() {
    let server = serve();
    for _ in 0..3 {
        assert_eq!(server.get("/dash").status, 200);
    }
    let reply = server.get("/_smyth/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("application/openmetrics-text"), "{reply:?}");
    for line in [
        "smyth_invocations_total{handler=\"dash\"} 3",
        "smyth_worker_invocations_total{handler=\"dash\",worker=\"dash:0\"} 3",
        "smyth_worker_cold_starts_total{handler=\"dash\",worker=\"dash:0\"} 1",
        "smyth_workers{handler=\"dash\",state=\"warm\"} 1",
        "smyth_workers{handler=\"dash\",state=\"cold\"} 1",
        "smyth_queued_requests{handler=\"dash\"} 0",
    ] {
        assert!(reply.body.lines().any(|l| l == line), "missing `{line}` in\n{}", reply.body);
    }
    server.wait_for("an RSS gauge for the warm worker", Duration::from_secs(5), || {
        let body = server.get("/_smyth/metrics").body;
        body.lines().any(|l| {
            l.strip_prefix("smyth_worker_rss_bytes{handler=\"dash\",worker=\"dash:0\"} ")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|bytes| bytes > 1_000_000)
        }) && !body.contains("smyth_worker_rss_bytes{handler=\"dash\",worker=\"dash:1\"}")
    });
}

const FAILING: &str =
    "def boom(event, context):\n    raise ValueError('<img src=x onerror=alert(1)> & more')\n";

#[test]
fn the_dashboard_shows_failures_and_backoff() {
    let config = pyproject(
        "[tool.smyth.handlers.boom]\nhandler_path = \"app.boom\"\nurl_path = \"/boom\"\n\n\
         [tool.smyth.handlers.broken]\nhandler_path = \"missing_module.handler\"\nurl_path = \"/broken\"\n",
    );
    let server = Server::start(&[("pyproject.toml", &config), ("app.py", FAILING)]);
    assert_eq!(server.get("/boom").status, 502);
    assert_eq!(server.get("/broken").status, 502);
    let Some(dom) = common::tools::rendered_dom(&server.url("/_smyth/")) else { return };
    let boom = row(&dom, "boom:0");
    assert!(boom.contains("<span class=\"error-type\">ValueError</span>"), "{boom}");
    // The message is text, never markup: its `<img>` is escaped, not an element.
    assert!(boom.contains("&lt;img src=x onerror=alert(1)&gt; &amp; more"), "{boom}");
    assert!(!dom.contains("<img"), "{dom}");
    let broken = row(&dom, "broken:0");
    assert!(broken.starts_with("data-worker=\"broken:0\" class=\"backoff\""), "{broken}");
    assert!(broken.contains("class=\"state backoff\">backoff<"), "{broken}");
    assert!(broken.contains("<span class=\"error-type\">Runtime.ImportModuleError</span>"), "{broken}");
    assert!(broken.contains("next try "), "{broken}");
    // Each handler's metrics line.
    assert!(
        dom.contains(
            "<span>invocations 1</span> · <span class=\"bad\">errors 1</span> · <span>throttles 0</span>"
        ),
        "{dom}"
    );
}

#[test]
fn the_dashboard_lists_fifty_handlers_in_config_order() {
    // Names whose config order is not their alphabetical order.
    let names: Vec<String> = (0..50).map(|i| format!("fn{:02}", (i * 7) % 50)).collect();
    let handlers: String = names
        .iter()
        .map(|n| {
            format!("[tool.smyth.handlers.{n}]\nhandler_path = \"app.handler\"\nurl_path = \"/{n}\"\n\n")
        })
        .collect();
    let server = Server::start(&[("pyproject.toml", &pyproject(&handlers)), ("app.py", APP)]);
    assert_eq!(server.get("/fn07").status, 200);
    let Some(dom) = common::tools::rendered_dom(&server.url("/_smyth/")) else { return };
    let sections: Vec<usize> = names
        .iter()
        .map(|n| {
            dom.find(&format!("<section id=\"handler-{n}\" data-handler=\"{n}\">"))
                .unwrap_or_else(|| panic!("no {n}: {dom}"))
        })
        .collect();
    assert!(sections.windows(2).all(|w| w[0] < w[1]), "handlers out of config order: {names:?}");
    for name in &names {
        assert!(dom.contains(&format!("data-worker=\"{name}:0\"")), "no worker of {name}");
        assert!(dom.contains(&format!("href=\"#handler-{name}\">{name}</a>")), "no summary line for {name}");
    }
    // The one invoked handler's chart has its one point.
    assert!(dom.contains("<canvas class=\"chart\" width=\"240\" height=\"36\" data-points=\"1\">"), "{dom}");
}
