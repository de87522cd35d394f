//! The tenant isolation keys (`tenant_isolation`, `tenant_id_header`) and what AWS refuses beside
//! them: provisioned concurrency, function URLs and SnapStart.

use toml::Spanned;

use super::Check;
use crate::model::EventFormat;
use crate::raw::RawHandler;

/// The header that carries the tenant id on `url_path` routes unless `tenant_id_header` says otherwise.
pub const DEFAULT_TENANT_ID_HEADER: &str = "x-tenant-id";

/// An HTTP header name (RFC 9110 `token`), lower-cased as the edge compares them.
fn header_name(value: &str) -> Result<String, String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !value.is_empty() && value.chars().all(token) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!("`{value}` is not an HTTP header name"))
    }
}

impl Check<'_> {
    /// The tenant id header when `tenant_isolation` is on (None when off), after the combinations AWS
    /// refuses.
    pub(super) fn tenancy(
        &mut self,
        r: &RawHandler,
        provisioned: usize,
        event_format: EventFormat,
    ) -> Option<String> {
        let header = r
            .tenant_id_header
            .as_ref()
            .and_then(|h| header_name(h.get_ref()).map_err(|msg| self.bad(h, "tenant_id_header", msg)).ok());
        let isolation = r.tenant_isolation.as_ref().filter(|on| *on.get_ref());
        let Some(on) = isolation else {
            if let Some(h) = &r.tenant_id_header {
                self.bad(h, "tenant_id_header", "only means something with tenant_isolation = true");
            }
            return None;
        };
        if provisioned > 0 {
            self.refuse(on, "provisioned concurrency (provisioned_concurrency)");
        }
        if event_format == EventFormat::FunctionUrl {
            self.refuse(on, "function URLs (event_format = \"function-url\")");
        }
        if r.managed_instances.as_ref().is_some_and(|m| *m.get_ref()) {
            let msg = "cannot be combined with managed_instances here: a managed environment serves \
                       several invocations at once, so smyth cannot keep its tenants apart";
            self.bad(on, "tenant_isolation", msg);
        }
        if r.snap_start.as_ref().is_some_and(|s| *s.get_ref()) {
            self.refuse(on, "SnapStart (snap_start)");
        }
        Some(header.unwrap_or_else(|| DEFAULT_TENANT_ID_HEADER.to_string()))
    }

    fn refuse(&mut self, on: &Spanned<bool>, other: &str) {
        let msg = format!("AWS does not allow tenant isolation together with {other}");
        self.bad(on, "tenant_isolation", msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert_eq!(header_name("X-Tenant-Id").unwrap(), "x-tenant-id");
        assert_eq!(header_name("x_org").unwrap(), "x_org");
        for bad in ["", "x tenant", "x:tenant", "ü"] {
            assert!(header_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_is_set_only_with_isolation() {
        let parse = |keys: &str| {
            let text =
                format!("[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n{keys}\n");
            let config = crate::parse_str(
                &text,
                std::path::Path::new("/nonexistent/pyproject.toml"),
                &Default::default(),
            );
            config.unwrap().handlers[0].tenant_id_header.clone()
        };
        assert_eq!(parse(""), None);
        assert_eq!(parse("tenant_isolation = false"), None);
        assert_eq!(parse("tenant_isolation = true").as_deref(), Some(DEFAULT_TENANT_ID_HEADER));
        assert_eq!(parse("tenant_isolation = true\ntenant_id_header = \"X-Org\"").as_deref(), Some("x-org"));
    }

    #[test]
    fn managed_instances_cannot_be_isolated() {
        let text = "[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n\
                    tenant_isolation = true\nmanaged_instances = true\n";
        let err =
            crate::parse_str(text, std::path::Path::new("/nonexistent/pyproject.toml"), &Default::default())
                .unwrap_err()
                .to_string();
        assert!(err.contains("tenant_isolation") && err.contains("managed_instances"), "{err}");
    }
}
