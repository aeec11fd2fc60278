//! `qubot`: the one binary. Thin on purpose: everything lives in the library.

fn main() -> std::process::ExitCode {
    // Heap-profiling builds record every allocation from here to the end of main.
    #[cfg(feature = "dhat-heap")]
    let _heap = qubot::heap::Profile::start();
    qubot::main()
}
