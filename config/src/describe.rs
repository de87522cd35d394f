//! The resolved config as `smyth check` prints it.

use std::fmt::Write;

use crate::model::{Config, HandlerConfig};

impl Config {
    /// `smyth run --debug`: one worker per handler, attached to the terminal, with no timeout (a day),
    /// so `breakpoint()` and pdb work; nothing is throttled or pre-started.
    pub fn for_debugging(mut self) -> Self {
        self.debug = true;
        for handler in &mut self.handlers {
            handler.concurrency = 1;
            handler.reserved_concurrency = None;
            handler.provisioned_concurrency = 0;
            handler.strategy = crate::Strategy::FirstWarm;
            handler.timeout = std::time::Duration::from_secs(24 * 60 * 60);
            // A breakpoint in module code stops the import too.
            handler.init_timeout = handler.timeout;
            handler.idle_timeout = None;
        }
        self
    }

    /// The handler called `name`.
    pub fn handler(&self, name: &str) -> Option<&HandlerConfig> {
        self.handlers.iter().find(|h| h.name == name)
    }

    /// The resolved globals, then one handler per line.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let python_path: Vec<_> = self.python_path.iter().map(|p| p.display().to_string()).collect();
        let env_file = match &self.env_file {
            Some(f) => format!("{} ({} vars)", f.display(), self.env_file_vars.len()),
            None => "none".into(),
        };
        let version = self.python_version.as_deref().unwrap_or("version unknown");
        let _ = writeln!(out, "config   {}", self.source.display());
        let _ = writeln!(out, "root     {}", self.root.display());
        let _ = writeln!(
            out,
            "server   http://{}:{}  log_level={}  smyth_path_prefix={}  reload={}  account_concurrency={}",
            self.host,
            self.port,
            self.log_level,
            self.smyth_path_prefix,
            self.reload,
            self.account_concurrency
        );
        let _ = writeln!(out, "python   {} ({version})", self.python);
        let _ = writeln!(out, "python_path [{}]", python_path.join(", "));
        let _ = writeln!(out, "env      {} vars; env_file {env_file}", self.env.len());
        let _ = writeln!(out, "handlers ({}):", self.handlers.len());
        let width = self.handlers.iter().map(|h| h.name.len()).max().unwrap_or(0);
        let route_width = self.handlers.iter().map(|h| h.url_path.len()).max().unwrap_or(0);
        let path_width = self.handlers.iter().map(|h| h.handler_path.len()).max().unwrap_or(0);
        for h in &self.handlers {
            let _ = writeln!(
                out,
                "  {:width$}  {:route_width$}  -> {:path_width$}  {}",
                h.name,
                h.url_path,
                h.handler_path,
                h.summary()
            );
        }
        out
    }
}

impl HandlerConfig {
    /// `concurrency=2 provisioned=1 strategy=first_warm timeout=3s …`: what differs between handlers.
    pub fn summary(&self) -> String {
        let mut s = format!("concurrency={}", self.concurrency);
        if let Some(r) = self.reserved_concurrency {
            let _ = write!(s, " reserved={r}");
        }
        if self.provisioned_concurrency > 0 {
            let _ = write!(s, " provisioned={}", self.provisioned_concurrency);
        }
        let _ = write!(
            s,
            " strategy={} timeout={}s memory={}MB event={} runtime={}",
            self.strategy.as_str(),
            self.timeout.as_secs_f64(),
            self.memory_size,
            self.event_format.as_str(),
            self.runtime.as_str()
        );
        if let Some(idle) = self.idle_timeout {
            let _ = write!(s, " idle_timeout={}s", idle.as_secs_f64());
        }
        if let Some(header) = &self.tenant_id_header {
            let _ = write!(s, " tenant_isolation(header {header})");
        }
        if self.snap_start {
            s.push_str(" snap_start");
        }
        if !self.env.is_empty() {
            let _ = write!(s, " env={}", self.env.len());
        }
        s
    }
}
