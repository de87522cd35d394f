//! `smyth run`: binds every port, starts the actor world and the HTTP server, and shuts down cleanly.
//!
//! One HTTP server with one worker thread serves the client port, and the actors are started on that
//! same thread, where each worker's Runtime API listeners are opened when its process first starts
//! (`runtime_listener`): a request goes from client to Python worker and back without waking another
//! thread, which is most of what a no-op invocation costs.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Addr;
use actix_http::{body::MessageBody, error::DispatchError, HttpService, Request, Response};
use actix_server::GracefulShutdownSignal;
use actix_service::{fn_service, map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions};
use actix_web::http::KeepAlive;
use actix_web::rt::net::TcpStream;
use actix_web::{middleware, web, App};
use smyth_actors::containment::Containment;
use smyth_actors::messages::{GetStatus, Shutdown};
use smyth_actors::router::RouterActor;
use smyth_actors::{fd_limit, launch};
use smyth_config::{Config, EventFormat, Runtime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::edge::{self, EdgeRules};
use crate::guard::HostPolicy;
use crate::header_case::{self, SpelledStream};
use crate::http::{self, Edge};
use crate::invoke_api::{self, InvokeApi};
use crate::recorder::endpoints::Database;
use crate::replay::api::ReplayApi;
use crate::runtime_api;
use crate::runtime_listener::RuntimeListeners;

/// How long in-flight invocations may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the actor world is built from.
struct Blueprint {
    config: Config,
    inherited: Arc<BTreeMap<String, String>>,
    bootstrap: PathBuf,
    keep_alive: KeepAlive,
    shutdown: GracefulShutdownSignal,
}

/// The running actor world, and what the routes need of it.
#[derive(Clone)]
struct World {
    router: Addr<RouterActor>,
    invoke: InvokeApi,
    recorder: smyth_actors::recorder::Recorder,
}

impl World {
    /// Starts the actors on the calling thread (the server's one worker thread).
    fn start(blueprint: &Blueprint) -> World {
        let Blueprint { config, inherited, bootstrap, keep_alive, shutdown } = blueprint;
        let socket_dir = bootstrap.parent().unwrap_or(bootstrap).to_path_buf();
        let listeners = RuntimeListeners::new(socket_dir, *keep_alive, shutdown.clone());
        let pools = smyth_actors::start(config, Rc::new(listeners), inherited, bootstrap);
        World {
            invoke: InvokeApi::new(config, pools.router.clone(), pools.async_queue, pools.spool),
            router: pools.router,
            recorder: pools.recorder,
        }
    }
}

/// A Runtime API connection idles while its handler runs: keep connections at least that long.
fn keep_alive(config: &Config) -> KeepAlive {
    let longest = config.handlers.iter().map(|h| h.timeout).max().unwrap_or_default();
    KeepAlive::Timeout(longest + Duration::from_secs(60))
}

/// A started server: the actor world, and the HTTP server carrying every worker's Runtime API (and the
/// client routes, when it was given a client listener).
pub struct Running {
    world: World,
    handle: actix_web::dev::ServerHandle,
    _bootstrap: launch::BootstrapFile,
    /// Dropped last, once the workers have stopped: kills whatever they left behind.
    _containment: Containment,
}

impl Running {
    pub fn router(&self) -> &Addr<RouterActor> {
        &self.world.router
    }

    /// Stops accepting, lets in-flight invocations finish within `grace`, stops every worker, then
    /// the server.
    pub async fn stop(self, grace: Duration) {
        self.handle.pause().await;
        self.world.invoke.stop_events(grace).await;
        let _ = self.world.router.send(Shutdown { grace }).await;
        wait_for_workers(&self.world.router, Duration::from_secs(5)).await;
        self.handle.stop(true).await;
        // What was recorded reaches the disk before the process ends (`smyth invoke` ends at once).
        self.world.recorder.flush(Duration::from_secs(2));
    }
}

/// Starts the actor world and the HTTP server on one thread.
/// `containment` is the caller's: `smyth run` contains itself before it reads the config.
pub async fn start(
    mut config: Config,
    client: Option<TcpListener>,
    containment: Containment,
) -> io::Result<Running> {
    containment.report();
    let open_files = fd_limit::raise_open_file_limit();
    fd_limit::check_start_up(&config, open_files)
        .map_err(|limit| io::Error::other(fd_limit::OpenFileLimit(limit)))?;
    let inherited: Arc<BTreeMap<String, String>> = Arc::new(std::env::vars().collect());
    if config.handlers.iter().any(|h| !matches!(h.runtime, Runtime::Command(_))) {
        match launch::resolve_interpreter(&config.python, &inherited) {
            Ok(python) => config.python = python,
            Err(err) => tracing::error!("{err}; Python handlers will fail to start"),
        }
    }
    let bootstrap = launch::BootstrapFile::write()?;
    let keep_alive = keep_alive(&config);
    let prefix = config.smyth_path_prefix.clone();
    let database = crate::replay::source::database_path(&config);
    let rules = web::Data::new(EdgeRules {
        policy: HostPolicy::new(&config.host, &config.allowed_hosts),
        prefix: prefix.clone(),
    });
    // Only REST API events spell header names as sent: other projects skip the scan (header_case).
    let spell = config.handlers.iter().any(|h| h.event_format == EventFormat::ApiGwV1);
    let mut server = actix_server::Server::build().workers(1).disable_signals().shutdown_timeout(1);
    let shutdown = server.graceful_shutdown_signal();
    let blueprint = Arc::new(Blueprint {
        config,
        inherited,
        bootstrap: bootstrap.path.clone(),
        keep_alive,
        shutdown: shutdown.clone(),
    });
    let world: Arc<OnceLock<World>> = Arc::default();

    let factory_world = world.clone();
    let make_app = move || {
        // Called on the server's one worker thread, once per listener: the first call starts the
        // actors there.
        let world = factory_world.get_or_init(|| World::start(&blueprint)).clone();
        let prefix = prefix.clone();
        let database = Database { path: database.clone(), recorder: world.recorder.clone() };
        let replay = ReplayApi { router: world.router.clone(), database: database.clone() };
        App::new()
            .wrap(middleware::from_fn(edge::guard))
            // Outermost: every request takes its connection's next head, whatever answers it.
            .wrap(middleware::Condition::new(spell, middleware::from_fn(header_case::attach_spelling)))
            .app_data(rules.clone())
            .app_data(web::Data::new(Edge { router: world.router, recording: world.recorder.is_on() }))
            .app_data(web::Data::new(database))
            // The status endpoints read the async queue through it.
            .app_data(web::Data::new(world.invoke.clone()))
            .configure(runtime_api::configure)
            // The Lambda API's routes have segments, each a regex match: a handler's request skips
            // them all on one look at its path (an unmatched path still falls through to the handlers).
            .service(
                web::scope("")
                    .guard(actix_web::guard::fn_guard(|ctx| ctx.head().uri.path().starts_with("/20")))
                    .configure(|cfg| invoke_api::configure(cfg, world.invoke)),
            )
            .configure(|cfg| crate::replay::api::configure(cfg, &prefix, replay))
            .configure(move |cfg| http::configure(cfg, &prefix))
    };
    // The client's listener, plain when no header names need their spelling. With no client
    // listener (`smyth invoke`), the server still runs: its thread starts the actors.
    let (spelled, plain_client) = if spell { (client, None) } else { (None, client) };
    let bare = spelled.is_none() && plain_client.is_none();
    for listener in plain_client.into_iter().chain(bare.then(unused_listener).transpose()?) {
        let addr = listener.local_addr()?;
        let (make_app, shutdown) = (make_app.clone(), shutdown.clone());
        server = server.listen(format!("plain-{addr}"), listener, move || {
            let h1 = h1_service(make_app(), addr, keep_alive, &shutdown, |io: &TcpStream, data| {
                http::ClientSocket::record(io, data)
            });
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, DispatchError>((io, peer)))
            })
            .and_then(h1)
        })?;
    }
    if let Some(listener) = spelled {
        let addr = listener.local_addr()?;
        server = server.listen(format!("client-{addr}"), listener, move || {
            // The client's streams are wrapped to keep header names as sent (header_case).
            let h1 = h1_service(make_app(), addr, keep_alive, &shutdown, |io: &SpelledStream, data| {
                http::ClientSocket::record(io.tcp(), data);
                data.insert(io.heads());
            });
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, DispatchError>((SpelledStream::new(io), peer)))
            })
            .and_then(h1)
        })?;
    }
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let world = started(&world).await?;
    Ok(Running { world, handle, _bootstrap: bootstrap, _containment: containment })
}

