//! One module per `qubot` subcommand that runs in this process (the supervisor, `up`, has
//! its own folder); start-up they share is in `startup`, dispatch in `lib.rs`.

pub mod actor;
pub mod flood;
pub mod health;
pub mod inject;
pub mod inventory;
pub mod listen;
pub mod record;
pub mod replay;
pub mod router;
pub mod top;
