//! The `snap_start` key and what AWS does not combine it with: SnapStart has no provisioned
//! concurrency (docs: snapstart, "Supported features and limitations"), and a managed-instances
//! environment never cold-starts on the request path, so there is nothing to restore.
//! (Tenant isolation refuses SnapStart in `tenancy.rs`, beside its other refusals.)

use super::Check;
use crate::raw::RawHandler;

/// Whether the handler uses SnapStart, with every conflict reported.
pub fn snap_start(check: &mut Check<'_>, r: &RawHandler, provisioned: usize) -> bool {
    let Some(on) = r.snap_start.as_ref().filter(|on| *on.get_ref()) else { return false };
    if provisioned > 0 {
        check.bad(on, "snap_start", "AWS does not allow SnapStart together with provisioned_concurrency");
    }
    if r.managed_instances.as_ref().is_some_and(|m| *m.get_ref()) {
        check.bad(
            on,
            "snap_start",
            "managed_instances = true has no cold starts to restore: drop snap_start",
        );
    }
    true
}

#[cfg(test)]
mod tests {
    fn error(keys: &str) -> Option<String> {
        let text = format!("[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n{keys}\n");
        crate::parse_str(&text, std::path::Path::new("/nonexistent/pyproject.toml"), &Default::default())
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn snap_start_refuses_what_aws_refuses() {
        assert_eq!(error("snap_start = true"), None);
        assert_eq!(error("snap_start = false\nprovisioned_concurrency = 1"), None);
        for (keys, other) in [
            ("snap_start = true\nprovisioned_concurrency = 1", "provisioned_concurrency"),
            ("snap_start = true\nmanaged_instances = true", "managed_instances"),
            ("snap_start = true\ntenant_isolation = true", "tenant_isolation"),
        ] {
            let err = error(keys).unwrap_or_default();
            assert!(err.contains("snap_start") || err.contains("SnapStart"), "{keys}: {err}");
            assert!(err.contains(other), "{keys}: {err}");
        }
    }
}
