//! Key expressions, in one place: every process and every tool (also those that never join
//! the bus) builds and checks keys with these, so a key is spelled the same everywhere.

use crate::ActorId;

/// Checks one key-expression segment (robot, actor or instance name): not empty, and no
/// separator, wildcard or space that would change what a key matches.
pub fn check_segment(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains(['/', '*', '$', '?', '#', ' ']) {
        Err(format!(
            "{s:?} is not a valid key segment (no '/', '*', '$', '?', '#' or spaces)"
        ))
    } else {
        Ok(())
    }
}

/// `qubot/<robot>/<actor>/<instance>/<topic>`; any segment may be `*` in a subscription.
pub fn key(robot: &str, actor: &str, instance: &str, topic: &str) -> String {
    format!("qubot/{robot}/{actor}/{instance}/{topic}")
}

/// `qubot/<robot>/@live/<actor>/<instance>`: the prefix of the token an actor process holds
/// while it is up (the token itself adds the process's source id, see [`token_key`]).
pub fn liveliness_key(robot: &str, actor: &str, instance: &str) -> String {
    format!("qubot/{robot}/@live/{actor}/{instance}")
}

/// `qubot/<robot>/@live/<actor>/<instance>/<source id, 16 hex digits>`: the token carries the
/// per-start source id that this process stamps in every header, so consumers can bind to it.
pub fn token_key(robot: &str, actor: &str, instance: &str, source: ActorId) -> String {
    format!("{}/{:016x}", liveliness_key(robot, actor, instance), source.0)
}

/// The source id at the end of a token key, if it is one.
pub fn token_source(key: &str) -> Option<ActorId> {
    let hex = key.rsplit('/').next()?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .filter(|&id| id != 0)
        .map(ActorId)
}
