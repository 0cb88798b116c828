//! The `parity` binary: parse arguments, run the verb, map the outcome to an exit code
//! (0 pass, 1 mismatch, 2 could not evaluate). Errors print as one line, never a backtrace.

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    parity::panic_guard::install_hook();
    let mut command = parity::cli::Cli::command();
    // Only `--version` looks for ONNX Runtime before a verb needs it.
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        command = command.version(parity::cli::version_text());
    }
    let parsed = command
        .try_get_matches()
        .and_then(|m| parity::cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help, --version, and the full help when no verb is given.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's own message on one line like every other error: what precedes its
            // usage block, blank lines dropped.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", message.join(" "));
            return ExitCode::from(2);
        }
    };
    parity::backend::pin_process_threads(cli.threads());
    // PARITY_COMPARE_DEVICE=cuda without a usable GPU (or an unknown value) is refused
    // before any work, like any other unavailable device.
    if let Err(e) = parity::compare::gpu::check_device_setting() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli.run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
