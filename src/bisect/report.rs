//! The bisect report, schema `parity.bisect/v1`: what was compared, the first
//! divergence, the nodes whose error grows most and every node's evidence; rendered as
//! JSON or as a short text for people.

use super::compare::{top_growth, Mode, NodeResult};
use super::Outcome;
use crate::compare::OutputComparison;
use crate::report::Environment;
use serde::Serialize;

/// The JSON schema identifier of bisect reports.
pub const SCHEMA: &str = "parity.bisect/v1";

/// What was bisected, for the report's header.
pub struct Context {
    /// The model under test.
    pub model: String,
    /// The other model version, when one backend ran two.
    pub reference_model: Option<String>,
    /// The backend under test.
    pub backend: String,
    /// The backend whose values are expected.
    pub reference: String,
    /// Where the inputs came from.
    pub inputs: String,
    /// `--atol`, when given.
    pub atol: Option<f64>,
    /// `--rtol`, when given.
    pub rtol: Option<f64>,
    /// Local or cumulative.
    pub mode: Mode,
    /// Rows of the growth table.
    pub top: usize,
    /// The machine and the two backends.
    pub environment: Environment,
}

/// `parity.bisect/v1`.
#[derive(Debug, Serialize)]
pub struct BisectReport {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// `diverge` when a first divergence was found, else `agree`.
    pub verdict: &'static str,
    /// Local or cumulative.
    pub mode: Mode,
    /// The model under test.
    pub model: String,
    /// The other model version (`--reference-model`), if any.
    pub reference_model: Option<String>,
    /// The backend under test.
    pub backend: String,
    /// The backend whose values are expected.
    pub reference: String,
    /// Where the inputs came from.
    pub inputs: String,
    /// Tolerance overrides; `null` means each value's dtype default.
    pub atol: Option<f64>,
    /// See `atol`.
    pub rtol: Option<f64>,
    /// Runs per side (chunks and retries).
    pub runs: usize,
    /// Values exposed as graph outputs.
    pub exposed: usize,
    /// Values compared on both sides.
    pub compared: usize,
    /// With `--reference-model`: initializers whose contents differ between the models.
    pub changed_initializers: Vec<String>,
    /// The node the mode names, or `null` when everything agrees.
    pub first_divergence: Option<NodeEntry>,
    /// The nodes whose error grows most, largest growth first.
    pub top_growth: Vec<NodeEntry>,
    /// Every top-level node in topological order.
    pub nodes: Vec<NodeEntry>,
    /// The machine and the two backends.
    pub environment: Environment,
}

/// One node's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct NodeEntry {
    /// Position in the graph's node list.
    pub index: usize,
    /// Node name, or `OpType#index`.
    pub name: String,
    /// Op type, with its domain when not ai.onnx.
    pub op: String,
    /// `pass`, `fail`, or `skipped` when no output was compared.
    pub verdict: &'static str,
    /// Out of tolerance while its inputs agree.
    pub local: bool,
    /// Out of tolerance only as its inputs already are: the error carried in from
    /// upstream (not a suspect).
    pub inherited: bool,
    /// Worst tolerance usage over inputs produced by nodes (1 = the edge of tolerance).
    pub input_usage: f64,
    /// Worst tolerance usage over its outputs.
    pub output_usage: Option<f64>,
    /// `output_usage / max(input_usage, 0.01)`.
    pub growth: Option<f64>,
    /// Its input value names.
    pub inputs: Vec<String>,
    /// Inputs produced by nodes whose values could not be compared.
    pub unknown_inputs: Vec<String>,
    /// Its outputs, in node order.
    pub outputs: Vec<ValueEntry>,
}

/// One output of a node: its comparison (the `parity.report/v1` output fields) or why
/// it was skipped.
#[derive(Debug, Clone, Serialize)]
pub struct ValueEntry {
    /// The value name.
    pub name: String,
    /// Tolerance usage at the worst element.
    pub usage: Option<f64>,
    /// Why it was not compared.
    pub skipped: Option<String>,
    /// The comparison, flattened into the entry.
    #[serde(flatten)]
    pub comparison: Option<OutputComparison>,
}

