//! `parity data validate`: input data checked against a model's declared inputs before
//! any engine sees it: names, dtypes, ranks, fixed dims, symbolic dims that must agree
//! across the inputs of one data set, NaN/Inf, missing values, and the value ranges of
//! `[inputs.NAME]` in `parity.toml`. Every problem is one line naming the file, the
//! input and the position (a multi-dimensional index, or a table's row and column).

use super::source::DataSet;
use super::tabular::{Cell, ColumnMap, Table};
use crate::backend::{Dim, IoSpec};
use crate::error::Result;
use crate::suite::manifest::InputRange;
use crate::tensor::{DType, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Element-level problems of one kind printed per file and input before the rest are
/// counted in one closing line, so a tensor full of NaN gives a readable report.
pub const MAX_PER_KIND: usize = 10;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The model takes an input the data set does not give.
    MissingInput,
    /// The data set gives a tensor the model does not take.
    UnknownInput,
    /// Element type differs from the declared one.
    Dtype,
    /// Number of dimensions differs.
    Rank,
    /// A fixed dim differs.
    Shape,
    /// A symbolic dim has different sizes in different inputs.
    SymbolicDim,
    /// A NaN where the input does not allow it.
    Nan,
    /// A ±Inf where the input does not allow it.
    Inf,
    /// An empty table cell.
    MissingValue,
    /// A table cell that is not a number.
    NotANumber,
    /// A value outside `[min, max]`.
    OutOfRange,
    /// A non-integer (or out-of-type) value for an integer or bool input.
    NotRepresentable,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Nan => "NaN values",
            Kind::Inf => "infinite values",
            Kind::MissingValue => "missing values",
            Kind::NotANumber => "non-numeric values",
            Kind::OutOfRange => "out-of-range values",
            Kind::NotRepresentable => "values the dtype cannot hold",
            _ => "problems",
        }
    }
}

/// One problem, printed as one line.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file (or data-set directory) that holds the data.
    pub file: String,
    /// The model input concerned, when one is.
    pub input: Option<String>,
    /// `[0, 3]` for a tensor element, `row 4, column "age"` for a table cell.
    pub position: Option<String>,
    /// What kind of problem.
    pub kind: Kind,
    /// What is wrong, in words.
    pub message: String,
    /// How many bad values (or problems) the line stands for: 1, a run of consecutive
    /// elements, or the rest of a capped kind.
    pub count: usize,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(input) = &self.input {
            write!(f, " input `{input}`")?;
        }
        if let Some(pos) = &self.position {
            write!(f, " at {pos}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects problems, listing at most [`MAX_PER_KIND`] lines per (file, input, kind)
/// and counting the values of the rest.
#[derive(Default)]
pub struct Problems {
    list: Vec<Problem>,
    /// Per (file, input, kind): lines listed, values not listed.
    counts: HashMap<(String, String, Kind), (usize, usize)>,
}

impl Problems {
    fn push(
        &mut self,
        file: &str,
        input: Option<&str>,
        position: Option<String>,
        kind: Kind,
        message: String,
    ) {
        self.push_values(file, input, position, kind, message, 1);
    }

    /// One line standing for `count` bad values.
    fn push_values(
        &mut self,
        file: &str,
        input: Option<&str>,
        position: Option<String>,
        kind: Kind,
        message: String,
        count: usize,
    ) {
        let key = (
            file.to_string(),
            input.unwrap_or_default().to_string(),
            kind,
        );
        let (listed, hidden) = self.counts.entry(key).or_default();
        if *listed < MAX_PER_KIND {
            *listed += 1;
            self.list.push(Problem {
                file: file.to_string(),
                input: input.map(str::to_string),
                position,
                kind,
                message,
                count,
            });
        } else {
            *hidden += count;
        }
    }

    /// Every problem, each capped (file, input, kind) closed by a line counting what was
    /// not listed, right after its last listed line.
    pub fn finish(self) -> Vec<Problem> {
        let key = |p: &Problem| (p.file.clone(), p.input.clone().unwrap_or_default(), p.kind);
        // Where each key's lines end, in one pass.
        let last: HashMap<_, usize> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, p)| (key(p), i))
            .collect();
        let mut out = Vec::with_capacity(self.list.len());
        for (i, p) in self.list.into_iter().enumerate() {
            let k = key(&p);
            let hidden = self.counts.get(&k).map_or(0, |&(_, hidden)| hidden);
            let closing = (last.get(&k) == Some(&i) && hidden > 0).then(|| Problem {
                file: p.file.clone(),
                input: p.input.clone(),
                position: None,
                kind: p.kind,
                message: format!("... and {hidden} more {} (not listed)", p.kind.noun()),
                count: hidden,
            });
            out.push(p);
            out.extend(closing);
        }
        out
    }
}

