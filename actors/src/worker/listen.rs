//! The worker's Runtime API endpoint, opened when its first process starts (see `crate::endpoint`):
//! a slot that never runs holds no socket. The endpoint then lives as long as the slot, so every later
//! process of the slot finds the same address.

use actix::prelude::*;

use super::WorkerActor;
use crate::endpoint::{Endpoint, RuntimeTarget, Transport};

impl WorkerActor {
    /// Puts the Runtime API's address into `env`, opening the endpoint first if this slot has none.
    /// The error is the reason the process cannot start, with the limit to raise when it is the
    /// open-file limit.
    pub(super) fn runtime_env(
        &mut self,
        ctx: &mut Context<Self>,
        env: &mut crate::worker_env::WorkerEnv,
    ) -> Result<(), String> {
        if self.endpoint.is_none() {
            let transport = crate::endpoint::transport_for(&self.handler.runtime);
            let endpoint = self
                .endpoints
                .open(RuntimeTarget::Worker(ctx.address()), transport)
                .map_err(|err| open_failure(&self.handler.name, &self.name, transport, &err))?;
            self.endpoint = Some(endpoint);
        }
        let Endpoint { env: vars, .. } = self.endpoint.as_ref().expect("opened above");
        env.extend(vars.iter().cloned());
        Ok(())
    }
}

/// Why a slot's endpoint could not be opened; out of descriptors names the limit and the keys.
pub fn open_failure(handler: &str, worker: &str, transport: Transport, err: &std::io::Error) -> String {
    let what = match transport {
        Transport::Tcp => "a Runtime API port",
        Transport::TcpAndUnix => "a Runtime API port and socket",
    };
    if err.raw_os_error() == Some(nix::libc::EMFILE) || err.raw_os_error() == Some(nix::libc::ENFILE) {
        let (soft, hard) = crate::fd_limit::open_file_limit();
        format!(
            "cannot open {what} for {worker}: the open-file limit (RLIMIT_NOFILE, soft {soft}, hard \
             {hard}) is reached; every running worker holds a few descriptors: lower `concurrency` or \
             `provisioned_concurrency` of handler `{handler}`, or raise the limit (`ulimit -n`)"
        )
    } else {
        format!("cannot open {what} for {worker}: {err}")
    }
}
