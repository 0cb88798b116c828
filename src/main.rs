//! The `parity` binary: parse arguments, run the verb, map the outcome to an exit code
//! (0 pass, 1 mismatch, 2 could not evaluate). Errors print as one line, never a backtrace.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    parity::panic_guard::install_hook();
    let cli = parity::cli::Cli::parse();
    match cli.run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
