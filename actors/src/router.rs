//! `RouterActor`: matches a request to a handler and asks that handler's supervisor to run it.

use actix::prelude::*;
use futures_util::future::join_all;
use smyth_config::{HandlerConfig, RoutePattern};

use crate::invocation::Rejection;
use crate::messages::*;
use crate::shadow::{ShadowByName, ShadowRunner};
use crate::status::HandlerStatus;
use crate::supervisor::{GetHandlerStatus, HandlerSupervisor};

pub struct Route {
    pub pattern: RoutePattern,
    pub handler: String,
    pub event_format: smyth_config::EventFormat,
    pub tenant_id_header: Option<String>,
    pub supervisor: Addr<HandlerSupervisor>,
    /// The handler's throwaway environments (`shadow/`), for replays.
    pub shadow: Option<Addr<ShadowRunner>>,
}

impl Route {
    pub fn new(handler: &HandlerConfig, supervisor: Addr<HandlerSupervisor>) -> Self {
        Self {
            pattern: handler.route.clone(),
            handler: handler.name.clone(),
            event_format: handler.event_format,
            tenant_id_header: handler.tenant_id_header.clone(),
            supervisor,
            shadow: None,
        }
    }

    pub fn with_shadow(self, shadow: Addr<ShadowRunner>) -> Self {
        Self { shadow: Some(shadow), ..self }
    }
}

/// Routes in config order: the first pattern that matches wins.
pub struct RouterActor {
    routes: Vec<Route>,
}

impl RouterActor {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
    }
}

impl Handler<RouteRequest> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: RouteRequest, _: &mut Context<Self>) {
        let found = self.routes.iter().find_map(|route| {
            let params = route.pattern.matches(&msg.path)?;
            let matched = RouteMatch {
                handler: route.handler.clone(),
                url_path: route.pattern.as_str().to_string(),
                event_format: route.event_format,
                path_params: params,
                tenant_id_header: route.tenant_id_header.clone(),
            };
            Some((route.supervisor.clone(), matched))
        });
        let Some((supervisor, matched)) = found else {
            let _ = msg.reply.send(Err(Rejection::NotFound(msg.path)));
            return;
        };
        if let Some(invocation) = (msg.build)(&matched) {
            supervisor.do_send(Invoke { invocation, reply: msg.reply });
        }
    }
}

impl Handler<InvokeByName> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: InvokeByName, _: &mut Context<Self>) {
        match self.routes.iter().find(|r| r.handler == msg.name) {
            Some(route) => route.supervisor.do_send(Invoke { invocation: msg.invocation, reply: msg.reply }),
            None => {
                let _ = msg.reply.send(Err(Rejection::NotFound(msg.name)));
            }
        }
    }
}

impl Handler<GetStatus> for RouterActor {
    type Result = ResponseFuture<Vec<HandlerStatus>>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let asks: Vec<_> = self.routes.iter().map(|r| r.supervisor.send(GetHandlerStatus)).collect();
        Box::pin(async move { join_all(asks).await.into_iter().filter_map(Result::ok).collect() })
    }
}

impl Handler<Shutdown> for RouterActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let stops: Vec<_> = self.routes.iter().map(|r| r.supervisor.send(msg)).collect();
        Box::pin(async move {
            join_all(stops).await;
        })
    }
}

impl Handler<Reload> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Reload, _: &mut Context<Self>) {
        for route in &self.routes {
            route.supervisor.do_send(msg);
        }
    }
}

impl RouterActor {
    fn supervisor(&self, name: &str) -> Option<Addr<HandlerSupervisor>> {
        self.routes.iter().find(|r| r.handler == name).map(|r| r.supervisor.clone())
    }
}

impl Handler<SetReservedConcurrency> for RouterActor {
    type Result = ResponseFuture<Result<(), Rejection>>;

    fn handle(&mut self, msg: SetReservedConcurrency, _: &mut Context<Self>) -> Self::Result {
        let supervisor = self.supervisor(&msg.name);
        Box::pin(async move {
            let Some(supervisor) = supervisor else { return Err(Rejection::NotFound(msg.name)) };
            supervisor.send(msg).await.unwrap_or(Err(Rejection::Unavailable))
        })
    }
}

impl Handler<SetProvisionedConcurrency> for RouterActor {
    type Result = ResponseFuture<Result<(), Rejection>>;

    fn handle(&mut self, msg: SetProvisionedConcurrency, _: &mut Context<Self>) -> Self::Result {
        let supervisor = self.supervisor(&msg.name);
        Box::pin(async move {
            let Some(supervisor) = supervisor else { return Err(Rejection::NotFound(msg.name)) };
            supervisor.send(msg).await.unwrap_or(Err(Rejection::Unavailable))
        })
    }
}

impl Handler<ShadowByName> for RouterActor {
    type Result = ();

    /// A replay: runs on the handler's shadow environment, never on its pool.
    fn handle(&mut self, msg: ShadowByName, _: &mut Context<Self>) {
        match self.routes.iter().find(|r| r.handler == msg.name).and_then(|r| r.shadow.as_ref()) {
            Some(shadow) => shadow.do_send(msg.shadow),
            None => {
                let _ = msg.shadow.reply.send(Vec::new());
            }
        }
    }
}
