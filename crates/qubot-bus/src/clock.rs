//! Clock probe: every process answers queries on `qubot/<robot>/@clock/<actor>/<instance>/<id>`
//! with the clock it stamps headers with, so `qubot health` can measure how far each process's
//! clock is from its own (NTP's on-wire method: one exchange bounds the offset by half its
//! round trip; the exchange with the shortest round trip is the tightest bound).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use qubot_msg::{now_ns, ActorId};
use zenoh::{
    query::{ConsolidationMode, QueryTarget, Queryable},
    Session, Wait,
};

/// `qubot/<robot>/@clock/<actor>/<instance>/<source id>`. Like `@live`, a verbatim chunk: no
/// wildcard over the robot's data keys reaches it.
pub fn clock_key(robot: &str, actor: &str, instance: &str, source: ActorId) -> String {
    format!("qubot/{robot}/@clock/{actor}/{instance}/{:016x}", source.0)
}

/// Answers every clock query with this process's stamp clock (8 bytes, little-endian ns).
pub(crate) fn declare_clock(session: &Session, key: String) -> zenoh::Result<Queryable<()>> {
    let ke = zenoh::key_expr::KeyExpr::try_from(key)?;
    let own = ke.clone();
    session
        .declare_queryable(ke)
        .callback(move |query| {
            let stamp = now_ns().to_le_bytes();
            // Answered under this process's own key: the prober tells the clocks apart by it.
            if let Err(e) = query.reply(own.clone(), stamp.to_vec()).wait() {
                tracing::debug!(error = %e, "answering a clock query");
            }
        })
        .wait()
}

/// One process's clock as seen from the prober.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    /// Its clock minus the prober's, at the midpoint of the best exchange, in ms.
    pub offset_ms: f64,
    /// Round trip of that exchange, ms: the offset is exact to within half of it.
    pub rtt_ms: f64,
}

impl ClockReading {
    /// The smallest skew consistent with the measurement: |offset| minus the uncertainty.
    pub fn skew_at_least_ms(&self) -> f64 {
        (self.offset_ms.abs() - self.rtt_ms / 2.0).max(0.0)
    }
}

/// The offset and round trip of one exchange: sent at `t0`, answered with `remote`, the answer
/// received at `t3` (all ns).
fn exchange(t0: u64, remote: u64, t3: u64) -> ClockReading {
    let mid = t0 as f64 / 2.0 + t3 as f64 / 2.0;
    ClockReading {
        offset_ms: (remote as f64 - mid) / 1e6,
        rtt_ms: t3.saturating_sub(t0) as f64 / 1e6,
    }
}

/// Queries the clocks of every process of `robot` `rounds` times and keeps, per answering key
/// (`<actor>/<instance>/<id>`), the exchange with the shortest round trip.
pub fn probe_clocks(
    session: &Session,
    robot: &str,
    rounds: u32,
    timeout: Duration,
) -> BTreeMap<String, ClockReading> {
    let prefix = format!("qubot/{robot}/@clock/");
    let best: Arc<Mutex<BTreeMap<String, ClockReading>>> = Arc::default();
    for _ in 0..rounds {
        let t0 = now_ns();
        let (b, p) = (best.clone(), prefix.clone());
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<()>(1);
        // The callback stamps each answer on arrival, before any queueing on our side; it is
        // dropped (and `done` fires) when the query is finished or timed out.
        let guard = DoneOnDrop(Some(done_tx));
        let got = session
            .get(format!("{prefix}**"))
            // Every process answers, and each answer is delivered as it lands (consolidation
            // would hold answers back and stretch the measured round trips).
            .target(QueryTarget::All)
            .consolidation(ConsolidationMode::None)
            .timeout(timeout)
            .callback(move |reply| {
                let _keep = &guard;
                let t3 = now_ns();
                let Ok(sample) = reply.result() else { return };
                let Some(who) = sample.key_expr().as_str().strip_prefix(&p) else {
                    return;
                };
                let Ok(bytes) = <[u8; 8]>::try_from(sample.payload().to_bytes().as_ref()) else {
                    return;
                };
                let r = exchange(t0, u64::from_le_bytes(bytes), t3);
                let mut best = b.lock().unwrap_or_else(|e| e.into_inner());
                let slot = best.entry(who.to_owned()).or_insert(r);
                if r.rtt_ms < slot.rtt_ms {
                    *slot = r;
                }
            })
            .wait();
        if got.is_err() {
            continue;
        }
        let _ = done_rx.recv_timeout(timeout + Duration::from_secs(1));
    }
    let out = best.lock().unwrap_or_else(|e| e.into_inner()).clone();
    out
}

struct DoneOnDrop(Option<std::sync::mpsc::SyncSender<()>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_bounds_the_offset_by_half_its_round_trip() {
        // Sent at 1000 ms, answered with 1030 ms, back at 1010 ms: the remote is 25 ms ahead.
        let r = exchange(1_000_000_000, 1_030_000_000, 1_010_000_000);
        assert!((r.offset_ms - 25.0).abs() < 1e-9, "{r:?}");
        assert!((r.rtt_ms - 10.0).abs() < 1e-9, "{r:?}");
        assert!((r.skew_at_least_ms() - 20.0).abs() < 1e-9);
        // Behind, and within the uncertainty: no skew can be claimed.
        let r = exchange(1_000_000_000, 1_003_000_000, 1_010_000_000);
        assert!((r.offset_ms + 2.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.skew_at_least_ms(), 0.0);
        // An answer that seems to arrive before it was sent (clock stepped): no negative RTT.
        assert_eq!(exchange(10, 5, 5).rtt_ms, 0.0);
    }

    #[test]
    fn the_key_is_verbatim_under_the_robot() {
        assert_eq!(
            clock_key("r1", "sensor", "lidar0", ActorId(0xab)),
            "qubot/r1/@clock/sensor/lidar0/00000000000000ab"
        );
    }
}
