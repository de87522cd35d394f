//! Runtime API listeners opened on demand (`smyth_actors::endpoint`): a worker slot gets its loopback
//! TCP port, and for the bundled runtime a Unix socket beside it, when its first process starts. A
//! slot that never runs holds no descriptor.
//!
//! Each listener has its own accept loop on the server's one thread, and every connection knows its
//! worker actor, so no port map is looked up per request. The TCP port serves HTTP/1.1 through a
//! small actix-web app that carries only the Runtime API routes ([`RuntimeWorker`]). The Unix socket
//! is served by hand (`runtime_api::wire`): HTTP/1.1 still, as the bootstrap's pipelined exchange is
//! one write per invocation each way, but without the general server's cost per request; there the
//! kernel's SO_PEERCRED names the caller's pid, which is the whole peer check (no `/proc/net/tcp`).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use actix_rt::net::{TcpStream, UnixListener};
use actix_rt::task::JoinHandle;
use actix_server::GracefulShutdownSignal;
use actix_service::{Service, ServiceFactory};
use actix_web::http::KeepAlive;
use actix_web::App;
use smyth_actors::endpoint::{Endpoint, RuntimeEndpoints, RuntimeTarget, Transport, UNIX_SOCKET_ENV};

use crate::http::ClientSocket;
use crate::runtime_api::{self, RuntimeWorker};
use crate::server::h1_service;

/// Opens Runtime API endpoints for worker actors, on the thread the actors run on.
pub struct RuntimeListeners {
    /// Where the Unix sockets go: the server's private bootstrap dir, removed at a clean stop.
    socket_dir: PathBuf,
    keep_alive: KeepAlive,
    shutdown: GracefulShutdownSignal,
    opened: std::cell::Cell<u64>,
}

impl RuntimeListeners {
    pub fn new(socket_dir: PathBuf, keep_alive: KeepAlive, shutdown: GracefulShutdownSignal) -> Self {
        Self { socket_dir, keep_alive, shutdown, opened: Default::default() }
    }
}

impl RuntimeEndpoints for RuntimeListeners {
    fn open(&self, worker: RuntimeTarget, transport: Transport) -> io::Result<Endpoint> {
        let tcp = TcpListener::bind(("127.0.0.1", 0))?;
        tcp.set_nonblocking(true)?;
        let addr = tcp.local_addr()?;
        let mut env = vec![("AWS_LAMBDA_RUNTIME_API".to_string(), addr.to_string())];
        let mut open = Open { tasks: Vec::new(), socket: None };
        open.tasks.push(serve_tcp(tcp, addr, worker.clone(), self.keep_alive, &self.shutdown)?);
        if transport == Transport::TcpAndUnix {
            let n = self.opened.get();
            self.opened.set(n + 1);
            let path = self.socket_dir.join(format!("runtime-{n}.sock"));
            let unix = UnixListener::bind(&path)?;
            open.socket = Some(path.clone());
            open.tasks.push(serve_unix(unix, worker));
            env.push((UNIX_SOCKET_ENV.to_string(), path.to_string_lossy().into_owned()));
        }
        Ok(Endpoint { env, listeners: Box::new(open) })
    }
}

/// One endpoint's accept loops and socket file: dropping it closes them.
struct Open {
    tasks: Vec<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

impl Drop for Open {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The app a Runtime API connection is served by: the Runtime API's routes only.
fn runtime_app() -> App<
    impl ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().configure(runtime_api::configure)
}

fn serve_tcp(
    listener: TcpListener,
    addr: SocketAddr,
    worker: RuntimeTarget,
    keep_alive: KeepAlive,
    shutdown: &GracefulShutdownSignal,
) -> io::Result<JoinHandle<()>> {
    let listener = actix_rt::net::TcpListener::from_std(listener)?;
    let factory = h1_service(runtime_app(), addr, keep_alive, shutdown, move |io: &TcpStream, data| {
        ClientSocket::record(io, data);
        data.insert(RuntimeWorker(worker.clone()));
    });
    Ok(actix_rt::spawn(async move {
        let Ok(service) = factory.new_service(()).await else { return };
        let service = std::rc::Rc::new(service);
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let service = service.clone();
                    actix_rt::spawn(async move { service.call((stream, Some(peer))).await });
                }
                Err(err) => accept_failed(&err).await,
            }
        }
    }))
}

/// The bundled runtime's socket: each connection served by hand (`runtime_api::wire`).
fn serve_unix(listener: UnixListener, worker: RuntimeTarget) -> JoinHandle<()> {
    actix_rt::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    actix_rt::spawn(runtime_api::wire::serve(stream, worker.clone()));
                }
                Err(err) => accept_failed(&err).await,
            }
        }
    })
}

/// An accept that failed (out of descriptors, most likely): say so, and wait a little rather than
/// spin on a listener that stays readable.
async fn accept_failed(err: &io::Error) {
    tracing::warn!("cannot accept a Runtime API connection: {err}");
    actix_rt::time::sleep(Duration::from_millis(100)).await;
}
