//! Heap profiling (`--features dhat-heap`): the whole process runs under dhat's allocator;
//! at exit it writes dhat's profile (open it in dhat's viewer, dh_view.html) and a summary of
//! the totals next to it. `just heap ACTOR` drives this.

use std::path::PathBuf;

/// Where the profile goes: `$QUBOT_HEAP_OUT`, else `dhat-heap.json` in the working directory.
/// The summary is the same path with `.summary.json`.
pub struct Profile {
    profiler: Option<dhat::Profiler>,
    out: PathBuf,
}

impl Profile {
    pub fn start() -> Profile {
        let out = std::env::var_os("QUBOT_HEAP_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| "dhat-heap.json".into());
        let profiler = dhat::Profiler::builder().file_name(&out).build();
        Profile {
            profiler: Some(profiler),
            out,
        }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let s = dhat::HeapStats::get();
        let summary = serde_json::json!({
            "total_bytes": s.total_bytes,
            "total_blocks": s.total_blocks,
            "peak_bytes": s.max_bytes,
            "peak_blocks": s.max_blocks,
            "live_bytes_at_exit": s.curr_bytes,
            "live_blocks_at_exit": s.curr_blocks,
        });
        let path = self.out.with_extension("summary.json");
        if let Err(e) = std::fs::write(&path, summary.to_string()) {
            eprintln!("qubot: writing {}: {e}", path.display());
        }
        // Dropping the profiler writes the dhat profile itself.
        self.profiler.take();
    }
}
