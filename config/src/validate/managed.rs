//! The Lambda Managed Instances keys (`managed_instances`, `max_concurrency`), kept apart because
//! their rules tie them to other keys: AWS runs these functions with JSON logs, no provisioned
//! concurrency, and environments that live on (so `always_cold` cannot apply).

use super::Check;
use crate::limits::MAX_MANAGED_CONCURRENCY;
use crate::model::{LogFormat, ManagedInstances, Strategy};
use crate::raw::RawHandler;

/// Invocations one environment serves at once when `max_concurrency` is not set: enough to show
/// overlap, few enough processes for a laptop (AWS's default is 16 per vCPU).
pub const DEFAULT_MAX_CONCURRENCY: i64 = 4;

/// The handler's managed-instances settings, with every conflict reported.
pub fn managed_instances(
    check: &mut Check<'_>,
    r: &RawHandler,
    strategy: Strategy,
    provisioned: usize,
    log_format: Option<LogFormat>,
) -> Option<ManagedInstances> {
    let managed = r.managed_instances.as_ref().is_some_and(|m| *m.get_ref());
    let max_concurrency =
        check.int(&r.max_concurrency, "max_concurrency", 1, MAX_MANAGED_CONCURRENCY, DEFAULT_MAX_CONCURRENCY);
    if !managed {
        if let Some(m) = &r.max_concurrency {
            check.bad(m, "max_concurrency", "applies only with managed_instances = true");
        }
        return None;
    }
    let key = r.managed_instances.as_ref().expect("managed is set");
    if provisioned > 0 {
        check.bad(
            key,
            "managed_instances",
            "AWS has no provisioned concurrency for managed instances: drop provisioned_concurrency",
        );
    }
    if strategy == Strategy::AlwaysCold {
        check.bad(
            key,
            "managed_instances",
            "an environment of managed instances lives on: strategy = \"always_cold\" cannot apply",
        );
    }
    if log_format == Some(LogFormat::Text) {
        check.bad(key, "managed_instances", "managed instances always log JSON: drop log_format = \"Text\"");
    }
    Some(ManagedInstances { max_concurrency: max_concurrency as usize })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    fn parse(keys: &str) -> Result<crate::Config, String> {
        let text = format!("[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n{keys}\n");
        crate::parse_str(&text, Path::new("/nonexistent/pyproject.toml"), &BTreeMap::new())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn managed_instances_take_max_concurrency_with_a_default() {
        let managed = |keys| parse(keys).unwrap().handlers[0].managed_instances.map(|m| m.max_concurrency);
        assert_eq!(managed(""), None);
        assert_eq!(managed("managed_instances = false"), None);
        assert_eq!(managed("managed_instances = true"), Some(4));
        assert_eq!(managed("managed_instances = true\nmax_concurrency = 8"), Some(8));
        let config = parse("managed_instances = true\nmax_concurrency = 3\nconcurrency = 2").unwrap();
        assert_eq!(config.handlers[0].capacity(), 6);
    }

    #[test]
    fn conflicts_are_errors_that_name_the_key() {
        let cases = [
            ("max_concurrency = 2", "applies only with managed_instances"),
            ("managed_instances = true\nmax_concurrency = 0", "between 1 and 64"),
            ("managed_instances = true\nmax_concurrency = 65", "between 1 and 64"),
            ("managed_instances = true\nprovisioned_concurrency = 1", "no provisioned concurrency"),
            ("managed_instances = true\nstrategy = \"always_cold\"", "always_cold"),
            ("managed_instances = true\nlog_format = \"Text\"", "always log JSON"),
        ];
        for (keys, expected) in cases {
            let err = parse(keys).unwrap_err();
            assert!(err.contains(expected), "{keys}: {err}");
        }
    }
}