/// The bad values (or problems) the lines stand for, the figure a summary reports.
pub fn total(problems: &[Problem]) -> usize {
    problems.iter().map(|p| p.count).sum()
}

/// `[0, 3]`: the row-major multi-index of flat element `flat`.
pub fn index_of(flat: usize, shape: &[usize]) -> String {
    let mut rest = flat;
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[i] = rest % d;
            rest /= d;
        }
    }
    let parts: Vec<String> = index.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Checks one value against an input's range; `None` when it passes.
fn value_problem(v: f64, range: &InputRange) -> Option<(Kind, String)> {
    if v.is_nan() {
        return (!range.allow_nan.unwrap_or(false)).then(|| {
            (
                Kind::Nan,
                "NaN (set allow_nan = true in [inputs.NAME] of parity.toml if it is meant)"
                    .to_string(),
            )
        });
    }
    if v.is_infinite() && !range.allow_inf.unwrap_or(false) {
        return Some((
            Kind::Inf,
            format!("{v} (set allow_inf = true if it is meant)"),
        ));
    }
    match (range.min, range.max) {
        (Some(lo), _) if v < lo => Some((Kind::OutOfRange, format!("{v} is below min = {lo}"))),
        (_, Some(hi)) if v > hi => Some((Kind::OutOfRange, format!("{v} is above max = {hi}"))),
        _ => None,
    }
}

/// Checks the data sets against the model's inputs.
pub fn validate_sets(
    sets: &[DataSet],
    specs: &[IoSpec],
    ranges: &BTreeMap<String, InputRange>,
    problems: &mut Problems,
) {
    for set in sets {
        let origin = set.origin.display().to_string();
        for spec in specs {
            if !set.tensors.iter().any(|t| t.name == spec.name) {
                problems.push(
                    &origin,
                    Some(&spec.name),
                    None,
                    Kind::MissingInput,
                    "no data for this model input".to_string(),
                );
            }
        }
        let mut symbols: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for named in &set.tensors {
            let file = named.file.display().to_string();
            let Some(spec) = specs.iter().find(|s| s.name == named.name) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                problems.push(
                    &file,
                    Some(&named.name),
                    None,
                    Kind::UnknownInput,
                    format!(
                        "the model takes no such input (its inputs: {})",
                        known.join(", ")
                    ),
                );
                continue;
            };
            check_tensor(&file, spec, &named.tensor, &mut symbols, problems);
            let range = ranges.get(&spec.name).copied().unwrap_or_default();
            check_values(&file, &spec.name, &named.tensor, &range, problems);
        }
    }
}

fn check_tensor(
    file: &str,
    spec: &IoSpec,
    t: &Tensor,
    symbols: &mut BTreeMap<String, (usize, String)>,
    problems: &mut Problems,
) {
    let name = Some(spec.name.as_str());
    match spec.dtype {
        Some(d) if d != t.dtype() => problems.push(
            file,
            name,
            None,
            Kind::Dtype,
            format!("dtype {}, the model declares {d}", t.dtype()),
        ),
        None => problems.push(
            file,
            name,
            None,
            Kind::Dtype,
            "the model input is not a tensor parity can feed".to_string(),
        ),
        _ => {}
    }
    let Some(dims) = &spec.dims else { return };
    if dims.len() != t.shape().len() {
        problems.push(
            file,
            name,
            None,
            Kind::Rank,
            format!(
                "rank {} (shape {:?}), the model declares rank {} ({})",
                t.shape().len(),
                t.shape(),
                dims.len(),
                declared(dims)
            ),
        );
        return;
    }
    for (axis, (d, &n)) in dims.iter().zip(t.shape()).enumerate() {
        match d {
            Dim::Fixed(f) if *f != n => problems.push(
                file,
                name,
                Some(format!("axis {axis}")),
                Kind::Shape,
                format!("size {n}, the model declares {f} ({})", declared(dims)),
            ),
            Dim::Symbolic(s) => match symbols.get(s) {
                Some((m, other)) if *m != n => problems.push(
                    file,
                    name,
                    Some(format!("axis {axis}")),
                    Kind::SymbolicDim,
                    format!("symbolic dim `{s}` is {n} here but {m} in input `{other}`"),
                ),
                Some(_) => {}
                None => {
                    symbols.insert(s.clone(), (n, spec.name.clone()));
                }
            },
            _ => {}
        }
    }
}