impl BisectReport {
    /// Builds the report of `outcome`.
    pub fn new(ctx: Context, outcome: &Outcome) -> BisectReport {
        let nodes: Vec<NodeEntry> = outcome.attribution.nodes.iter().map(entry).collect();
        let first = outcome.attribution.first.map(|i| nodes[i].clone());
        let top = top_growth(&outcome.attribution.nodes, ctx.top)
            .into_iter()
            .map(|i| nodes[i].clone())
            .collect();
        BisectReport {
            schema: SCHEMA,
            verdict: if first.is_some() { "diverge" } else { "agree" },
            mode: ctx.mode,
            model: ctx.model,
            reference_model: ctx.reference_model,
            backend: ctx.backend,
            reference: ctx.reference,
            inputs: ctx.inputs,
            atol: ctx.atol,
            rtol: ctx.rtol,
            runs: outcome.runs,
            exposed: outcome.exposed,
            compared: outcome.compared,
            changed_initializers: outcome.changed_initializers.clone(),
            first_divergence: first,
            top_growth: top,
            nodes,
            environment: ctx.environment,
        }
    }

    /// 1 when a divergence was found, 0 when every compared value agrees.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.first_divergence.is_some())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The text report: header, verdict, growth table; every node with `verbose`.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut s = String::new();
        let against = match &self.reference_model {
            Some(m) => format!("{} on {m}", self.reference),
            None => self.reference.clone(),
        };
        s += &format!(
            "bisect {} on {} against {against} ({} mode, inputs {})\n",
            self.model,
            self.backend,
            match self.mode {
                Mode::Local => "local",
                Mode::Cumulative => "cumulative",
            },
            self.inputs
        );
        let tol = match (self.atol, self.rtol) {
            (None, None) => "dtype defaults (f32: atol 1e-5, rtol 1e-4)".to_string(),
            (a, r) => format!(
                "atol {}, rtol {}",
                a.map_or("dtype default".into(), |v| format!("{v:e}")),
                r.map_or("dtype default".into(), |v| format!("{v:e}"))
            ),
        };
        s += &format!(
            "{} nodes, {} values exposed in {} run{} per backend, {} compared; tolerance {tol}\n",
            self.nodes.len(),
            self.exposed,
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            self.compared
        );
        match &self.first_divergence {
            Some(n) => {
                let what = match self.mode {
                    Mode::Local => "first divergence",
                    Mode::Cumulative => "first node out of tolerance",
                };
                s += &format!("{what}: node `{}` ({}, #{})\n", n.name, n.op, n.index);
                for v in n.outputs.iter().filter(|v| v.comparison.is_some()) {
                    s += &format!("  output {}\n", describe(v));
                }
                let changed: Vec<&str> = n
                    .inputs
                    .iter()
                    .filter(|i| self.changed_initializers.contains(i))
                    .map(String::as_str)
                    .collect();
                if !changed.is_empty() {
                    s += &format!(
                        "  it reads constants that differ in the reference model: {}\n",
                        list(&changed)
                    );
                }
                if self.mode == Mode::Local {
                    s += &format!(
                        "  its inputs agree (worst input uses {} of its tolerance)\n",
                        usage_text(n.input_usage)
                    );
                }
                // Suspects: out of tolerance with agreeing inputs. The nodes that only
                // carry an upstream error are counted, not listed (-v shows them).
                let others: Vec<&str> = self
                    .nodes
                    .iter()
                    .filter(|m| m.index != n.index && m.local)
                    .map(|m| m.name.as_str())
                    .collect();
                if !others.is_empty() {
                    s += &format!(
                        "  also out of tolerance with agreeing inputs ({}): {}\n",
                        others.len(),
                        list(&others)
                    );
                }
                let inherited = self.nodes.iter().filter(|m| m.inherited).count();
                if inherited > 0 {
                    s += &format!(
                        "  {inherited} node(s) downstream are out of tolerance only because their inputs are (inherited; -v lists them)\n"
                    );
                }
            }
            None => {
                let worst = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.output_usage.map(|u| (u, n)))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                s += "no divergence: every compared value is within tolerance";
                if let Some((u, n)) = worst {
                    s += &format!(" (closest: `{}` uses {} of it)", n.name, usage_text(u));
                }
                s += "\n";
            }
        }
        if !self.top_growth.is_empty() {
            s += "nodes whose error grows most (error = share of tolerance used at the worst element):\n";
            s += &table(&self.top_growth);
        }
        let skipped: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| &n.outputs)
            .filter_map(|v| v.skipped.as_ref().map(|why| format!("{} ({why})", v.name)))
            .collect();
        if !skipped.is_empty() {
            let shown: Vec<&str> = skipped.iter().map(String::as_str).collect();
            s += &format!("not compared ({}): {}\n", skipped.len(), list(&shown));
        }
        if verbose {
            s += "every node:\n";
            s += &table(&self.nodes);
        }
        s
    }
}

