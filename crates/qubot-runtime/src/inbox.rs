use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::ArrayQueue;
use metrics::{Counter, Gauge};
use qubot_bus::telemetry;
use qubot_msg::DropReason;

/// What a full inbox gives up (docs/ARCHITECTURE.md §5). Each policy counts its drops under its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropPolicy {
    /// Refuse the incoming message (`reason="mailbox_full"`): keeps the oldest, e.g. a log.
    Newest,
    /// Evict the oldest queued message (`reason="evicted"`): freshest N win.
    Oldest,
    /// Capacity one, the newest replaces the queued one (`reason="superseded"`): sensor data.
    KeepLatest,
}

impl DropPolicy {
    pub fn reason(self) -> DropReason {
        match self {
            DropPolicy::Newest => DropReason::MailboxFull,
            DropPolicy::Oldest => DropReason::Evicted,
            DropPolicy::KeepLatest => DropReason::Superseded,
        }
    }
}

impl std::str::FromStr for DropPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "newest" => Ok(DropPolicy::Newest),
            "oldest" => Ok(DropPolicy::Oldest),
            "keep-latest" => Ok(DropPolicy::KeepLatest),
            _ => Err(format!(
                "unknown drop policy {s:?} (expected newest, oldest or keep-latest)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxOptions {
    pub capacity: usize,
    pub policy: DropPolicy,
}

impl InboxOptions {
    pub const KEEP_LATEST: InboxOptions = InboxOptions {
        capacity: 1,
        policy: DropPolicy::KeepLatest,
    };

    pub fn new(capacity: usize, policy: DropPolicy) -> Self {
        let capacity = if policy == DropPolicy::KeepLatest {
            1
        } else {
            capacity.max(1)
        };
        InboxOptions { capacity, policy }
    }
}

/// A bounded queue between zenoh's callback threads (producers) and one actor (consumer).
/// It never grows past its capacity, and at most one wake-up is outstanding at a time, so the
/// actix mailbox behind it stays bounded too. Lock-free: a producer never waits for the actor
/// (a fixed ring allocated once), and every message the policy gives up is counted exactly
/// (`push` refuses it, or `force_push` hands back the one it evicted).
pub struct Inbox<T> {
    queue: ArrayQueue<T>,
    opts: InboxOptions,
    scheduled: AtomicBool,
    depth: Gauge,
    dropped: Counter,
}

impl<T> Inbox<T> {
    pub fn new(opts: InboxOptions, actor: &str, topic: &str) -> Self {
        let opts = InboxOptions::new(opts.capacity, opts.policy);
        let labels = [("actor", actor.to_owned())];
        metrics::gauge!(telemetry::MAILBOX_CAPACITY, &labels).set(opts.capacity as f64);
        Inbox {
            queue: ArrayQueue::new(opts.capacity),
            opts,
            scheduled: AtomicBool::new(false),
            depth: metrics::gauge!(telemetry::MAILBOX_DEPTH, &labels),
            dropped: telemetry::dropped(actor, topic, opts.policy.reason()),
        }
    }

    pub fn options(&self) -> InboxOptions {
        self.opts
    }

    /// Queues `item`, applying the drop policy when full. Returns true when the caller must
    /// wake the consumer (it was idle).
    pub fn push(&self, item: T) -> bool {
        match self.opts.policy {
            DropPolicy::Newest => {
                if self.queue.push(item).is_err() {
                    self.dropped.increment(1);
                    return false;
                }
            }
            DropPolicy::Oldest | DropPolicy::KeepLatest => {
                if self.queue.force_push(item).is_some() {
                    self.dropped.increment(1);
                }
            }
        }
        self.depth.set(self.queue.len() as f64);
        // SeqCst here and in `rearm`: a push that the consumer's emptiness check missed must
        // see `scheduled` false, or the message would wait for the next one.
        !self.scheduled.swap(true, Ordering::SeqCst)
    }

    /// Takes the oldest item. The depth gauge is left to [`Inbox::publish_depth`], which the
    /// consumer calls once per drained batch rather than once per message.
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Sets the depth gauge to what is queued now.
    pub fn publish_depth(&self) {
        self.depth.set(self.len() as f64);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The consumer calls this after draining a batch. Returns true when it must schedule
    /// itself again: items arrived that no producer will wake it for.
    pub fn rearm(&self) -> bool {
        self.scheduled.store(false, Ordering::SeqCst);
        !self.is_empty() && !self.scheduled.swap(true, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(inbox: &Inbox<u32>) -> Vec<u32> {
        std::iter::from_fn(|| inbox.pop()).collect()
    }

    #[test]
    fn newest_refuses_incoming() {
        let inbox = Inbox::new(InboxOptions::new(2, DropPolicy::Newest), "t", "x");
        assert!(inbox.push(1));
        assert!(!inbox.push(2));
        assert!(!inbox.push(3));
        assert_eq!(drain(&inbox), vec![1, 2]);
    }

    #[test]
    fn oldest_evicts_head() {
        let inbox = Inbox::new(InboxOptions::new(2, DropPolicy::Oldest), "t", "x");
        for i in 1..=5 {
            inbox.push(i);
        }
        assert_eq!(drain(&inbox), vec![4, 5]);
    }

    #[test]
    fn keep_latest_holds_one() {
        let inbox = Inbox::new(InboxOptions::new(10, DropPolicy::KeepLatest), "t", "x");
        for i in 1..=5 {
            inbox.push(i);
        }
        assert_eq!(inbox.options().capacity, 1);
        assert_eq!(drain(&inbox), vec![5]);
    }

    #[test]
    fn one_wake_until_rearmed() {
        let inbox = Inbox::new(InboxOptions::new(8, DropPolicy::Newest), "t", "x");
        assert!(inbox.push(1), "idle consumer must be woken");
        assert!(!inbox.push(2), "already scheduled");
        assert_eq!(drain(&inbox), vec![1, 2]);
        assert!(!inbox.rearm(), "empty: nothing to reschedule");
        assert!(inbox.push(3), "idle again");
        // An item that lands while the consumer is finishing makes rearm reschedule.
        assert!(inbox.rearm());
    }

    #[test]
    fn policy_parses() {
        assert_eq!("keep-latest".parse::<DropPolicy>(), Ok(DropPolicy::KeepLatest));
        assert!("lifo".parse::<DropPolicy>().is_err());
    }
}
