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

/// An expected and an actual value as [`num`] shows them, with as many more significant
/// digits as it takes for two different values to read differently (`0.59868985` and
/// `0.59868991`, not `0.5987` twice): a failure must never show two equal numbers.
pub fn num_pair(expected: Option<f64>, actual: Option<f64>) -> (String, String) {
    let (e, a) = (num(expected), num(actual));
    let (Some(x), Some(y)) = (expected, actual) else {
        return (e, a);
    };
    if e != a || x == y || x.to_bits() == y.to_bits() {
        return (e, a);
    }
    // f64 needs at most 17 significant digits to tell any two values apart.
    (5..=17)
        .map(|digits| (significant(x, digits), significant(y, digits)))
        .find(|(e, a)| e != a)
        .unwrap_or((format!("{x:e}"), format!("{y:e}")))
}

/// A finite or not number with `digits` significant digits, in [`num`]'s style: plain
/// between 1e-3 and 1e4, scientific otherwise, trailing zeros dropped.
fn significant(v: f64, digits: usize) -> String {
    if !v.is_finite() || v == 0.0 {
        return num(Some(v));
    }
    if (1e-3..1e4).contains(&v.abs()) {
        let magnitude = v.abs().log10().floor() as i64;
        let decimals = (digits as i64 - 1 - magnitude).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.*e}", digits - 1)
    }
}

/// A share of tolerance used, as a percentage with two or three significant digits
/// (`9756%`, `37.2%`, `3.5%`, `0.04%`, `<0.01%`, `0%`), `inf` when unbounded, `-` when
/// absent. The JSON holds the exact figure.
pub fn share(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".to_string();
    };
    if !v.is_finite() {
        return num(Some(v));
    }
    let p = v * 100.0;
    let digits = match p {
        0.0 => return "0%".to_string(),
        p if p < 0.01 => return "<0.01%".to_string(),
        p if p >= 1e6 => return format!("{p:.1e}%"),
        p if p >= 100.0 => 0,
        p if p >= 10.0 => 1,
        _ => 2,
    };
    let s = format!("{p:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}%")
}

/// A multi-dimensional index as `[0, 3]`.
pub fn index(ix: &Option<Vec<usize>>) -> String {
    match ix {
        None => "-".to_string(),
        Some(ix) => format!("{ix:?}"),
    }
}

/// Left-aligned columns separated by two spaces (plain-text tables of `bench` and
/// `invariance`); no rows, no text.
pub fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_values_never_read_the_same() {
        let pair = |e: f64, a: f64| num_pair(Some(e), Some(a));
        // The f32 pair: 4 digits showed 0.5987 twice.
        // Two neighbouring f32 values, as a backend's output reaches the report.
        let e32 = 0.598_689_85_f32;
        let (e, a) = (e32 as f64, f32::from_bits(e32.to_bits() + 1) as f64);
        assert_eq!(num(Some(e)), num(Some(a)));
        let (se, sa) = pair(e, a);
        assert_ne!(se, sa);
        assert_eq!((se.as_str(), sa.as_str()), ("0.59868985", "0.59868991"));
        // Scientific notation grows the same way; equal values stay compact.
        assert_eq!(
            pair(1.5e-7, 1.500_01e-7),
            ("1.50000e-7".into(), "1.50001e-7".into())
        );
        assert_eq!(pair(0.25, 0.25), ("0.25".into(), "0.25".into()));
        assert_eq!(pair(0.25, 0.5), ("0.25".into(), "0.5".into()));
        // The two neighbours of 1.0 in f64 differ in the 17th digit.
        let (se, sa) = pair(1.0, f64::from_bits(1.0f64.to_bits() + 1));
        assert_ne!(se, sa);
        // Absent and non-finite values are shown as they are.
        assert_eq!(num_pair(None, Some(f64::NAN)), ("-".into(), "NaN".into()));
        assert_eq!(
            pair(12345.678, 12345.679),
            ("1.2345678e4".into(), "1.2345679e4".into())
        );
    }
}
