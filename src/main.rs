//! The `signet` binary: `serve` plus client sub-commands.

fn main() -> std::process::ExitCode {
    signet::cli::main()
}
