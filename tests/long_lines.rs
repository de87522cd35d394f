//! One enormous log line: cut at 256 KB (CloudWatch's event limit) with a mark saying how much was
//! dropped, and the server's memory back under 64 MB afterwards.

mod common;

use std::time::Duration;

use common::{pyproject, rss_kb, Server};

const APP: &str = r#"
import sys

def handler(event, context):
    sys.stdout.write("before\n")
    sys.stdout.write("x" * 50_000_000)
    sys.stdout.write("\nafter\n")
    sys.stdout.flush()
    return {"ok": True}
"#;

const LIMIT_KB: u64 = 64 * 1024;

fn serve() -> Server {
    let config =
        pyproject("[tool.smyth.handlers.big]\nhandler_path = \"app.handler\"\nurl_path = \"/big\"\n");
    Server::start(&[("pyproject.toml", &config), ("app.py", APP)])
}

#[test]
fn a_50_mb_log_line_is_cut_with_a_mark_and_the_lines_around_it_survive() {
    let server = serve();
    assert_eq!(server.get("/big").status, 200);
    server.wait_for("the line after the long one", Duration::from_secs(10), || {
        server.log().contains("| after")
    });
    let log = server.log();
    assert!(log.contains("| before"), "{}", &log[..log.len().min(2000)]);
    let long = log.lines().find(|line| line.contains("xxxx")).unwrap();
    let kept = long.matches('x').count();
    assert_eq!(kept, 256 * 1024, "the line keeps exactly 256 KB");
    assert!(
        long.ends_with(&format!("… [truncated {} bytes]", 50_000_000 - 256 * 1024)),
        "{}",
        &long[long.len() - 80..]
    );
}

#[test]
fn the_server_stays_under_64_mb_after_a_50_mb_log_line() {
    let server = serve();
    for _ in 0..2 {
        assert_eq!(server.get("/big").status, 200);
    }
    server.wait_for("the line after the long one", Duration::from_secs(10), || {
        server.log().matches("| after").count() == 2
    });
    // Polled (bounded), without dumping a log that may hold the whole line on failure.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut rss = rss_kb(server.pid());
    while rss >= LIMIT_KB && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        rss = rss_kb(server.pid());
    }
    assert!(rss < LIMIT_KB, "the server holds {rss} kB after the long lines");
}
