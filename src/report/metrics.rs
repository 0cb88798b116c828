//! Dataset-level metrics of a report: per suite × backend × output, the cases'
//! [`OutputStats`] added up into agreement rates, SQNR, PSNR, cosine and error figures,
//! over the whole suite and over each of its slices (docs/gates.md). Derived from the
//! case rows alone, in a canonical order (by case name), so every format and
//! `parity merge` of a sharded run carry exactly the figures of the unsharded run.

use super::CaseReport;
use crate::compare::metrics::{confusion_list, wilson, ClassStats, Confusion, OutputStats};
use serde::Serialize;
use std::collections::BTreeMap;

/// A metric that a dataset can be measured and gated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricName {
    /// Share of rows whose top-1 class agrees with the reference's.
    Top1Agreement,
    /// Share of rows where the reference's top-1 is among the candidate's top k.
    TopkAgreement,
    /// Share of labelled rows the candidate classifies right.
    LabelAccuracy,
    /// The same for the reference (the goldens): what the candidate is measured against.
    ReferenceLabelAccuracy,
    /// Reference label accuracy minus the candidate's: what the candidate lost.
    LabelAccuracyDrop,
    /// 10·log10(Σe² / Σ(a−e)²).
    SqnrDb,
    /// 10·log10(R² / MSE), R the reference's range (max − min) over the dataset.
    PsnrDb,
    /// Mean over cases of each case's cosine similarity.
    CosineMean,
    /// The lowest case cosine similarity.
    CosineMin,
    /// Σ|a−e| / elements.
    MeanAbsErr,
    /// Largest |a−e|.
    MaxAbsErr,
    /// Share of units out of the element-wise tolerance.
    OutOfTolerance,
}

impl MetricName {
    /// Every metric, in report order.
    pub const ALL: [MetricName; 12] = [
        MetricName::Top1Agreement,
        MetricName::TopkAgreement,
        MetricName::LabelAccuracy,
        MetricName::ReferenceLabelAccuracy,
        MetricName::LabelAccuracyDrop,
        MetricName::SqnrDb,
        MetricName::PsnrDb,
        MetricName::CosineMean,
        MetricName::CosineMin,
        MetricName::MeanAbsErr,
        MetricName::MaxAbsErr,
        MetricName::OutOfTolerance,
    ];

    /// The name in gates, JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            MetricName::Top1Agreement => "top1_agreement",
            MetricName::TopkAgreement => "topk_agreement",
            MetricName::LabelAccuracy => "label_accuracy",
            MetricName::ReferenceLabelAccuracy => "reference_label_accuracy",
            MetricName::LabelAccuracyDrop => "label_accuracy_drop",
            MetricName::SqnrDb => "sqnr_db",
            MetricName::PsnrDb => "psnr_db",
            MetricName::CosineMean => "cosine_mean",
            MetricName::CosineMin => "cosine_min",
            MetricName::MeanAbsErr => "mean_abs_err",
            MetricName::MaxAbsErr => "max_abs_err",
            MetricName::OutOfTolerance => "out_of_tolerance",
        }
    }

    /// The metric of that name.
    pub fn parse(name: &str) -> Option<MetricName> {
        MetricName::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Metrics that read the output as class scores.
    pub fn needs_classes(self) -> bool {
        matches!(
            self,
            MetricName::Top1Agreement
                | MetricName::TopkAgreement
                | MetricName::LabelAccuracy
                | MetricName::ReferenceLabelAccuracy
                | MetricName::LabelAccuracyDrop
        )
    }

    /// Metrics that need ground-truth labels.
    pub fn needs_labels(self) -> bool {
        matches!(
            self,
            MetricName::LabelAccuracy
                | MetricName::ReferenceLabelAccuracy
                | MetricName::LabelAccuracyDrop
        )
    }
}

/// One measured value with its sample size and, for a rate, its 95% Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The value; `null` in JSON when infinite (see `infinite`).
    pub value: f64,
    /// `+inf` or `-inf` when the value is infinite (an SQNR or PSNR with no error at
    /// all); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infinite: Option<&'static str>,
    /// Sample size: rows for class metrics, cases for cosine, elements otherwise.
    pub n: u64,
    /// Rates: how many of `n` counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successes: Option<u64>,
    /// Rates: the 95% Wilson score interval `[low, high]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
}

impl Measured {
    fn plain(value: f64, n: u64) -> Measured {
        Measured {
            value,
            infinite: match value {
                v if v == f64::INFINITY => Some("+inf"),
                v if v == f64::NEG_INFINITY => Some("-inf"),
                _ => None,
            },
            n,
            successes: None,
            interval: None,
        }
    }

    fn rate(successes: u64, n: u64) -> Option<Measured> {
        let (lo, hi) = wilson(successes, n)?;
        Some(Measured {
            value: successes as f64 / n as f64,
            infinite: None,
            n,
            successes: Some(successes),
            interval: Some([lo, hi]),
        })
    }
}

