use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the signal's name on the first SIGTERM or SIGINT. Call inside the actix
/// System (its runtime has the I/O driver signals need).
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
