//! smyth's own endpoints: the live dashboard in a real browser (headless Chromium) and the
//! Prometheus metrics.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{pyproject, Server};

const APP: &str = "def handler(event, context):\n    return {'ok': True}\n";

fn serve() -> Server {
    let config = pyproject(
        "[tool.smyth.handlers.dash]\nhandler_path = \"app.handler\"\nurl_path = \"/dash\"\nconcurrency = 2\n",
    );
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

/// The page's DOM after its scripts ran, as headless Chromium renders it.
fn rendered_dom(url: &str) -> Option<String> {
    let Ok(browser) = std::env::var("SMYTH_TEST_BROWSER") else {
        eprintln!("skipped: SMYTH_TEST_BROWSER (the Chromium `make test` installs) is not set");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_dashboard_shows_live_workers_in_a_browser() {
    let server = serve();
    assert_eq!(server.get("/dash").status, 200);
    server.wait_for("the warm worker's first memory sample", Duration::from_secs(5), || {
        server.workers("dash")[0]["rss_mb"].is_number()
    });
    let Some(dom) = rendered_dom(&server.url("/_smyth/")) else { return };
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
    assert!(reply.header("content-type").unwrap().starts_with("text/plain"), "{reply:?}");
    for line in [
        "smyth_invocations_total{handler=\"dash\",worker=\"dash:0\"} 3",
        "smyth_cold_starts_total{handler=\"dash\",worker=\"dash:0\"} 1",
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
