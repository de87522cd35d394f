//! `smyth-config`: the `[tool.smyth]` model, discovery, validation and the worker environment.
//! Pure data: no actix, no processes.

mod describe;
mod destination;
mod discover;
mod env;
mod env_file;
mod error;
mod files;
mod limits;
mod model;
mod parse;
mod python;
mod raw;
mod recording;
mod route;
mod validate;

#[cfg(test)]
mod tests;

pub use destination::{parse_destination, Destination};
pub use discover::{discover, load, load_with_env, parse_str};
pub use env::worker_env;
pub use error::{ConfigError, Problem};
pub use model::{
    Config, EventFormat, FunctionLogging, HandlerConfig, LogFormat, ManagedInstances, Runtime, Strategy,
};
pub use recording::{ChaosConfig, RecordConfig, DEFAULT_RECORD_KEEP};
pub use route::{RoutePattern, PARAM as ROUTE_PARAM};
pub use validate::{log_format, log_level, APPLICATION_LOG_LEVELS, LOG_LEVELS, SYSTEM_LOG_LEVELS};
