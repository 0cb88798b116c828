//! How values look in every renderer: terminal colour for verdicts, compact numbers,
//! multi-dimensional indices. Shared by the text report, the matrix table and the
//! Markdown/HTML/JUnit writers, so one number reads the same everywhere.

use super::CaseVerdict;

/// ANSI styling that is a no-op when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// A verdict word, green/red/yellow, padded to `width`.
    pub fn verdict(self, v: CaseVerdict, width: usize) -> String {
        self.verdict_text(v, &format!("{:<width$}", v.name()))
    }

    /// Any text coloured like verdict `v`.
    pub fn verdict_text(self, v: CaseVerdict, padded: &str) -> String {
        match v {
            CaseVerdict::Pass => self.paint("32", padded),
            CaseVerdict::Fail => self.paint("31;1", padded),
            CaseVerdict::Error => self.paint("33;1", padded),
        }
    }

    /// Dimmed secondary text.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// A number in reports: compact scientific notation, `-` when absent.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(0.0) => "0".to_string(),
        Some(v) if v.is_nan() => "NaN".to_string(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.to_string(),
        Some(v) if (1e-3..1e4).contains(&v.abs()) => format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        Some(v) => format!("{v:.2e}"),
    }
}

/// A multi-dimensional index as `[0, 3]`.
pub fn index(ix: &Option<Vec<usize>>) -> String {
    match ix {
        None => "-".to_string(),
        Some(ix) => format!("{ix:?}"),
    }
}