/// The metrics of one set of cases (a whole suite, or one slice of it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSet {
    /// Cases summed.
    pub cases: u64,
    /// Element pairs summed (both values finite).
    pub elements: u64,
    /// Pairs left out for NaN/±Inf.
    pub non_finite: u64,
    /// k of `topk_agreement`, for class outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Each metric that could be measured, by name (a class metric only for outputs read
    /// as class scores, a label metric only with labels).
    pub values: BTreeMap<&'static str, Measured>,
}

impl MetricSet {
    /// The measured value of `metric`, when measured.
    pub fn get(&self, metric: MetricName) -> Option<&Measured> {
        self.values.get(metric.name())
    }
}

/// One slice's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceMetrics {
    pub slice: String,
    #[serde(flatten)]
    pub metrics: MetricSet,
}

/// The dataset metrics of one output of one suite, compared on one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputMetrics {
    pub suite: String,
    pub backend: String,
    /// `golden` or the reference backend.
    pub reference: String,
    pub output: String,
    /// Case rows of this suite and backend that give this output no statistics (an
    /// error, a shape or dtype mismatch): the metrics leave them out.
    pub cases_not_measured: u64,
    /// Over every measured case.
    #[serde(flatten)]
    pub overall: MetricSet,
    /// Per slice, by slice name; empty when the suite has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceMetrics>,
    /// Class outputs: the most frequent (reference top-1, candidate top-1) pairs that
    /// differ, most rows first (at most [`MAX_CONFUSIONS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub confusions: Vec<Confusion>,
}

/// Confusion pairs listed per output.
pub const MAX_CONFUSIONS: usize = 10;

/// The dataset metrics of every suite × backend × output among `cases` that has
/// statistics, in first-seen order of suite and backend, outputs in first-seen order.
pub fn metrics(cases: &[CaseReport]) -> Vec<OutputMetrics> {
    type Key = (String, String, String, String);
    type Row<'a> = (&'a CaseReport, &'a OutputStats, u64, u64);
    let mut order: Vec<Key> = Vec::new();
    let mut rows: BTreeMap<Key, Vec<Row>> = BTreeMap::new();
    // Case rows per suite × backend × reference: what each output's count is out of.
    let mut runs: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for case in cases {
        *runs
            .entry((&case.suite, &case.backend, &case.reference))
            .or_default() += 1;
        for o in &case.outputs {
            let Some(stats) = &o.stats else { continue };
            let key = (
                case.suite.clone(),
                case.backend.clone(),
                case.reference.clone(),
                o.name.clone(),
            );
            let entry = rows.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            let c = &o.comparison;
            entry.push((case, stats, c.mismatched, c.total));
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let mut group = rows.remove(&key)?;
            group.sort_by(|a, b| a.0.case.cmp(&b.0.case));
            let rows_of_run = runs
                .get(&(key.0.as_str(), key.1.as_str(), key.2.as_str()))
                .copied()
                .unwrap_or(0);
            let overall = measure(group.iter().map(|g| (g.1, g.2, g.3)));
            let mut slice_names: Vec<&str> =
                group.iter().filter_map(|g| g.0.slice.as_deref()).collect();
            slice_names.sort_unstable();
            slice_names.dedup();
            let slices = slice_names
                .iter()
                .map(|&name| SliceMetrics {
                    slice: name.to_string(),
                    metrics: measure(
                        group
                            .iter()
                            .filter(|g| g.0.slice.as_deref() == Some(name))
                            .map(|g| (g.1, g.2, g.3)),
                    ),
                })
                .collect();
            Some(OutputMetrics {
                cases_not_measured: rows_of_run - overall.cases,
                confusions: confusions(group.iter().map(|g| g.1)),
                suite: key.0,
                backend: key.1,
                reference: key.2,
                output: key.3,
                overall,
                slices,
            })
        })
        .collect()
}

