//! Recordings read by another implementation than the one that wrote them: the MCAP format's
//! Python package (and Foxglove's Python decoders), run as `python3 -c SCRIPT FILE`.

use std::path::Path;
use std::process::Command;

use super::{json, runs, skip_or_fail};

/// Whether python3 with the `mcap` package is there; otherwise `test` is skipped (failed under
/// CI=true).
pub fn python_mcap(test: &str) -> bool {
    if runs("python3", &["-c", "import mcap"]) {
        return true;
    }
    skip_or_fail(
        test,
        "python3 with the mcap package (pip install mcap) is not installed",
    );
    false
}

/// `script` run by python3 on `path`: the JSON line it prints.
pub fn python(script: &str, path: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python reader on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    json(String::from_utf8_lossy(&out.stdout).trim())
}
