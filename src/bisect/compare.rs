//! The topological walk: each node's outputs judged against the reference, each node's
//! inputs judged by what its producers' outputs showed, and the first divergence picked
//! by the mode: `local` (the first node out of tolerance whose inputs all agree: the
//! error starts there) or `cumulative` (the first node out of tolerance as run end to
//! end, whatever its inputs).
//!
//! Errors are measured as *tolerance usage*: `|a - e| / (atol + rtol |e|)` at the worst
//! element, so 1 is the edge of tolerance whatever the magnitudes, and a node's growth is
//! its output usage over its input usage (the latter floored at [`INPUT_FLOOR`], since
//! inputs that agree exactly would make every rounding look infinite).

use super::expose::Node;
use super::run::Measured;
use crate::compare::{OutputComparison, Verdict};
use std::collections::HashMap;

/// Input usage below this counts as this much when computing growth: 1% of tolerance,
/// well above the usage of an f32 rounding error (~1e-3 at the default tolerances).
pub const INPUT_FLOOR: f64 = 0.01;

/// How the first divergence is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The first node out of tolerance whose inputs are within it.
    Local,
    /// The first node out of tolerance in topological order.
    Cumulative,
}

/// One exposed value of a node: its comparison, or why there is none.
#[derive(Debug, Clone)]
pub struct ValueResult {
    /// The value name.
    pub name: String,
    /// The comparison against the reference.
    pub comparison: Option<OutputComparison>,
    /// Why it was not compared.
    pub skipped: Option<String>,
    /// Tolerance usage at the worst element (`None` when not compared).
    pub usage: Option<f64>,
}

/// A node judged.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// The node.
    pub node: Node,
    /// Its outputs, in node order.
    pub outputs: Vec<ValueResult>,
    /// Every compared output within tolerance; `None` when none was compared.
    pub pass: Option<bool>,
    /// Largest usage over the compared outputs.
    pub output_usage: Option<f64>,
    /// Largest usage over the inputs that are compared node outputs (0 when every
    /// input is a graph input or constant, which both sides share).
    pub input_usage: f64,
    /// Node outputs read by this node that could not be compared.
    pub unknown_inputs: Vec<String>,
    /// `output_usage / max(input_usage, INPUT_FLOOR)`.
    pub growth: Option<f64>,
    /// Out of tolerance while every compared input is within it.
    pub local: bool,
    /// Out of tolerance because an input already is: the error carried in from
    /// upstream, which does not make this node a suspect.
    pub inherited: bool,
}

/// The walk's result.
pub struct Attribution {
    /// Every node in topological order.
    pub nodes: Vec<NodeResult>,
    /// Index into `nodes` of the first divergence under the mode.
    pub first: Option<usize>,
}

/// How much of its tolerance the worst element uses (the comparison's
/// `tolerance_used`); infinite for a shape, dtype or NaN/Inf problem.
pub fn usage(c: &OutputComparison) -> f64 {
    c.tolerance_used.unwrap_or(f64::INFINITY)
}

/// Judges `nodes` (topological order) from the measured values; `missing` names the
/// values the reference does not have (another model version) or that were not exposed.
pub fn attribute(
    nodes: &[Node],
    measured: &HashMap<String, Measured>,
    missing: &HashMap<String, String>,
    mode: Mode,
) -> Attribution {
    let produced: HashMap<&str, ()> = nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(|o| (o.as_str(), ())))
        .collect();
    let mut value_usage: HashMap<&str, f64> = HashMap::new();
    let mut results = Vec::with_capacity(nodes.len());
    for node in nodes {
        let outputs: Vec<ValueResult> = node
            .outputs
            .iter()
            .map(|name| match (measured.get(name), missing.get(name)) {
                (Some(Measured::Compared(c)), _) => ValueResult {
                    name: name.clone(),
                    usage: Some(usage(c)),
                    comparison: Some(c.as_ref().clone()),
                    skipped: None,
                },
                (Some(Measured::Failed(why)), _) => skipped(name, why),
                (None, Some(why)) => skipped(name, why),
                (None, None) => skipped(name, "not exposed"),
            })
            .collect();
        for (name, v) in node.outputs.iter().zip(&outputs) {
            if let Some(u) = v.usage {
                value_usage.insert(name.as_str(), u);
            }
        }
        let compared: Vec<&OutputComparison> = outputs
            .iter()
            .filter_map(|v| v.comparison.as_ref())
            .collect();
        let pass =
            (!compared.is_empty()).then(|| compared.iter().all(|c| c.verdict == Verdict::Pass));
        let output_usage = outputs.iter().filter_map(|v| v.usage).reduce(f64::max);
        let mut input_usage = 0.0f64;
        let mut unknown_inputs = Vec::new();
        for input in node
            .inputs
            .iter()
            .filter(|i| produced.contains_key(i.as_str()))
        {
            match value_usage.get(input.as_str()) {
                Some(&u) => input_usage = input_usage.max(u),
                None => unknown_inputs.push(input.clone()),
            }
        }
        // Verdicts decide agreement (a NaN fails at any usage).
        let inputs_agree = !node.inputs.iter().any(|i| {
            matches!(measured.get(i), Some(Measured::Compared(c)) if c.verdict == Verdict::Fail)
        });
        results.push(NodeResult {
            node: node.clone(),
            pass,
            output_usage,
            input_usage,
            growth: output_usage.map(|o| o / input_usage.max(INPUT_FLOOR)),
            local: pass == Some(false) && inputs_agree,
            inherited: pass == Some(false) && !inputs_agree,
            unknown_inputs,
            outputs,
        });
    }
    let first = results.iter().position(|r| match mode {
        Mode::Local => r.local,
        Mode::Cumulative => r.pass == Some(false),
    });
    Attribution {
        nodes: results,
        first,
    }
}

