//! `smyth run`: binds every port, starts the actor world and both HTTP servers, and shuts down cleanly.

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use smyth_actors::launch;
use smyth_actors::messages::{GetStatus, Shutdown};
use smyth_config::{Config, Runtime};

use crate::http::{self, Edge};
use crate::invoke_api;
use crate::runtime_api::{self, Workers};

/// How long in-flight invocations may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// One loopback listener per worker slot, bound before any worker exists.
fn bind_runtime_listeners(config: &Config) -> io::Result<(Vec<Vec<u16>>, Vec<TcpListener>)> {
    let mut ports = Vec::new();
    let mut listeners = Vec::new();
    for handler in &config.handlers {
        let mut handler_ports = Vec::new();
        for _ in 0..handler.concurrency {
            let listener = TcpListener::bind(("127.0.0.1", 0))?;
            handler_ports.push(listener.local_addr()?.port());
            listeners.push(listener);
        }
        ports.push(handler_ports);
    }
    Ok((ports, listeners))
}

pub async fn run(mut config: Config) -> io::Result<()> {
    let (ports, runtime_listeners) = bind_runtime_listeners(&config)?;
    let inherited: BTreeMap<String, String> = std::env::vars().collect();
    if config.handlers.iter().any(|h| !matches!(h.runtime, Runtime::Command(_))) {
        match launch::resolve_interpreter(&config.python, &inherited) {
            Ok(python) => config.python = python,
            Err(err) => tracing::error!("{err}; Python handlers will fail to start"),
        }
    }
    let bootstrap = launch::BootstrapFile::write()?;
    let pools = smyth_actors::start(&config, &ports, &inherited, &bootstrap.path);
    let router = pools.router.clone();
    // Reload (DESIGN §5): the watcher thread lives until shutdown.
    let watcher = if config.reload {
        smyth_actors::watcher::start(&config.root, &config.source, router.clone())
            .inspect_err(|err| tracing::warn!("reload is off: cannot watch the project: {err}"))
            .ok()
    } else {
        None
    };

    let workers = Workers(Arc::new(pools.workers_by_port));
    let mut runtime = HttpServer::new(move || {
        App::new().app_data(web::Data::new(workers.clone())).configure(runtime_api::configure)
    })
    .workers(1)
    // The connection idles while the handler runs: never close it under a long invocation.
    .keep_alive(actix_web::http::KeepAlive::Os)
    .disable_signals()
    .shutdown_timeout(1);
    for listener in runtime_listeners {
        runtime = runtime.listen(listener)?;
    }
    let runtime = runtime.run();
    let runtime_handle = runtime.handle();
    actix_rt::spawn(runtime);

    let listener = TcpListener::bind((config.host.as_str(), config.port)).map_err(|err| {
        io::Error::new(err.kind(), format!("cannot listen on {}:{}: {err}", config.host, config.port))
    })?;
    let address = listener.local_addr()?;
    let edge = Edge { router: router.clone() };
    let prefix = config.smyth_path_prefix.clone();
    let invoke = invoke_api::InvokeApi::new(&config, router.clone());
    let server = HttpServer::new(move || {
        let prefix = prefix.clone();
        App::new()
            .app_data(web::Data::new(edge.clone()))
            .configure(|cfg| invoke_api::configure(cfg, invoke.clone()))
            .configure(move |cfg| http::configure(cfg, &prefix))
    })
    .workers(1)
    .on_connect(http::ClientSocket::record)
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    actix_rt::spawn(server);

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
    let stopping = server_handle.stop(true);
    let _ = router.send(Shutdown { grace: SHUTDOWN_GRACE }).await;
    wait_for_workers(&router, Duration::from_secs(5)).await;
    runtime_handle.stop(false).await;
    stopping.await;
    tracing::info!("stopped");
    Ok(())
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
async fn wait_for_workers(router: &actix::Addr<smyth_actors::router::RouterActor>, limit: Duration) {
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
