//! What a suite says about its dataset as a whole (docs/gates.md): ground-truth labels
//! and slices of its data sets, which outputs are class scores (along which axis, top
//! k), and its dataset gates. Read from `parity.toml` (`[labels]`, `[slices]`,
//! `[metrics.NAME]`, `[gates]`) and from `labels.csv` next to it, validated when the
//! suite is opened so that a typo is an error (exit 2), never an unlabelled pass.
//!
//! ```toml
//! [metrics.logits]          # read `logits` as class scores
//! axis = -1                 # the class axis (default -1)
//! k = 5                     # top-k agreement (default 5)
//!
//! [labels]                  # ground truth, one class per row of `output`
//! output = "logits"         # required when the model has several outputs
//! [labels.cases]
//! test_data_set_0 = 3
//! test_data_set_1 = [3, 7]  # a batch of two rows
//!
//! [slices]                  # the group each data set belongs to
//! test_data_set_0 = "en"
//! test_data_set_1 = "de"
//!
//! [gates]                   # per output: METRIC>=VALUE, METRIC<=VALUE,
//! logits = ["top1_agreement>=0.98", "top1_agreement:disparity<=0.02"]
//! ```
//!
//! `labels.csv` (header `case,label,slice`; `label` or `slice` may be left out, a cell may
//! be empty; several rows' labels separated by spaces) says the same per data set; a
//! data set labelled or sliced in both places is an error.

use super::manifest::{LabelValue, MANIFEST_FILE};
use super::CaseSource;
use crate::compare::metrics::ClassAxis;
use crate::error::{Error, Result};
use crate::report::gates::Gate;
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the labels table inside a suite directory.
pub const LABELS_FILE: &str = "labels.csv";

/// One data set's ground truth and group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseLabel {
    /// One class per row of the labelled output.
    pub classes: Option<Vec<u64>>,
    /// The slice the data set belongs to.
    pub slice: Option<String>,
}

/// A suite's dataset settings, resolved against its model and data sets.
#[derive(Debug, Clone, Default)]
pub struct Gating {
    /// The output the labels score, when there are labels.
    pub labelled_output: Option<String>,
    /// Data set name → label and slice.
    pub cases: BTreeMap<String, CaseLabel>,
    /// Output → how its class scores are read (outputs read as class scores only).
    pub classes: BTreeMap<String, ClassAxis>,
    /// The suite's own gates (`[gates]`).
    pub gates: Vec<Gate>,
}

impl Gating {
    /// Reads `labels.csv` (when present) and the tables of `manifest`, checks every name
    /// against the model's `outputs` and the suite's `cases`, and adds the `extra` gates
    /// of the command line that name an output of this model.
    pub fn load(
        dir: &Path,
        manifest: &super::manifest::Manifest,
        outputs: &[String],
        cases: &[CaseSource],
    ) -> Result<Gating> {
        let toml = dir.join(MANIFEST_FILE);
        let bad = |msg: String| Error::file(&toml, msg);
        let mut gating = Gating::default();
        for (output, list) in &manifest.gates {
            for text in list {
                let mut gate = Gate::parse_metric(text)
                    .map_err(|e| bad(format!("[gates] {output}: `{text}`: {e}")))?;
                gate.output = output.clone();
                gating.add_gate(gate);
            }
        }
        let default = ClassAxis::default();
        for (output, m) in &manifest.metrics {
            let k = match m.k {
                None => default.k,
                Some(k) => usize::try_from(k).ok().filter(|&k| k >= 1).ok_or_else(|| {
                    bad(format!(
                        "[metrics.{output}] k = {k}: must be an integer ≥ 1"
                    ))
                })?,
            };
            let axis = m.axis.unwrap_or(default.axis);
            gating.classes.insert(output.clone(), ClassAxis { axis, k });
        }
        let known: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        let mut from_toml = BTreeMap::<String, CaseLabel>::new();
        if let Some(table) = &manifest.labels {
            for (case, value) in &table.cases {
                let classes = match value {
                    LabelValue::One(c) => vec![*c],
                    LabelValue::Rows(r) => r.clone(),
                };
                from_toml.entry(case.clone()).or_default().classes = Some(classes);
            }
        }
        for (case, slice) in &manifest.slices {
            from_toml.entry(case.clone()).or_default().slice = Some(slice.clone());
        }
        for case in from_toml.keys() {
            if !known.contains(&case.as_str()) {
                return Err(bad(format!(
                    "[labels]/[slices] name data set `{case}`, which the suite does not have"
                )));
            }
        }
        let csv_path = dir.join(LABELS_FILE);
        let from_csv = if std::fs::symlink_metadata(&csv_path).is_ok() {
            read_csv(&csv_path, &known)?
        } else {
            BTreeMap::new()
        };
        for (case, row) in from_csv {
            let entry = from_toml.entry(case.clone()).or_default();
            if (row.classes.is_some() && entry.classes.is_some())
                || (row.slice.is_some() && entry.slice.is_some())
            {
                return Err(Error::file(
                    &csv_path,
                    format!("data set `{case}` is labelled or sliced both here and in parity.toml; keep one"),
                ));
            }
            entry.classes = entry.classes.take().or(row.classes);
            entry.slice = entry.slice.take().or(row.slice);
        }
        let sliced = from_toml.values().filter(|l| l.slice.is_some()).count();
        if sliced > 0 && sliced < known.len() {
            let missing = known
                .iter()
                .find(|c| from_toml.get(**c).and_then(|l| l.slice.as_ref()).is_none())
                .copied()
                .unwrap_or_default();
            return Err(bad(format!(
                "{sliced} of {} data sets have a slice but `{missing}` has none: give every data set a slice ([slices] or labels.csv)",
                known.len()
            )));
        }
        if from_toml.values().any(|l| l.classes.is_some()) {
            let output = match (
                manifest.labels.as_ref().and_then(|l| l.output.clone()),
                outputs,
            ) {
                (Some(o), _) => o,
                (None, [only]) => only.clone(),
                (None, _) => {
                    return Err(bad(format!(
                    "labels need [labels] output = \"NAME\": the model has several outputs ({})",
                    outputs.join(", ")
                )))
                }
            };
            gating.classes.entry(output.clone()).or_default();
            gating.labelled_output = Some(output);
        }
        for gate in &gating.gates {
            if gate.metric.needs_labels() && gating.labelled_output.as_deref() != Some(&gate.output)
            {
                return Err(bad(format!(
                    "[gates] {}: {} needs labels for output `{}` (labels.csv or [labels], docs/gates.md)",
                    gate.output,
                    gate.metric.name(),
                    gate.output
                )));
            }
        }
        for name in gating
            .gates
            .iter()
            .map(|g| &g.output)
            .chain(gating.classes.keys())
        {
            if !outputs.contains(name) {
                return Err(bad(format!(
                    "[gates]/[metrics]/[labels] name output `{name}`, which the model does not have (its outputs: {})",
                    outputs.join(", ")
                )));
            }
        }
        gating.cases = from_toml;
        Ok(gating)
    }