fn skipped(name: &str, why: &str) -> ValueResult {
    ValueResult {
        name: name.to_string(),
        comparison: None,
        skipped: Some(why.to_string()),
        usage: None,
    }
}

/// Indices of the nodes whose error grows most (largest growth first, at most `top`,
/// only nodes whose output uses a measurable share of its tolerance).
pub fn top_growth(nodes: &[NodeResult], top: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].growth.is_some_and(|g| g > 0.0))
        .collect();
    idx.sort_by(|&a, &b| {
        let g = |i: usize| nodes[i].growth.unwrap_or(0.0);
        g(b).total_cmp(&g(a)).then(a.cmp(&b))
    });
    idx.truncate(top);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, Tolerance};
    use crate::tensor::Tensor;

    fn node(index: usize, inputs: &[&str], output: &str) -> Node {
        Node {
            index,
            label: format!("N{index}"),
            op: "Add".into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.to_string()],
        }
    }

    /// A one-element comparison of `actual` against 1.0 at atol 0, rtol 1e-4.
    fn measured(actual: f32) -> Measured {
        let t = |v: f32| Tensor::from_vec(vec![1], vec![v]).unwrap();
        let tol = Tolerance {
            atol: 0.0,
            rtol: 1e-4,
        };
        Measured::Compared(Box::new(compare(&t(1.0), &t(actual), tol)))
    }

    #[test]
    fn local_errors_start_where_inputs_agree() {
        // x -> N0 -> a -> N1 -> b;  x -> N2 -> c;  b, c -> N3 -> d;  d -> N4 -> e (not exposed)
        let nodes = [
            node(0, &["x"], "a"),
            node(1, &["a"], "b"),
            node(2, &["x", "w"], "c"),
            node(3, &["b", "c"], "d"),
            node(4, &["d"], "e"),
        ];
        let values: HashMap<String, Measured> = [
            ("a", measured(1.00005)),
            ("b", measured(1.001)),
            ("c", measured(1.0002)),
            ("d", measured(1.01)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let missing = HashMap::new();
        let local = attribute(&nodes, &values, &missing, Mode::Local);
        let flags: Vec<bool> = local.nodes.iter().map(|n| n.local).collect();
        assert_eq!(flags, [false, true, true, false, false]);
        assert_eq!(local.first, Some(1));
        // N3 fails only because its inputs b and c already do: inherited, not a suspect.
        let inherited: Vec<bool> = local.nodes.iter().map(|n| n.inherited).collect();
        assert_eq!(inherited, [false, false, false, true, false]);
        // f32 inputs: 1.00005f32 is 1.0000500679, so allow 1% on the ratios.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-2 * b.abs();
        let n1 = &local.nodes[1];
        assert!(close(n1.input_usage, 0.5) && close(n1.output_usage.unwrap(), 10.0));
        assert!(close(n1.growth.unwrap(), 20.0));
        let n3 = &local.nodes[3];
        assert!(close(n3.input_usage, 10.0) && close(n3.growth.unwrap(), 10.0));
        // Inputs that agree exactly count as the floor.
        assert!(close(local.nodes[2].growth.unwrap(), 2.0 / INPUT_FLOOR));
        assert_eq!(local.nodes[4].pass, None);
        assert_eq!(
            local.nodes[4].outputs[0].skipped.as_deref(),
            Some("not exposed")
        );
        // N2: 2 / 0.01, N0: 0.5 / 0.01, N1: 10 / 0.5.
        assert_eq!(top_growth(&local.nodes, 3), [2, 0, 1]);
        let cumulative = attribute(&nodes, &values, &missing, Mode::Cumulative);
        assert_eq!(cumulative.first, Some(1));
    }

    #[test]
    fn a_nan_is_beyond_any_tolerance() {
        let Measured::Compared(c) = measured(f32::NAN) else {
            unreachable!()
        };
        assert_eq!(usage(&c), f64::INFINITY);
        let Measured::Compared(same) = measured(1.0) else {
            unreachable!()
        };
        assert_eq!(usage(&same), 0.0);
    }
}
