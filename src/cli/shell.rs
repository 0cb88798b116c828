//! What a command-line tool is expected to bring besides its verbs: shell completions
//! (`parity completions bash|zsh|fish|elvish|powershell`), manual pages generated from
//! the same clap definitions the parser uses (`parity man`), and a `--version` that says
//! which ONNX Runtime this binary would load (docs/install.md).

use super::Global;
use crate::error::{Error, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;

/// Print a completion script for a shell.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Install, e.g.:\n  parity completions bash > ~/.local/share/bash-completion/completions/parity\n  parity completions zsh > ~/.zfunc/_parity   (with fpath+=~/.zfunc before compinit)\n  parity completions fish > ~/.config/fish/completions/parity.fish"
)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the manual page, or write one per verb.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  parity man | man -l -\n  parity man --out /usr/local/share/man/man1   (parity.1, parity-check.1, ...)"
)]
pub struct ManArgs {
    /// Write parity.1 and parity-VERB.1 for every verb into this directory instead of
    /// printing parity.1.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `parity completions SHELL`.
pub fn completions(args: CompletionsArgs, _global: Global) -> Result<u8> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "parity", &mut std::io::stdout());
    Ok(0)
}

/// `parity man [--out DIR]`.
pub fn man(args: ManArgs, _global: Global) -> Result<u8> {
    let cmd = super::Cli::command();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        render(&cmd, &mut page)?;
        std::io::stdout()
            .write_all(&page)
            .map_err(|e| Error::Usage(format!("cannot write the manual page: {e}")))?;
        return Ok(0);
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::Write {
        path: dir.clone(),
        source: e,
    })?;
    let pages = std::iter::once(("parity".to_string(), cmd.clone())).chain(
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| {
            let name = format!("parity-{}", s.get_name());
            (name.clone(), s.clone().name(name))
        }),
    );
    for (name, page) in pages {
        let mut text = Vec::new();
        render(&page, &mut text)?;
        let path = dir.join(format!("{name}.1"));
        crate::formats::atomic::write_atomic(&path, |w| w.write_all(&text))?;
        println!("{}", path.display());
    }
    Ok(0)
}

/// One roff page.
fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<()> {
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .map_err(|e| Error::Usage(format!("cannot render the manual page: {e}")))
}

/// `parity --version`: parity's version and the ONNX Runtime library this binary loads
/// (or why none), the first thing to ask for in a bug report.
pub fn version_text() -> String {
    format!("{}\n{}", env!("CARGO_PKG_VERSION"), onnx_runtime_line())
}

#[cfg(feature = "ort-backend")]
fn onnx_runtime_line() -> String {
    match crate::backend::ort::runtime() {
        Ok(rt) => format!(
            "ONNX Runtime {} ({}, found via {})",
            rt.library.version,
            rt.library.path.display(),
            rt.library.source
        ),
        Err(why) => format!("ONNX Runtime: not available: {why}"),
    }
}

#[cfg(not(feature = "ort-backend"))]
fn onnx_runtime_line() -> String {
    "ONNX Runtime: not compiled into this build (cargo feature `ort-backend`)".to_string()
}