/// Adds up the statistics of some cases (in the order given), each with its
/// element-wise mismatched and total units, into metrics.
pub fn measure<'a>(group: impl Iterator<Item = (&'a OutputStats, u64, u64)>) -> MetricSet {
    let mut t = OutputStats::default();
    let (mut cases, mut mismatched, mut units) = (0u64, 0u64, 0u64);
    let (mut cos_sum, mut cos_min, mut cos_n) = (0.0f64, f64::INFINITY, 0u64);
    let mut classes: Option<ClassStats> = None;
    for (s, m, u) in group {
        cases += 1;
        mismatched += m;
        units += u;
        t = t.followed_by(s);
        if let Some(c) = s.cosine() {
            cos_sum += c;
            cos_min = cos_min.min(c);
            cos_n += 1;
        }
        if let Some(c) = &s.classes {
            match &mut classes {
                Some(all) => all.add_counts(c),
                None => {
                    classes = Some(ClassStats {
                        confusions: Vec::new(),
                        ..c.clone()
                    })
                }
            }
        }
    }
    let mut values = BTreeMap::new();
    let mut put = |m: MetricName, v: Option<Measured>| {
        if let Some(v) = v {
            values.insert(m.name(), v);
        }
    };
    if let Some(c) = &classes {
        put(
            MetricName::Top1Agreement,
            Measured::rate(c.top1_agree, c.rows),
        );
        put(
            MetricName::TopkAgreement,
            Measured::rate(c.topk_agree, c.rows),
        );
        let (correct, labeled) = (c.label_correct, c.labeled);
        put(MetricName::LabelAccuracy, Measured::rate(correct, labeled));
        let reference = Measured::rate(c.reference_label_correct, labeled);
        put(
            MetricName::LabelAccuracyDrop,
            reference
                .as_ref()
                .map(|r| Measured::plain(r.value - correct as f64 / labeled as f64, labeled)),
        );
        put(MetricName::ReferenceLabelAccuracy, reference);
    }
    let n = t.elements;
    if n > 0 {
        put(
            MetricName::SqnrDb,
            Some(Measured::plain(db(t.sum_sq_expected, t.sum_sq_error), n)),
        );
        let range = t.max_expected.zip(t.min_expected).map(|(h, l)| h - l);
        put(
            MetricName::PsnrDb,
            range.map(|r| Measured::plain(db(r * r, t.sum_sq_error / n as f64), n)),
        );
        put(
            MetricName::MeanAbsErr,
            Some(Measured::plain(t.sum_abs_error / n as f64, n)),
        );
        put(
            MetricName::MaxAbsErr,
            Some(Measured::plain(t.max_abs_error, n)),
        );
    }
    if cos_n > 0 {
        put(
            MetricName::CosineMean,
            Some(Measured::plain(cos_sum / cos_n as f64, cos_n)),
        );
        put(MetricName::CosineMin, Some(Measured::plain(cos_min, cos_n)));
    }
    put(
        MetricName::OutOfTolerance,
        Measured::rate(mismatched, units),
    );
    MetricSet {
        cases,
        elements: t.elements,
        non_finite: t.non_finite,
        k: classes.map(|c| c.k),
        values,
    }
}

/// 10·log10(signal / noise): +inf with no noise, -inf with no signal, 0/0 is +inf (two
/// all-zero tensors agree perfectly).
fn db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (signal / noise).log10()
}

/// The most frequent disagreeing class pairs over the cases.
fn confusions<'a>(stats: impl Iterator<Item = &'a OutputStats>) -> Vec<Confusion> {
    let mut pairs: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for c in stats.filter_map(|s| s.classes.as_ref()) {
        for p in &c.confusions {
            *pairs.entry((p.reference, p.candidate)).or_default() += p.rows;
        }
    }
    let mut list = confusion_list(pairs);
    list.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.cmp(b)));
    list.truncate(MAX_CONFUSIONS);
    list
}

impl OutputMetrics {
    /// The metrics as a table for the renderers: a header row (`metric`, `all`, then
    /// each slice) and one row per measured metric, a rate shown with its interval; the
    /// last row gives each column's cases.
    pub fn table(&self) -> Vec<Vec<String>> {
        let sets: Vec<&MetricSet> = std::iter::once(&self.overall)
            .chain(self.slices.iter().map(|s| &s.metrics))
            .collect();
        let mut header = vec!["metric".to_string(), "all".to_string()];
        header.extend(self.slices.iter().map(|s| format!("slice {}", s.slice)));
        let mut rows = vec![header];
        for m in MetricName::ALL {
            if self.overall.get(m).is_none() {
                continue;
            }
            let mut row = vec![match (m, self.overall.k) {
                (MetricName::TopkAgreement, Some(k)) => format!("topk_agreement (k={k})"),
                _ => m.name().to_string(),
            }];
            row.extend(sets.iter().map(|s| s.get(m).map_or("-".to_string(), cell)));
            rows.push(row);
        }
        let mut cases = vec!["cases".to_string()];
        cases.extend(sets.iter().map(|s| s.cases.to_string()));
        rows.push(cases);
        rows
    }

    /// One line on the most frequent top-1 disagreements, for class outputs that have
    /// any: `reference class -> candidate class: rows`.
    pub fn confusion_line(&self) -> Option<String> {
        if self.confusions.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .confusions
            .iter()
            .map(|c| format!("{} -> {}: {}", c.reference, c.candidate, c.rows))
            .collect();
        Some(format!(
            "top-1 confusions (reference class -> candidate class: rows): {}",
            pairs.join(", ")
        ))
    }

    /// One line naming the output, its suite, backend and reference.
    pub fn title(&self) -> String {
        format!(
            "dataset metrics of `{}` in {} on {} (reference {}, {} cases{})",
            self.output,
            self.suite,
            self.backend,
            self.reference,
            self.overall.cases,
            match self.cases_not_measured {
                0 => String::new(),
                n => format!(", {n} not measured"),
            }
        )
    }
}

/// One value as a table cell: a rate with its interval and sample size.
fn cell(v: &Measured) -> String {
    let value = match v.infinite {
        Some(sign) => sign.to_string(),
        None => super::style::num(Some(v.value)),
    };
    match (v.successes, v.interval) {
        (Some(x), Some([lo, hi])) => format!(
            "{value} [{}, {}] ({x}/{})",
            super::style::num(Some(lo)),
            super::style::num(Some(hi)),
            v.n
        ),
        _ => value,
    }
}
