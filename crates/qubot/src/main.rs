//! `qubot`: the one binary. Thin on purpose: everything lives in the library.

fn main() -> std::process::ExitCode {
    qubot::main()
}