    /// Adds a gate (from `[gates]`, or the command line once the caller has checked its
    /// output is one of the model's). A class metric makes the output read as class
    /// scores (along the last axis unless `[metrics.NAME]` says otherwise).
    pub fn add_gate(&mut self, gate: Gate) {
        if gate.metric.needs_classes() {
            self.classes.entry(gate.output.clone()).or_default();
        }
        self.gates.push(gate);
    }

    /// Whether `output` has a gate, and so is judged by its gates.
    pub fn gates_output(&self, output: &str) -> bool {
        self.gates.iter().any(|g| g.output == output)
    }

    /// The labels of data set `case` for `output`, when it is the labelled output.
    pub fn labels_for(&self, case: &str, output: &str) -> Option<&[u64]> {
        if self.labelled_output.as_deref() != Some(output) {
            return None;
        }
        self.cases.get(case)?.classes.as_deref()
    }

    /// The slice of data set `case`.
    pub fn slice_of(&self, case: &str) -> Option<&str> {
        self.cases.get(case)?.slice.as_deref()
    }
}

/// Reads `labels.csv`: a header naming `case` and at least one of `label`, `slice`.
fn read_csv(path: &Path, known: &[&str]) -> Result<BTreeMap<String, CaseLabel>> {
    let text = crate::formats::read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bad = |line: Option<u64>, msg: String| {
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        Error::file(path, format!("{at}{msg}"))
    };
    let header = reader
        .headers()
        .map_err(|e| bad(None, format!("unreadable header: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let Some(case_col) = column("case") else {
        return Err(bad(
            Some(1),
            "the header must name a `case` column (case,label,slice)".into(),
        ));
    };
    let (label_col, slice_col) = (column("label"), column("slice"));
    if label_col.is_none() && slice_col.is_none() {
        return Err(bad(
            Some(1),
            "the header names neither `label` nor `slice`".into(),
        ));
    }
    if let Some(other) = header
        .iter()
        .find(|h| !matches!(*h, "case" | "label" | "slice"))
    {
        return Err(bad(
            Some(1),
            format!("unknown column `{other}` (known: case, label, slice)"),
        ));
    }
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.position().map(|p| p.line()), e.to_string()))?;
        let line = record.position().map(|p| p.line());
        let case = record.get(case_col).unwrap_or_default().to_string();
        if !known.contains(&case.as_str()) {
            return Err(bad(line, format!("data set `{case}` is not in the suite")));
        }
        let cell = |col: Option<usize>| col.and_then(|c| record.get(c)).filter(|v| !v.is_empty());
        let classes = match cell(label_col) {
            Some(v) => Some(
                v.split_whitespace()
                    .map(|c| c.parse::<u64>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        bad(line, format!("label `{v}`: expected class indices (integers ≥ 0) separated by spaces"))
                    })?,
            ),
            None => None,
        };
        let label = CaseLabel {
            classes,
            slice: cell(slice_col).map(str::to_string),
        };
        if rows.insert(case.clone(), label).is_some() {
            return Err(bad(line, format!("data set `{case}` is listed twice")));
        }
    }
    Ok(rows)
}
