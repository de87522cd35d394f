//! The AWS SAM template of a config: one `AWS::Serverless::Function` per handler. Each property is
//! written by one small function of [`WRITERS`]; whatever a handler sets that AWS cannot express is
//! collected in [`Export::unexpressed`], never dropped in silence.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};
use smyth_config::{Config, Destination, HandlerConfig, Runtime};

use super::{capacity, fronts, local_only};

/// How the export was asked for.
pub struct Options {
    /// Also put the `env_file` variables into each function's `Environment`.
    pub include_env_file: bool,
    /// The template's folder: `CodeUri` is relative to it.
    pub template_dir: PathBuf,
}

/// A template and what it could not say.
pub struct Export {
    pub template: Mapping,
    pub unexpressed: Vec<String>,
}

/// The alias `AutoPublishAlias` creates, which provisioned concurrency needs.
pub const ALIAS: &str = "live";

/// The template parameter an ALB-format handler's listener rule attaches to.
pub const ALB_LISTENER_PARAMETER: &str = "AlbListenerArn";

/// Python versions with a Lambda runtime; an interpreter outside them gets the nearest one.
const LAMBDA_PYTHONS: [&str; 5] = ["3.10", "3.11", "3.12", "3.13", "3.14"];

/// Lambda sets these itself; a function's `Environment` may not.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// One function being written: its properties, the resources beside it, and what it cannot say.
pub(super) struct Function<'a> {
    pub(super) config: &'a Config,
    pub(super) handler: &'a HandlerConfig,
    pub(super) options: &'a Options,
    pub(super) logical_id: String,
    pub(super) properties: Mapping,
    pub(super) extra_resources: Vec<(String, Value)>,
    pub(super) parameters: Vec<(String, Value)>,
    pub(super) unexpressed: Vec<String>,
}

impl Function<'_> {
    pub(super) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.properties.insert(key.into(), value.into());
    }

    pub(super) fn cannot(&mut self, what: String) {
        self.unexpressed.push(format!("handler `{}`: {what}", self.handler.name));
    }
}

/// One property (or a few that belong together) per writer; a new key is one more function here.
const WRITERS: &[fn(&mut Function)] = &[
    function_name,
    code,
    runtime,
    timeout,
    memory_size,
    environment,
    reserved_concurrency,
    provisioned_concurrency,
    tenancy_config,
    snap_start,
    event_invoke_config,
    logging_config,
    capacity::capacity_provider,
    fronts::events,
    fronts::tenant_header,
    local_only::handler,
];

/// The whole template.
pub fn template(config: &Config, options: &Options) -> Export {
    let mut resources = Mapping::new();
    let mut parameters = Mapping::new();
    let mut unexpressed = local_only::globals(config, options);
    let mut ids = Vec::new();
    for handler in &config.handlers {
        let logical_id = unique(logical_id(&handler.name), &ids);
        ids.push(logical_id.clone());
        let mut function = Function {
            config,
            handler,
            options,
            logical_id,
            properties: Mapping::new(),
            extra_resources: Vec::new(),
            parameters: Vec::new(),
            unexpressed: Vec::new(),
        };
        for write in WRITERS {
            write(&mut function);
        }
        let resource =
            map([("Type", "AWS::Serverless::Function".into()), ("Properties", function.properties.into())]);
        resources.insert(function.logical_id.into(), resource);
        for (id, value) in function.extra_resources {
            resources.insert(id.into(), value);
        }
        for (id, value) in function.parameters {
            parameters.insert(id.into(), value);
        }
        unexpressed.extend(function.unexpressed);
    }
    let mut template = Mapping::new();
    template.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
    template.insert("Transform".into(), "AWS::Serverless-2016-10-31".into());
    template
        .insert("Description".into(), "Exported by `smyth export sam` from its [tool.smyth] config".into());
    if !parameters.is_empty() {
        template.insert("Parameters".into(), parameters.into());
    }
    template.insert("Resources".into(), resources.into());
    Export { template, unexpressed }
}

/// A CloudFormation logical id (alphanumeric) from a handler name: `order_handler` → `OrderHandler`.
pub fn logical_id(name: &str) -> String {
    let id: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect();
    if id.starts_with(|c: char| c.is_ascii_digit()) || id.is_empty() {
        format!("Function{id}")
    } else {
        id
    }
}

/// `id`, or `id2`, `id3` … when an earlier handler's name made the same id.
fn unique(id: String, taken: &[String]) -> String {
    if !taken.contains(&id) {
        return id;
    }
    (2..).map(|n| format!("{id}{n}")).find(|c| !taken.contains(c)).unwrap()
}