fn entry(r: &NodeResult) -> NodeEntry {
    NodeEntry {
        index: r.node.index,
        name: r.node.label.clone(),
        op: r.node.op.clone(),
        verdict: match r.pass {
            Some(true) => "pass",
            Some(false) => "fail",
            None => "skipped",
        },
        local: r.local,
        inherited: r.inherited,
        input_usage: r.input_usage,
        output_usage: r.output_usage,
        growth: r.growth,
        inputs: r.node.inputs.clone(),
        unknown_inputs: r.unknown_inputs.clone(),
        outputs: r
            .outputs
            .iter()
            .map(|v| ValueEntry {
                name: v.name.clone(),
                usage: v.usage,
                skipped: v.skipped.clone(),
                comparison: v.comparison.clone(),
            })
            .collect(),
    }
}

/// `name: 3/64 out of tolerance, max abs err …, worst at [..] expected … got …`.
fn describe(v: &ValueEntry) -> String {
    let Some(c) = &v.comparison else {
        return v.name.clone();
    };
    let mut s = format!(
        "`{}` {} {:?}: {}/{} out of tolerance (atol {:e}, rtol {:e}), max abs err {:.3e}, max rel err {:.3e}",
        v.name, c.dtype, c.shape, c.mismatched, c.total, c.atol, c.rtol, c.max_abs_err, c.max_rel_err
    );
    if let (Some(i), Some(e), Some(a)) = (&c.worst_index, c.expected, c.actual) {
        s += &format!(", worst at {i:?}: expected {e}, got {a}");
    }
    if let Some(p) = &c.problem {
        s += &format!("; {p}");
    }
    s
}

/// A share of tolerance as a percentage, as every report shows it.
fn usage_text(u: f64) -> String {
    crate::report::style::share(Some(u))
}

/// At most ten names, then a count.
fn list(names: &[&str]) -> String {
    let mut s = names
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s += &format!(", ... and {} more", names.len() - 10);
    }
    s
}

fn table(rows: &[NodeEntry]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "  {:<width$}  {:<20}  {:>7}  {:>12}  {:>12}  {:>10}\n",
        "node", "op", "verdict", "input err", "output err", "growth"
    );
    for r in rows {
        s += &format!(
            "  {:<width$}  {:<20}  {:>7}  {:>12}  {:>12}  {:>10}\n",
            r.name,
            r.op,
            if r.inherited { "inherit" } else { r.verdict },
            usage_text(r.input_usage),
            r.output_usage.map_or("-".into(), usage_text),
            r.growth.map_or("-".into(), |g| if g.is_finite() {
                format!("{g:.3}")
            } else {
                "inf".into()
            }),
        );
    }
    s
}
