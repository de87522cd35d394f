//! The command line: `smyth run`, `smyth check`, `smyth invoke`, `smyth status`, `smyth invocations`, `smyth replay`,
//! `smyth export sam`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A local AWS Lambda development server: every handler in `[tool.smyth]` served over HTTP from its
/// own pool of real Python worker processes.
#[derive(Debug, Parser)]
#[command(name = "smyth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every configured handler over HTTP.
    Run(RunArgs),
    /// Validate the configuration, print it resolved, and import every handler once.
    Check(CheckArgs),
    /// Invoke a handler once, without HTTP, with any event (SQS, S3, …); prints its result.
    Invoke(InvokeArgs),
    /// Show the running server's handlers and workers.
    Status(StatusArgs),
    /// Re-run a recorded invocation against the current code and show what changed.
    Replay(ReplayArgs),
    /// List the recorded invocations, newest first (`show ID`: everything recorded of one).
    Invocations(InvocationsArgs),
    /// Write the config as a deployment template for AWS.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// An AWS SAM template: one AWS::Serverless::Function per handler.
    Sam(SamArgs),
}

#[derive(Debug, Args)]
pub struct SamArgs {
    /// Where to write it; `-` for standard output (default: template.yaml in the project root).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also put the `env_file` variables into each function's Environment (they may be secrets).
    #[arg(long)]
    pub include_env_file: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only validate the config: do not import the handlers.
    #[arg(long)]
    pub no_import: bool,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The handler's name (its `[tool.smyth.handlers.NAME]` table).
    pub name: String,
    /// The event: a JSON file, or `-` for standard input (default: `{}`).
    #[arg(long, short = 'e', value_name = "FILE")]
    pub event: Option<String>,
    /// The tenant id, for a handler with tenant isolation (as `aws lambda invoke --tenant-id`).
    #[arg(long, value_name = "ID")]
    pub tenant_id: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recorded invocation's id (its Lambda request id).
    #[arg(required_unless_present = "failed", conflicts_with = "failed")]
    pub id: Option<String>,
    /// On a fresh environment, as a cold start (the default).
    #[arg(long, conflicts_with = "warm")]
    pub fresh: bool,
    /// After replaying the invocations that preceded it on the same worker process.
    #[arg(long)]
    pub warm: bool,
    /// Replay on this handler instead of the recorded one.
    #[arg(long, value_name = "H")]
    pub handler: Option<String>,
    /// Replay every failed invocation (of the last `--since`), and say which pass now.
    #[arg(long)]
    pub failed: bool,
    /// With --failed: how far back, e.g. `10m`, `2h` (default: everything recorded).
    #[arg(long, requires = "failed", value_name = "DURATION")]
    pub since: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub address: AddressArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InvocationsArgs {
    #[command(subcommand)]
    pub show: Option<InvocationsCommand>,
    /// Only this handler's invocations.
    #[arg(long, value_name = "H")]
    pub handler: Option<String>,
    /// Only those that did not end `ok` (errors, timeouts, throttles).
    #[arg(long)]
    pub failed: bool,
    /// How many, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum InvocationsCommand {
    /// Everything recorded of one invocation, its log included.
    Show {
        /// The request id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub address: AddressArgs,
}

/// Where the server listens, over the config's `host` and `port`.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// The server's address (overrides `host`).
    #[arg(long)]
    pub host: Option<String>,
    /// The server's port (overrides `port`); `run --port 0` picks a free one.
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config file (default: the nearest pyproject.toml with [tool.smyth], or smyth.toml, from here up).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub address: AddressArgs,
    /// Server log level: DEBUG, INFO, WARNING, ERROR, CRITICAL, in any case (overrides `log_level`).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Server log format: `text`, or `json` for one JSON object per line (overrides `log_format`).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Do not recycle workers when project files change.
    #[arg(long)]
    pub no_reload: bool,
    /// One worker per handler attached to this terminal, with no timeout: `breakpoint()` and pdb work.
    #[arg(long)]
    pub debug: bool,
    /// The state-leak detector: repeat every `check_state_every`th invocation of each handler that set
    /// `check_state = true` on a throwaway environment, and warn when the results differ.
    #[arg(long)]
    pub check_state: bool,
    /// Chaos mode: inject faults at the rates of `[tool.smyth.chaos]`, drawn from SEED (default: the
    /// table's `seed`, else a random one, logged).
    #[arg(long, value_name = "SEED", num_args = 0..=1, require_equals = true)]
    pub chaos: Option<Option<u64>>,
}