fn declared(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn check_values(file: &str, input: &str, t: &Tensor, range: &InputRange, problems: &mut Problems) {
    if t.dtype() == DType::Bool {
        return;
    }
    // Consecutive elements with a problem of one kind become one line: a run of NaN in
    // a tensor reads as its range, not as one line per element.
    let mut run: Option<(Kind, usize, usize, String)> = None;
    let flush = |run: Option<(Kind, usize, usize, String)>, problems: &mut Problems| {
        let Some((kind, first, last, msg)) = run else {
            return;
        };
        if first == last {
            problems.push(
                file,
                Some(input),
                Some(index_of(first, t.shape())),
                kind,
                msg,
            );
        } else {
            let n = last - first + 1;
            problems.push_values(
                file,
                Some(input),
                Some(format!(
                    "{}..{}",
                    index_of(first, t.shape()),
                    index_of(last, t.shape())
                )),
                kind,
                format!("{n} consecutive {}, the first: {msg}", kind.noun()),
                n,
            );
        }
    };
    for i in 0..t.numel() {
        let found = value_problem(t.get_f64(i), range);
        match (&mut run, found) {
            (Some((kind, _, last, _)), Some((k, _))) if *kind == k && *last + 1 == i => {
                *last = i;
            }
            (_, found) => {
                flush(run.take(), problems);
                run = found.map(|(kind, msg)| (kind, i, i, msg));
            }
        }
    }
    flush(run, problems);
}

/// Checks a table mapped onto the model's inputs: every cell a number the input's dtype
/// can hold and its range allows, every input fed, and the `[rows, columns]` shape each
/// input gets against its declared dims.
pub fn validate_table(
    table: &Table,
    mapped: &[(String, Vec<usize>)],
    specs: &[IoSpec],
    ranges: &BTreeMap<String, InputRange>,
    problems: &mut Problems,
) {
    let file = table.path.display().to_string();
    for spec in specs {
        let Some((_, columns)) = mapped.iter().find(|(i, _)| *i == spec.name) else {
            problems.push(
                &file,
                Some(&spec.name),
                None,
                Kind::MissingInput,
                "no column feeds this model input (use --map COLUMN=INPUT)".to_string(),
            );
            continue;
        };
        let name = Some(spec.name.as_str());
        let shape = match columns.len() {
            1 if spec.dims.as_ref().is_some_and(|d| d.len() == 1) => vec![table.rows.len()],
            k => vec![table.rows.len(), k],
        };
        let range = ranges.get(&spec.name).copied().unwrap_or_default();
        for (r, row) in table.rows.iter().enumerate() {
            for &c in columns {
                let pos = Some(format!("row {}, column `{}`", r + 1, table.columns[c]));
                match &row[c] {
                    Cell::Missing => problems.push(
                        &file,
                        name,
                        pos,
                        Kind::MissingValue,
                        "missing value".to_string(),
                    ),
                    Cell::Text(s) => problems.push(
                        &file,
                        name,
                        pos,
                        Kind::NotANumber,
                        format!("`{s}` is not a number"),
                    ),
                    Cell::Number(v) => {
                        if let Some((kind, msg)) = value_problem(*v, &range) {
                            problems.push(&file, name, pos, kind, msg);
                        } else if let Some(d) = spec.dtype.filter(|d| !d.is_float()) {
                            if !fits_integer(*v, d) {
                                problems.push(
                                    &file,
                                    name,
                                    pos,
                                    Kind::NotRepresentable,
                                    format!("{v} is not a value of {d}"),
                                );
                            }
                        }
                    }
                }
            }
        }
        if let Some(dims) = &spec.dims {
            let fits = dims.len() == shape.len()
                && dims
                    .iter()
                    .zip(&shape)
                    .all(|(d, &n)| !matches!(d, Dim::Fixed(f) if *f != n));
            if !fits {
                problems.push(&file, name, None, if dims.len() == shape.len() { Kind::Shape } else { Kind::Rank }, format!("the table gives shape {shape:?} (rows × mapped columns), the model declares {}", declared(dims)));
            }
        }
    }
}

/// Whether `v` is an integer value of dtype `d` (bool: 0 or 1).
fn fits_integer(v: f64, d: DType) -> bool {
    if v.fract() != 0.0 || !v.is_finite() {
        return false;
    }
    let (lo, hi) = match d {
        DType::Bool | DType::U8 => (0.0, if d == DType::Bool { 1.0 } else { 255.0 }),
        DType::I8 => (-128.0, 127.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::U16 => (0.0, 65535.0),
        DType::I32 => (-2147483648.0, 2147483647.0),
        DType::U32 => (0.0, 4294967295.0),
        DType::U64 => (0.0, 18446744073709551615.0),
        _ => (-9223372036854775808.0, 9223372036854775807.0),
    };
    (lo..=hi).contains(&v)
}

/// Columns mapped to inputs, as `tabular::columns_by_input` resolves them.
pub fn map_table(
    table: &Table,
    maps: &[ColumnMap],
    specs: &[IoSpec],
) -> Result<Vec<(String, Vec<usize>)>> {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    super::tabular::columns_by_input(table, maps, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_index_is_row_major() {
        assert_eq!(index_of(0, &[2, 3]), "[0, 0]");
        assert_eq!(index_of(5, &[2, 3]), "[1, 2]");
        assert_eq!(index_of(7, &[2, 2, 2]), "[1, 1, 1]");
        assert_eq!(index_of(0, &[]), "[]");
    }

    #[test]
    fn ranges_nan_and_inf() {
        let r = InputRange {
            min: Some(0.0),
            max: Some(1.0),
            ..Default::default()
        };
        assert_eq!(value_problem(0.5, &r), None);
        assert_eq!(value_problem(1.5, &r).unwrap().0, Kind::OutOfRange);
        assert_eq!(value_problem(-0.1, &r).unwrap().0, Kind::OutOfRange);
        assert_eq!(value_problem(f64::NAN, &r).unwrap().0, Kind::Nan);
        let allow = InputRange {
            allow_nan: Some(true),
            allow_inf: Some(true),
            ..Default::default()
        };
        assert_eq!(value_problem(f64::NAN, &allow), None);
        assert_eq!(value_problem(f64::INFINITY, &allow), None);
        assert_eq!(
            value_problem(f64::INFINITY, &InputRange::default())
                .unwrap()
                .0,
            Kind::Inf
        );
        assert!(fits_integer(3.0, DType::I64));
        assert!(!fits_integer(3.5, DType::I64));
        assert!(!fits_integer(2.0, DType::Bool));
        assert!(!fits_integer(-1.0, DType::U8));
    }

    #[test]
    fn element_problems_are_capped_with_a_count() {
        let mut p = Problems::default();
        for i in 0..25 {
            p.push(
                "f.npy",
                Some("x"),
                Some(format!("[{i}]")),
                Kind::Nan,
                "NaN".into(),
            );
        }
        p.push("g.npy", Some("x"), None, Kind::Nan, "NaN".into());
        let list = p.finish();
        assert_eq!(list.len(), MAX_PER_KIND + 2);
        assert_eq!(list[0].to_string(), "f.npy: input `x` at [0]: NaN");
        // The closing line follows its file's lines, before the next file's.
        assert_eq!(
            list[MAX_PER_KIND].to_string(),
            "f.npy: input `x`: ... and 15 more NaN values (not listed)"
        );
        assert_eq!(list[MAX_PER_KIND + 1].file, "g.npy");
        // The total counts values, not lines.
        assert_eq!(total(&list), 26);
    }

    #[test]
    fn consecutive_bad_values_are_one_range_line() {
        let v = [0.0, f32::NAN, f32::NAN, f32::NAN, 1.0, f32::NAN, 9.0, 8.0];
        let t = Tensor::from_vec(vec![2, 4], v.to_vec()).unwrap();
        let range = InputRange {
            max: Some(5.0),
            ..InputRange::default()
        };
        let mut p = Problems::default();
        check_values("f.npy", "x", &t, &range, &mut p);
        let lines: Vec<String> = p.finish().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "f.npy: input `x` at [0, 1]..[0, 3]: 3 consecutive NaN values, the first: NaN (set allow_nan = true in [inputs.NAME] of parity.toml if it is meant)",
                "f.npy: input `x` at [1, 1]: NaN (set allow_nan = true in [inputs.NAME] of parity.toml if it is meant)",
                "f.npy: input `x` at [1, 2]..[1, 3]: 2 consecutive out-of-range values, the first: 9 is above max = 5",
            ]
        );
    }

    #[test]
    fn symbolic_dims_must_agree_across_inputs_of_a_data_set() {
        use crate::data::source::Named;
        let spec = |name: &str| IoSpec {
            name: name.into(),
            dtype: Some(DType::F32),
            dims: Some(vec![Dim::Symbolic("batch".into()), Dim::Fixed(3)]),
        };
        let t = |rows: usize| Tensor::from_vec(vec![rows, 3], vec![0f32; rows * 3]).unwrap();
        let named = |name: &str, rows| Named {
            name: name.into(),
            tensor: t(rows),
            file: format!("{name}.npy").into(),
        };
        let specs = [spec("a"), spec("b")];
        let set = DataSet {
            origin: "set".into(),
            tensors: vec![named("a", 2), named("b", 3)],
        };
        let mut p = Problems::default();
        validate_sets(&[set], &specs, &BTreeMap::new(), &mut p);
        let list = p.finish();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(
            list[0].to_string(),
            "b.npy: input `b` at axis 0: symbolic dim `batch` is 3 here but 2 in input `a`"
        );
        // Agreeing sizes: no problem; a separate data set may use another size.
        let ok = DataSet {
            origin: "set".into(),
            tensors: vec![named("a", 4), named("b", 4)],
        };
        let mut p = Problems::default();
        validate_sets(&[ok], &specs, &BTreeMap::new(), &mut p);
        assert!(p.finish().is_empty());
    }
}