/// The local function name, so `AWS_LAMBDA_FUNCTION_NAME` and Invoke API calls stay the same.
fn function_name(f: &mut Function) {
    f.set("FunctionName", f.handler.name.clone());
}

/// `Handler` and `CodeUri`: the import root holding the handler's module (the project root or one of
/// the `python_path` folders), relative to the template.
fn code(f: &mut Function) {
    let (module, _) = f.handler.handler_path.rsplit_once('.').unwrap_or((&f.handler.handler_path, ""));
    let module_path = module.replace('.', "/");
    let roots: Vec<&PathBuf> = std::iter::once(&f.config.root).chain(&f.config.python_path).collect();
    let holds = |root: &&&PathBuf| {
        root.join(format!("{module_path}.py")).is_file()
            || root.join(&module_path).join("__init__.py").is_file()
    };
    let code_root = roots.iter().find(holds).copied().unwrap_or(&f.config.root).clone();
    f.set("Handler", f.handler.handler_path.clone());
    f.set("CodeUri", relative_to(&code_root, &f.options.template_dir));
    let left_out: Vec<String> = roots
        .iter()
        .filter(|root| ***root != code_root)
        .map(|root| root.strip_prefix(&f.config.root).unwrap_or(root).display().to_string())
        .map(|root| if root.is_empty() { ".".into() } else { root })
        .collect();
    if !left_out.is_empty() {
        f.cannot(format!(
            "import roots other than its CodeUri are not packaged with it: {}",
            left_out.join(", ")
        ));
    }
}

/// `path` as the template names it: relative to the template's folder when inside it.
fn relative_to(path: &Path, dir: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// `python3.X` from the interpreter's version; a custom runtime for `runtime = "command"`.
fn runtime(f: &mut Function) {
    if let Runtime::Command(argv) = &f.handler.runtime {
        f.set("Runtime", "provided.al2023");
        f.cannot(format!(
            "runtime = \"command\" ({}) is exported as provided.al2023: package an executable `bootstrap` in its CodeUri",
            argv.join(" ")
        ));
        return;
    }
    let (version, _) = lambda_python(f.config.python_version.as_deref());
    f.set("Runtime", format!("python{version}"));
}

/// The Lambda Python version for a local `major.minor`, and why it differs when it does.
pub fn lambda_python(local: Option<&str>) -> (&'static str, Option<String>) {
    let newest = LAMBDA_PYTHONS[LAMBDA_PYTHONS.len() - 1];
    let Some(local) = local else {
        return (newest, Some(format!("the interpreter's version is unknown: Runtime is python{newest}")));
    };
    if let Some(same) = LAMBDA_PYTHONS.iter().find(|v| **v == local) {
        return (same, None);
    }
    let minor = |v: &str| v.strip_prefix("3.").and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    let nearest = if minor(local) < minor(LAMBDA_PYTHONS[0]) { LAMBDA_PYTHONS[0] } else { newest };
    (nearest, Some(format!("Python {local} has no Lambda runtime: Runtime is python{nearest}")))
}

/// Whole seconds: a fraction is rounded up.
fn timeout(f: &mut Function) {
    let seconds = f.handler.timeout.as_secs_f64();
    let whole = seconds.ceil() as u64;
    f.set("Timeout", whole);
    if whole as f64 != seconds {
        f.cannot(format!("timeout = {seconds} is rounded up to {whole} s (Lambda counts whole seconds)"));
    }
}

fn memory_size(f: &mut Function) {
    f.set("MemorySize", u64::from(f.handler.memory_size));
}

/// The global and the handler's `env` (and the `env_file` when asked), never the server's own.
fn environment(f: &mut Function) {
    let mut vars = std::collections::BTreeMap::new();
    if f.options.include_env_file {
        vars.extend(f.config.env_file_vars.clone());
    }
    vars.extend(f.config.env.clone());
    vars.extend(f.handler.env.clone());
    let mut variables = Mapping::new();
    for (key, value) in vars {
        match env_problem(&key) {
            // The global table's problems are reported once, with the globals.
            Some(_) if !f.handler.env.contains_key(&key) => {}
            Some(problem) => f.cannot(format!("env `{key}` {problem}")),
            None => {
                variables.insert(key.into(), value.into());
            }
        }
    }
    if !variables.is_empty() {
        f.set("Environment", map([("Variables", variables.into())]));
    }
}

/// Why Lambda would refuse a variable, if it would.
pub(super) fn env_problem(key: &str) -> Option<&'static str> {
    if RESERVED_ENV.contains(&key) {
        Some("is reserved by Lambda and left out")
    } else if !valid_env_name(key) {
        Some("is not a valid Lambda variable name and left out")
    } else {
        None
    }
}

