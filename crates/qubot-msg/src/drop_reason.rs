//! Why a message was dropped: every drop is counted under exactly one of these, and its
//! [`DropReason::label`] is the `reason` label of `qubot_messages_dropped_total`
//! (docs/ARCHITECTURE.md §6).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    // Inbox policies (the message was received, then not queued or pushed out).
    /// Refused by a full inbox that keeps the oldest.
    MailboxFull,
    /// Pushed out of a full inbox that keeps the newest.
    Evicted,
    /// Replaced by a newer message in a keep-latest inbox, or while the planner was busy.
    Superseded,
    // Decoding.
    Truncated,
    BadMagic,
    BadVersion,
    BadKind,
    /// A length above the wire format's limits, or a scan above the planner's beam limit.
    Oversize,
    /// A body that does not decode or does not agree with its payload.
    Malformed,
    // The sender.
    /// A gap in a publisher's sequence numbers: messages that never arrived.
    Lost,
    /// Not from the producer this consumer is bound to.
    Foreign,
    // The handlers' rules.
    /// Too old to act on (a command past its deadline, a scan older than the budget).
    Stale,
    /// A command with values no drive may apply (not finite).
    Invalid,
    /// A scan whose stamped pose is too far from odometry.
    Implausible,
    /// A scan with no odometry pose at its capture time.
    NoPose,
}

impl DropReason {
    pub const ALL: [DropReason; 15] = [
        DropReason::MailboxFull,
        DropReason::Evicted,
        DropReason::Superseded,
        DropReason::Truncated,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::BadKind,
        DropReason::Oversize,
        DropReason::Malformed,
        DropReason::Lost,
        DropReason::Foreign,
        DropReason::Stale,
        DropReason::Invalid,
        DropReason::Implausible,
        DropReason::NoPose,
    ];

    /// Dropped between the wire and the handler: what accounting adds to `received` to
    /// reach `published` (the inbox policies, lost and foreign messages).
    pub const BEFORE_HANDLER: [DropReason; 5] = [
        DropReason::MailboxFull,
        DropReason::Evicted,
        DropReason::Superseded,
        DropReason::Lost,
        DropReason::Foreign,
    ];

    /// A message that is not a well-formed Qubot message.
    pub const DECODE: [DropReason; 6] = [
        DropReason::Truncated,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::BadKind,
        DropReason::Oversize,
        DropReason::Malformed,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::MailboxFull => "mailbox_full",
            DropReason::Evicted => "evicted",
            DropReason::Superseded => "superseded",
            DropReason::Truncated => "truncated",
            DropReason::BadMagic => "bad_magic",
            DropReason::BadVersion => "bad_version",
            DropReason::BadKind => "bad_kind",
            DropReason::Oversize => "oversize",
            DropReason::Malformed => "malformed",
            DropReason::Lost => "lost",
            DropReason::Foreign => "foreign",
            DropReason::Stale => "stale",
            DropReason::Invalid => "invalid",
            DropReason::Implausible => "implausible",
            DropReason::NoPose => "no_pose",
        }
    }

    pub fn from_label(label: &str) -> Option<DropReason> {
        DropReason::ALL.into_iter().find(|r| r.label() == label)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_round_trip() {
        for r in DropReason::ALL {
            assert_eq!(DropReason::from_label(r.label()), Some(r));
            assert_eq!(
                DropReason::ALL.iter().filter(|q| q.label() == r.label()).count(),
                1
            );
        }
        for r in DropReason::BEFORE_HANDLER.into_iter().chain(DropReason::DECODE) {
            assert!(DropReason::ALL.contains(&r));
        }
    }
}
