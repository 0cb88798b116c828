//! A per-step error curve as inline SVG, for the HTML report: the share of tolerance
//! each step used, on a log scale with the tolerance (1) drawn as a dashed line, so
//! error that grows along a stream or a generation is seen at a glance.

use std::fmt::Write;

/// Plot size in pixels.
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 90.0;
const LEFT: f64 = 34.0;
const BOTTOM: f64 = 14.0;

/// The curve of `(step, tolerance_used)` points; steps without a figure (not compared,
/// unbounded) are left out and marked at the top edge in red when unbounded.
pub fn svg(points: &[(usize, Option<f64>)]) -> String {
    let finite: Vec<f64> = points
        .iter()
        .filter_map(|&(_, u)| u)
        .filter(|u| u.is_finite() && *u > 0.0)
        .collect();
    let top = finite.iter().copied().fold(2.0f64, f64::max).log10().ceil();
    let bottom = finite
        .iter()
        .copied()
        .fold(1e-3f64, f64::min)
        .log10()
        .floor();
    let last = points.iter().map(|p| p.0).max().unwrap_or(0).max(1) as f64;
    let x = |step: usize| LEFT + (WIDTH - LEFT - 4.0) * step as f64 / last;
    let y = |u: f64| {
        let v = u.max(10f64.powf(bottom)).log10();
        4.0 + (HEIGHT - BOTTOM - 4.0) * (top - v) / (top - bottom)
    };
    let mut s = format!(
        "<svg class=\"curve\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"share of tolerance used per step\">"
    );
    for (label, v) in [
        (format!("1e{top}"), 10f64.powf(top)),
        (format!("1e{bottom}"), 10f64.powf(bottom)),
    ] {
        let _ = write!(s, "<text x=\"0\" y=\"{:.1}\">{label}</text>", y(v) + 3.0);
    }
    let _ = write!(
        s,
        "<line class=\"bound\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        WIDTH - 4.0,
        y(1.0),
        y(1.0)
    );
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\">step 0</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">step {last}</text>",
        HEIGHT - 2.0,
        WIDTH - 4.0,
        HEIGHT - 2.0
    );
    let path: Vec<String> = points
        .iter()
        .filter_map(|&(step, u)| {
            u.filter(|u| u.is_finite())
                .map(|u| format!("{:.1},{:.1}", x(step), y(u)))
        })
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"{}\"/>",
        path.join(" ")
    );
    for &(step, u) in points {
        match u {
            Some(u) if u.is_finite() => {
                let class = if u > 1.0 { "bar-bad" } else { "bar-ok" };
                let _ = write!(
                    s,
                    "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"><title>step {step}: {:.3}% of tolerance</title></circle>",
                    x(step),
                    y(u),
                    u * 100.0
                );
            }
            Some(_) => {
                let _ = write!(
                    s,
                    "<circle class=\"bar-bad\" cx=\"{:.1}\" cy=\"4\" r=\"2\"><title>step {step}: unbounded (NaN/Inf mismatch)</title></circle>",
                    x(step)
                );
            }
            None => {}
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finite_point_is_drawn_and_out_of_tolerance_ones_are_red() {
        let s = svg(&[
            (0, Some(0.01)),
            (1, Some(0.5)),
            (2, Some(3.0)),
            (3, None),
            (4, Some(f64::INFINITY)),
        ]);
        assert_eq!(s.matches("<circle").count(), 4);
        assert_eq!(s.matches("bar-bad").count(), 2);
        assert!(s.contains("step 2: 300.000% of tolerance"));
        assert!(s.contains("step 4: unbounded"));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }
}