/// Lambda's rule for variable names: a letter, then letters, digits and underscores.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn reserved_concurrency(f: &mut Function) {
    if let Some(reserved) = f.handler.reserved_concurrency {
        f.set("ReservedConcurrentExecutions", reserved as u64);
    }
}

/// Provisioned concurrency applies to a version or alias: `AutoPublishAlias` publishes one.
fn provisioned_concurrency(f: &mut Function) {
    if f.handler.provisioned_concurrency > 0 {
        f.set("AutoPublishAlias", ALIAS);
        let executions = f.handler.provisioned_concurrency as u64;
        f.set("ProvisionedConcurrencyConfig", map([("ProvisionedConcurrentExecutions", executions.into())]));
    }
}

fn tenancy_config(f: &mut Function) {
    if f.handler.tenant_id_header.is_some() {
        f.set("TenancyConfig", map([("TenantIsolationMode", "PER_TENANT".into())]));
    }
}

/// SnapStart applies to published versions, as AWS has it: `AutoPublishAlias` publishes one.
fn snap_start(f: &mut Function) {
    if f.handler.snap_start {
        f.set("AutoPublishAlias", ALIAS);
        f.set("SnapStart", map([("ApplyOn", "PublishedVersions".into())]));
    }
}

/// Retries and event age of asynchronous invocations (destinations once the config has them).
fn event_invoke_config(f: &mut Function) {
    let mut config = Mapping::new();
    config.insert("MaximumRetryAttempts".into(), u64::from(f.handler.maximum_retry_attempts).into());
    config.insert("MaximumEventAgeInSeconds".into(), f.handler.maximum_event_age.as_secs().into());
    let mut destinations = Mapping::new();
    for (key, destination) in [("OnSuccess", &f.handler.on_success), ("OnFailure", &f.handler.on_failure)] {
        match destination {
            Some(Destination::Handler(name)) => {
                let arn = map([("Fn::GetAtt", Value::Sequence(vec![logical_id(name).into(), "Arn".into()]))]);
                destinations.insert(key.into(), map([("Type", "Lambda".into()), ("Destination", arn)]));
            }
            Some(file) => f.cannot(format!(
                "{key} destination `{}` (a local file; Lambda sends records to SQS, SNS, S3, EventBridge \
                 or a function)",
                file.describe(&f.config.root)
            )),
            None => {}
        }
    }
    if !destinations.is_empty() {
        config.insert("DestinationConfig".into(), Value::Mapping(destinations));
    }
    f.set("EventInvokeConfig", Value::Mapping(config));
    if f.handler.retry_delay.as_secs_f64() != 60.0 {
        f.cannot(format!(
            "retry_delay = {} (Lambda chooses its own retry delays)",
            f.handler.retry_delay.as_secs_f64()
        ));
    }
}

/// AWS's advanced logging controls, as the handler's `log_format` / `*_log_level` keys set them.
fn logging_config(f: &mut Function) {
    let logging = &f.handler.logging;
    let Some(format) = logging.format else { return };
    let mut config = Mapping::new();
    config.insert("LogFormat".into(), format.as_aws().into());
    if let Some(level) = &logging.application_log_level {
        config.insert("ApplicationLogLevel".into(), level.clone().into());
    }
    if let Some(level) = &logging.system_log_level {
        config.insert("SystemLogLevel".into(), level.clone().into());
    }
    f.set("LoggingConfig", Value::Mapping(config));
}

/// A YAML mapping from pairs, in order.
pub(super) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(pairs.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names_become_logical_ids() {
        let cases = [
            ("orders", "Orders"),
            ("order_handler", "OrderHandler"),
            ("products-api", "ProductsApi"),
            ("v2_items", "V2Items"),
            ("2fast", "Function2fast"),
        ];
        for (name, id) in cases {
            assert_eq!(logical_id(name), id, "{name}");
        }
        assert_eq!(unique("OrderHandler".into(), &["OrderHandler".into()]), "OrderHandler2");
    }

    #[test]
    fn local_python_versions_map_to_lambda_runtimes() {
        let cases = [
            (Some("3.12"), "3.12", false),
            (Some("3.11"), "3.11", false),
            (Some("3.8"), "3.10", true),
            (Some("3.99"), "3.14", true),
            (None, "3.14", true),
        ];
        for (local, expected, noted) in cases {
            let (version, note) = lambda_python(local);
            assert_eq!((version, note.is_some()), (expected, noted), "{local:?}");
        }
    }

    #[test]
    fn lambda_variable_names() {
        for (name, ok) in [("TABLE", true), ("table_2", true), ("_X", false), ("2X", false), ("A-B", false)] {
            assert_eq!(valid_env_name(name), ok, "{name}");
        }
    }
}
