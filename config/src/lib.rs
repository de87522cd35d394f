//! `smyth-config`: the `[tool.smyth]` model, discovery, validation and the worker environment.
//! Pure data: no actix, no processes.

mod model;
mod route;

pub use model::{Config, EventFormat, HandlerConfig, Runtime, Strategy};
pub use route::RoutePattern;
