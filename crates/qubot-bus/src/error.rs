/// Errors of the bus. zenoh's own errors are boxed trait objects; we keep their text as the
/// source so the cause is printed with the context.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("reading zenoh config file {path}")]
    ConfigFile {
        path: std::path::PathBuf,
        #[source]
        source: ZenohError,
    },
    #[error("zenoh config: setting {key}={value}")]
    ConfigKey {
        key: String,
        value: String,
        #[source]
        source: ZenohError,
    },
    #[error("opening the zenoh session")]
    Open(#[source] ZenohError),
    #[error("declaring {what} on {key}")]
    Declare {
        what: &'static str,
        key: String,
        #[source]
        source: ZenohError,
    },
}

/// A zenoh error turned into an owned, `Send + Sync` error that keeps its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ZenohError(pub String);

impl ZenohError {
    pub(crate) fn from_display(e: impl std::fmt::Display) -> Self {
        ZenohError(e.to_string())
    }
}