/// The HTTP/1 service for one listener, set up as actix-web's `HttpServer` sets up its own (which
/// cannot wrap a connection's stream): the app, its `AppConfig`, the timeouts and keep-alive, the
/// graceful shutdown, and `on_connect` for the connection data.
pub(crate) fn h1_service<T, S, B, I>(
    app: I,
    addr: SocketAddr,
    keep_alive: KeepAlive,
    shutdown: &GracefulShutdownSignal,
    on_connect: impl Fn(&T, &mut Extensions) + 'static,
) -> impl ServiceFactory<(T, Option<SocketAddr>), Config = (), Response = (), Error = DispatchError, InitError = ()>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let shutdown = shutdown.clone();
    let app = app.into_factory().map_err(|err| err.into().error_response());
    // What HttpServer's `AppConfig::new` gives: `on_runtime_port` reads the local address from it.
    let config = AppConfig::__priv_test_new(false, addr.to_string(), addr);
    HttpService::<T, _, _, _, _>::build()
        .graceful_shutdown_signal(move || {
            let shutdown = shutdown.clone();
            async move { shutdown.notified().await }
        })
        .keep_alive(keep_alive)
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .h1_allow_half_closed(true)
        .local_addr(addr)
        .on_connect_ext(on_connect)
        .h1(map_config(app, move |_| config.clone()))
}

