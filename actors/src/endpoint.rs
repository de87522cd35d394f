//! Runtime API endpoints on demand: a worker asks for its listener when its process first starts, so a
//! slot that never runs costs no socket (2,000 configured slots fit under a 1,024 open-file limit).
//!
//! The actors do not serve HTTP: the binary does (`src/runtime_listener.rs`). This trait is the seam.
//! Anything that runs a Runtime API client (a worker slot, a shadow environment, a managed-instances
//! environment) calls [`RuntimeEndpoints::open`] with the actor that answers its calls, and puts
//! [`Endpoint::env`] into the process's environment; dropping the `Endpoint` closes its listeners.

use std::any::Any;
use std::io;

use actix::Addr;

use crate::managed::EnvironmentActor;
use crate::worker::WorkerActor;

/// The actor that answers an endpoint's Runtime API calls. Both take the same messages.
#[derive(Clone)]
pub enum RuntimeTarget {
    /// A worker slot (or a handler's shadow environment, a worker outside the pool).
    Worker(Addr<WorkerActor>),
    /// A Lambda Managed Instances environment: N processes of one tree on one endpoint.
    Environment(Addr<EnvironmentActor>),
}

/// How the process reaches its Runtime API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A loopback TCP port in `AWS_LAMBDA_RUNTIME_API`: what awslambdaric and any `command` speak.
    Tcp,
    /// The TCP port, and a Unix socket in [`UNIX_SOCKET_ENV`] that the bundled runtime uses instead
    /// (no loopback TCP stack on the hot path; the caller's pid comes with the socket).
    TcpAndUnix,
}

/// The variable that holds the bundled runtime's Unix socket path. A process forked later from the
/// worker's (a fork server) reads it to connect on its own.
pub const UNIX_SOCKET_ENV: &str = "SMYTH_RUNTIME_API_SOCKET";

/// A worker's open Runtime API: the variables that tell a process where it is, and the listeners,
/// closed when this is dropped.
pub struct Endpoint {
    pub env: Vec<(String, String)>,
    pub listeners: Box<dyn Any>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("env", &self.env).finish_non_exhaustive()
    }
}

/// Gives a worker or environment actor its Runtime API. Called on the actors' thread.
pub trait RuntimeEndpoints {
    fn open(&self, target: RuntimeTarget, transport: Transport) -> io::Result<Endpoint>;
}

/// The transport a handler's runtime speaks.
pub fn transport_for(runtime: &smyth_config::Runtime) -> Transport {
    match runtime {
        smyth_config::Runtime::Python => Transport::TcpAndUnix,
        _ => Transport::Tcp,
    }
}
