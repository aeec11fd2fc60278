//! How an actor runs its periodic work: each timer on deadlines ([`qubot_runtime::ticker`]),
//! its thread under the realtime profile when the node config turns it on for the actor.

use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, AsyncContext, Context, Handler};
use qubot_msg::Role;
use qubot_node::{NodeConfig, RealtimeSection};
use qubot_runtime::realtime::{Profile, Refusal};
use qubot_runtime::{ticker, Tick, Timer};

/// The realtime profile of `role`, if the node config turns it on for it.
pub fn profile(cfg: &NodeConfig, role: Role) -> Option<Profile> {
    cfg.realtime.applies_to(role).then(|| profile_of(&cfg.realtime))
}

/// What the `[realtime]` section asks of a thread and a process.
pub fn profile_of(rt: &RealtimeSection) -> Profile {
    Profile {
        priority: Some(rt.priority),
        cpus: rt.cpus.clone(),
        lock_memory: rt.lock_memory,
    }
}

/// Applies `role`'s profile to its process and the calling (the actor's own) thread, after
/// the bus is open: zenoh's threads keep normal scheduling and every CPU. Refused and
/// required is an error naming the key; refused otherwise is counted and said.
pub fn apply_at_start(cfg: &NodeConfig, role: Role) -> Result<(), String> {
    let Some(p) = profile(cfg, role) else {
        return Ok(());
    };
    let mut r = p.apply_to_process();
    r.extend(p.apply_to_this_thread());
    match r.first() {
        Some(first) if cfg.realtime.required => Err(format!("{first} (realtime.required = true)")),
        _ => {
            refused(role, "main", &r);
            if r.is_empty() {
                tracing::info!(actor = role.name(), priority = p.priority, cpus = ?p.cpus, locked = p.lock_memory, "realtime profile applied");
            }
            Ok(())
        }
    }
}

/// Counts and reports what the system refused of the profile. The actor process checked the
/// same profile on its main thread at start-up (and stopped there if it was required), so
/// here a refusal is only counted and said.
pub fn refused(role: Role, what: &str, refusals: &[Refusal]) {
    for r in refusals {
        metrics::counter!(
            qubot_bus::telemetry::REALTIME_REFUSED,
            "actor" => role.name(),
            "part" => r.part
        )
        .increment(1);
        tracing::warn!(
            actor = role.name(),
            thread = what,
            "realtime profile: {r}; running with normal scheduling"
        );
    }
}

/// Starts `kind`'s timer (its metrics say `name`) every `period` for the actor of `ctx`.
/// A timer that cannot start (no thread) stops the actor's system: a loop without its clock
/// is not a loop.
pub fn every<A, K>(
    ctx: &mut Context<A>,
    role: Role,
    kind: K,
    name: &'static str,
    period: Duration,
    rt: Option<Profile>,
) where
    A: Actor<Context = Context<A>> + Handler<Tick<K>>,
    Context<A>: ToEnvelope<A, Tick<K>>,
    K: Copy + Send + 'static,
{
    let timer = Timer { kind, name, period };
    let on_start = move || {
        if let Some(p) = rt {
            refused(role, name, &p.apply_to_this_thread());
        }
    };
    if let Err(e) = ticker::start(ctx.address(), role.name(), timer, on_start) {
        tracing::error!(actor = role.name(), timer = name, error = %e, "cannot start the timer thread");
        actix::System::current().stop_with_code(1);
    }
}