/// `smyth run`: serves every handler until SIGINT or SIGTERM.
pub async fn run(config: Config, containment: Containment) -> io::Result<()> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .map_err(|err| io::Error::new(err.kind(), bind_error(&config.host, config.port, &err)))?;
    let address = listener.local_addr()?;
    warn_if_exposed(&config);
    let running = start(config.clone(), Some(listener), containment).await?;

    // Reload (README: "Reload"): the watcher thread lives until shutdown.
    let watcher = if config.reload {
        smyth_actors::watcher::start(&config.root, &config.source, running.router().clone())
            .inspect_err(|err| tracing::warn!("reload is off: cannot watch the project: {err}"))
            .ok()
    } else {
        None
    };
    for handler in &config.handlers {
        tracing::info!(handler = %handler.name, "http://{address}{}  →  {}", handler.url_path, handler.handler_path);
    }
    tracing::info!(
        "smyth listening on http://{address} (status: http://{address}{}/status)",
        config.smyth_path_prefix
    );

    wait_for_signal().await;
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    tracing::info!("shutting down: letting in-flight invocations finish (Ctrl-C again to force)");
    actix_rt::spawn(async {
        wait_for_signal().await;
        // Every worker has PR_SET_PDEATHSIG: exiting kills them all.
        tracing::warn!("forced exit");
        std::process::exit(130);
    });
    running.stop(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    Ok(())
}

/// Why the client port could not be bound, and, when it is taken, the two ways out.
pub fn bind_error(host: &str, port: u16, err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::AddrInUse {
        format!(
            "port {port} on {host} is already in use: choose another with --port, \
             or set port = 0 in [tool.smyth] to pick a free one"
        )
    } else {
        format!("cannot listen on {host}:{port}: {err}")
    }
}

/// A bind beyond loopback serves the Invoke API and status to anyone who can reach the port: say so.
fn warn_if_exposed(config: &Config) {
    if let Some(reach) = exposure(&config.host) {
        tracing::warn!(
            host = %config.host,
            "host is not loopback: the Invoke API and {}/status are unauthenticated on {reach}; anyone who \
             can reach this port can run your functions (the Host check still applies: see allowed_hosts)",
            config.smyth_path_prefix
        );
    }
}

/// Where a server bound to `host` can be reached from beyond this machine; None for loopback.
fn exposure(host: &str) -> Option<&'static str> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<std::net::IpAddr>().ok();
    match ip {
        _ if host.eq_ignore_ascii_case("localhost") => None,
        Some(ip) if ip.is_loopback() => None,
        Some(ip) if ip.is_unspecified() => Some("every interface"),
        _ => Some("the network"),
    }
}

/// A loopback listener nobody is told of: it starts the server's thread (and so the actors) when
/// there is no client listener.
fn unused_listener() -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0))
}

/// Waits (bounded) for the server's worker thread to have started the actors.
async fn started(world: &OnceLock<World>) -> io::Result<World> {
    for _ in 0..1000 {
        if let Some(world) = world.get() {
            return Ok(world.clone());
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    Err(io::Error::other("the HTTP server did not start"))
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Waits, bounded, until no worker has a process left.
async fn wait_for_workers(router: &Addr<RouterActor>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let Ok(status) = router.send(GetStatus).await else {
            return;
        };
        if status.iter().flat_map(|h| &h.workers).all(|w| w.pid.is_none()) {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("some workers did not exit in time");
}

#[cfg(test)]
mod tests {
    use super::{bind_error, exposure};
    use std::io;

    #[test]
    fn a_port_in_use_names_the_ways_out() {
        let taken = bind_error("127.0.0.1", 8080, &io::Error::from(io::ErrorKind::AddrInUse));
        assert!(taken.contains("port 8080 on 127.0.0.1 is already in use"), "{taken}");
        assert!(taken.contains("--port") && taken.contains("port = 0"), "{taken}");
        let other = bind_error("10.9.9.9", 80, &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(other.starts_with("cannot listen on 10.9.9.9:80"), "{other}");
    }

    #[test]
    fn binds_beyond_loopback_are_exposed() {
        let cases = [
            ("127.0.0.1", None),
            ("127.0.0.2", None),
            ("::1", None),
            ("[::1]", None),
            ("localhost", None),
            ("LocalHost", None),
            ("0.0.0.0", Some("every interface")),
            ("::", Some("every interface")),
            ("192.168.1.5", Some("the network")),
            ("my-laptop.local", Some("the network")),
        ];
        for (host, expected) in cases {
            assert_eq!(exposure(host), expected, "{host}");
        }
    }
}
