//! Qubot's operator tooling, as a library the binary's subcommands call: chaos scenarios, their
//! runner and judge (`chaos`), the fleet inventory and what is rendered from it (`inventory`),
//! the `/metrics` client and text parser (`promtext`), `qubot top`'s view (`top`), what
//! `qubot up` prints, typed (`run`: its events and run report), and the one way to start and
//! watch a child process and find free ports (`process`), which the bench harness and the
//! tests share.
//!
//! Must not depend on zenoh or actix: it reads processes from outside (their `/metrics`, their
//! stdout, signals), so its unit tests run without a bus. What it starts is the `qubot` binary,
//! whose path the caller passes in.

pub mod chaos;
pub mod inventory;
pub mod process;
pub mod promtext;
pub mod run;
pub mod top;
