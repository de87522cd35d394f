//! `smyth-actors`: the concurrency model. A router picks the handler, one supervisor per handler owns
//! its worker actors, and each worker actor wraps one child process speaking the Lambda Runtime API.

pub mod invocation;
