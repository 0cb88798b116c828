//! Tabular data for tabular models: CSV (a header row, RFC 4180 quoting) and JSON Lines
//! (one object per line), read into cells, and the column → input mapping that turns a
//! table into model inputs (`--map COLUMN=INPUT`; columns mapped to one input form its
//! last axis in the order given, rows its first).

use crate::error::{Error, Result};
use crate::formats;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number (NaN and ±Inf included: `nan`, `inf`, `-inf` in CSV).
    Number(f64),
    /// An empty CSV field, `NA`, or a JSON `null` / absent key.
    Missing,
    /// Anything else, kept to be named in a message.
    Text(String),
}

/// A table read from a `.csv` or `.jsonl` file.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it came from.
    pub path: PathBuf,
    /// Column names, in file order (JSON Lines: in order of first appearance).
    pub columns: Vec<String>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<Cell>>,
}

/// Whether a path names a table by its extension.
pub fn is_table(path: &Path) -> bool {
    matches!(
        formats::extension(path).as_deref(),
        Some("csv" | "jsonl" | "ndjson")
    )
}

/// Reads a `.csv` or `.jsonl`/`.ndjson` file; errors name the file and line.
pub fn read(path: &Path) -> Result<Table> {
    parse(formats::read_file(path)?, path)
}

/// Parses the bytes of a table, CSV or JSON Lines by `path`'s extension (as [`read`]);
/// `path` names the source in errors.
pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Table> {
    let text = String::from_utf8(bytes).map_err(|_| Error::file(path, "not UTF-8 text"))?;
    match formats::extension(path).as_deref() {
        Some("csv") => read_csv(path, &text),
        _ => read_jsonl(path, &text),
    }
}

fn cell(field: &str) -> Cell {
    let t = field.trim();
    if t.is_empty() || t == "NA" {
        return Cell::Missing;
    }
    match t.parse::<f64>() {
        Ok(v) => Cell::Number(v),
        Err(_) => Cell::Text(t.to_string()),
    }
}

fn read_csv(path: &Path, text: &str) -> Result<Table> {
    // Spreadsheet exports often start with a UTF-8 byte-order mark; it is not part of
    // the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let at_line = |line: u64, msg: String| Error::file(path, format!("line {line}: {msg}"));
    // Records of any length: a ragged row is reported below with its line.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = records
        .next()
        .ok_or_else(|| Error::file(path, "empty CSV file (expected a header row)"))?
        .map_err(|e| csv_error(path, &e))?;
    let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let header_line = line_of(&header);
    // A set, not a scan of the columns before: a header of n columns is checked in n
    // steps, not n²/2 (100,000 columns took a minute).
    let mut seen: HashSet<&String> = HashSet::with_capacity(columns.len());
    for (k, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(at_line(
                header_line,
                format!("column {} has no name in the header", k + 1),
            ));
        }
        if !seen.insert(name) {
            return Err(at_line(
                header_line,
                format!("column `{name}` appears twice in the header"),
            ));
        }
    }
    let mut rows = Vec::new();
    let mut last_start = header.position().map_or(0, |p| p.byte());
    for record in records {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = line_of(&record);
        last_start = record.position().map_or(0, |p| p.byte());
        if record.len() != columns.len() {
            return Err(at_line(
                line,
                format!("{} fields, the header has {}", record.len(), columns.len()),
            ));
        }
        rows.push(record.iter().map(cell).collect());
    }
    // The csv crate ends a quoted field that never closes at the end of the file; that
    // is a damaged file, not a last field holding the rest of it.
    let last = usize::try_from(last_start).unwrap_or(usize::MAX);
    if ends_inside_quotes(text.get(last..).unwrap_or("")) {
        let line = text[..last.min(text.len())].matches('\n').count() + 1;
        return Err(at_line(line as u64, "unterminated quoted field".into()));
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        rows,
    })
}

/// The 1-based line a CSV record starts on.
fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(1, |p| p.line())
}

/// A CSV reading error as a one-line error naming the file (and the line when known).
fn csv_error(path: &Path, e: &csv::Error) -> Error {
    match e.position() {
        Some(p) => Error::file(path, format!("line {}: {e}", p.line())),
        None => Error::file(path, e.to_string()),
    }
}

/// Whether the raw text of a CSV record ends inside a quoted field, by the csv crate's
/// own rules: a quote opens quoting only at the start of a field, `""` inside quotes is
/// a quote, and anything after a closing quote is plain text.
fn ends_inside_quotes(raw: &str) -> bool {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Plain,
        Quoted,
        AfterQuote,
    }
    let mut state = State::FieldStart;
    for c in raw.chars() {
        state = match (state, c) {
            (State::Quoted, '"') => State::AfterQuote,
            (State::Quoted, _) => State::Quoted,
            (State::AfterQuote, '"') | (State::FieldStart, '"') => State::Quoted,
            (_, ',' | '\n' | '\r') => State::FieldStart,
            (_, _) => State::Plain,
        };
    }
    state == State::Quoted
}

/// A JSON Lines table may have as many cells (rows × columns, absent keys included) as
/// its file has bytes, plus this many: room for any sparse table a person writes, and a
/// bound on the memory of one whose lines share no keys.
const MAX_EXTRA_CELLS: usize = 1 << 20;

fn read_jsonl(path: &Path, text: &str) -> Result<Table> {
    let mut columns: Vec<String> = Vec::new();
    // Keys seen so far, so that a key is looked up rather than compared with every column.
    let mut known: HashSet<String> = HashSet::new();
    let mut objects = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::file(path, format!("line {}: not JSON: {e}", i + 1)))?;
        let serde_json::Value::Object(map) = value else {
            return Err(Error::file(
                path,
                format!("line {}: not a JSON object", i + 1),
            ));
        };
        for key in map.keys() {
            if known.insert(key.clone()) {
                columns.push(key.clone());
            }
        }
        objects.push(map);
    }
    // An absent key is a cell too: lines that each bring new keys would make rows ×
    // columns grow with the square of the file (350 KB of one-key lines asked for 23 GB).
    let cells = objects.len().saturating_mul(columns.len());
    if cells > text.len().saturating_add(MAX_EXTRA_CELLS) {
        return Err(Error::file(
            path,
            format!(
                "{} rows × {} columns make {cells} cells, far more than the file fills \
                 (its lines mostly lack each other's keys); give every line the same keys",
                objects.len(),
                columns.len()
            ),
        ));
    }
    let rows = objects
        .iter()
        .map(|map| {
            columns
                .iter()
                .map(|c| match map.get(c) {
                    None | Some(serde_json::Value::Null) => Cell::Missing,
                    Some(serde_json::Value::Number(n)) => {
                        n.as_f64().map_or(Cell::Text(n.to_string()), Cell::Number)
                    }
                    Some(serde_json::Value::Bool(b)) => Cell::Number(f64::from(u8::from(*b))),
                    // JSON has no NaN/Inf literals; "NaN", "inf" strings stand for them.
                    Some(serde_json::Value::String(s)) => match cell(s) {
                        Cell::Missing => Cell::Missing,
                        parsed => parsed,
                    },
                    Some(other) => Cell::Text(other.to_string()),
                })
                .collect()
        })
        .collect();
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        rows,
    })
}

/// One `--map COLUMN=INPUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    /// The table's column.
    pub column: String,
    /// The model input it feeds.
    pub input: String,
}

impl ColumnMap {
    /// Parses `COLUMN=INPUT` (the flag's value parser).
    pub fn parse(s: &str) -> std::result::Result<ColumnMap, String> {
        match s.split_once('=') {
            Some((c, i)) if !c.is_empty() && !i.is_empty() => Ok(ColumnMap {
                column: c.to_string(),
                input: i.to_string(),
            }),
            _ => Err(format!("`{s}` is not COLUMN=INPUT")),
        }
    }
}

/// Columns feeding each input, in the order given; without any `--map`, every column
/// named after an input feeds that input. Errors name the table and the column.
pub fn columns_by_input(
    table: &Table,
    maps: &[ColumnMap],
    inputs: &[String],
) -> Result<Vec<(String, Vec<usize>)>> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let pairs: Vec<(String, String)> = if maps.is_empty() {
        table
            .columns
            .iter()
            .filter(|c| inputs.contains(c))
            .map(|c| (c.clone(), c.clone()))
            .collect()
    } else {
        maps.iter()
            .map(|m| (m.column.clone(), m.input.clone()))
            .collect()
    };
    for (column, input) in pairs {
        let index = table
            .columns
            .iter()
            .position(|c| *c == column)
            .ok_or_else(|| Error::file(&table.path, format!("has no column `{column}`")))?;
        if !inputs.contains(&input) {
            return Err(Error::Usage(format!(
                "--map {column}={input}: the model has no input `{input}`"
            )));
        }
        match out.iter_mut().find(|(i, _)| *i == input) {
            Some((_, cols)) => cols.push(index),
            None => out.push((input, vec![index])),
        }
    }
    Ok(out)
}

/// The tensor a table gives an input: `[rows, columns]` (or `[rows]` for one column and
/// a rank-1 input), cast to `dtype`. Data set through `data validate` first: a cell that
/// is missing or not a number is an error here.
pub fn to_tensor(
    table: &Table,
    columns: &[usize],
    dtype: crate::tensor::DType,
    rank: Option<usize>,
) -> Result<crate::tensor::Tensor> {
    use crate::tensor::{DType, Tensor};
    let mut values = Vec::with_capacity(table.rows.len() * columns.len());
    for (r, row) in table.rows.iter().enumerate() {
        for &c in columns {
            match &row[c] {
                Cell::Number(v) => values.push(*v),
                _ => {
                    return Err(Error::file(
                        &table.path,
                        format!(
                            "row {}, column `{}`: not a number (run `parity data validate`)",
                            r + 1,
                            table.columns[c]
                        ),
                    ))
                }
            }
        }
    }
    let shape = match (columns.len(), rank) {
        (1, Some(1)) => vec![table.rows.len()],
        (k, _) => vec![table.rows.len(), k],
    };
    let tensor = match dtype {
        DType::F32 => Tensor::from_vec(shape, values.iter().map(|&v| v as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, values),
        DType::I64 => Tensor::from_vec(shape, values.iter().map(|&v| v as i64).collect()),
        DType::I32 => Tensor::from_vec(shape, values.iter().map(|&v| v as i32).collect()),
        DType::Bool => {
            Tensor::from_bools(shape, &values.iter().map(|&v| v != 0.0).collect::<Vec<_>>())
        }
        other => {
            return Err(Error::file(
                &table.path,
                format!("tables can feed f32, f64, i64, i32 and bool inputs, not {other}"),
            ))
        }
    };
    tensor.map_err(|e| Error::file(&table.path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_missing_and_non_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "a,b,\"c,d\"\n1,,\"x\"\"y\"\nnan,NA,-inf\n\n2.5,3,\"multi\nline\"\n",
        )
        .unwrap();
        let t = read(&p).unwrap();
        assert_eq!(t.columns, ["a", "b", "c,d"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0][0], Cell::Number(1.0));
        assert_eq!(t.rows[0][1], Cell::Missing);
        assert_eq!(t.rows[0][2], Cell::Text("x\"y".into()));
        assert!(matches!(t.rows[1][0], Cell::Number(v) if v.is_nan()));
        assert_eq!(t.rows[1][2], Cell::Number(f64::NEG_INFINITY));
        assert_eq!(t.rows[2][2], Cell::Text("multi\nline".into()));
    }

    #[test]
    fn ragged_csv_and_bad_jsonl_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "a,b\n1,2\n3\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.csv: line 3: 1 fields, the header has 2"),
            "{e}"
        );
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, "{\"a\": 1}\n{oops\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("t.jsonl: line 2: not JSON"), "{e}");
    }

    #[test]
    fn csv_line_endings_and_unterminated_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "a,\"b\"\"\"\r\n1,\"2\"\r\n\r\n3,4").unwrap();
        let t = read(&p).unwrap();
        assert_eq!(t.columns, ["a", "b\""]);
        assert_eq!(
            t.rows,
            [
                [Cell::Number(1.0), Cell::Number(2.0)],
                [Cell::Number(3.0), Cell::Number(4.0)]
            ]
        );
        std::fs::write(&p, "a,b\n1,2\n3,\"4\n5,6\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("t.csv: line 3: unterminated quoted field"),
            "{e}"
        );
        // A quote inside a plain field is text, and a closed one ends quoting.
        std::fs::write(&p, "a,b\nx\"y,\"z\"\"\"\n").unwrap();
        let t = read(&p).unwrap();
        assert_eq!(
            t.rows[0],
            [Cell::Text("x\"y".into()), Cell::Text("z\"".into())]
        );
        assert!(!ends_inside_quotes("\"a\"\"b\",c") && ends_inside_quotes("1,\"a\"\"b"));
    }

    #[test]
    fn csv_headers_lose_a_bom_and_need_unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.csv");
        std::fs::write(&p, "\u{feff}a,b\n1,2\n").unwrap();
        assert_eq!(read(&p).unwrap().columns, ["a", "b"]);
        std::fs::write(&p, "x,x\n1,2\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("bom.csv: line 1: column `x` appears twice"),
            "{e}"
        );
        std::fs::write(&p, "a,,c\n1,2,3\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("line 1: column 2 has no name"), "{e}");
    }

    #[test]
    fn jsonl_union_of_keys_and_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"a\": 1, \"b\": true}\n{\"c\": \"NaN\", \"a\": null}\n",
        )
        .unwrap();
        let t = read(&p).unwrap();
        assert_eq!(t.columns, ["a", "b", "c"]);
        assert_eq!(
            t.rows[0],
            [Cell::Number(1.0), Cell::Number(1.0), Cell::Missing]
        );
        assert_eq!(t.rows[1][0], Cell::Missing);
        let inputs = vec!["x".to_string()];
        let maps = [
            ColumnMap::parse("a=x").unwrap(),
            ColumnMap::parse("c=x").unwrap(),
        ];
        assert_eq!(
            columns_by_input(&t, &maps, &inputs).unwrap(),
            vec![("x".to_string(), vec![0, 2])]
        );
        let bad = [ColumnMap::parse("zz=x").unwrap()];
        assert!(columns_by_input(&t, &bad, &inputs).is_err());
        assert!(ColumnMap::parse("nocolumn").is_err());
    }

    /// The fuzzer's kept inputs (fuzz/corpus/tabular: first byte even for CSV, odd for
    /// JSON Lines) read as tables or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (_, bytes) in crate::formats::test_util::fuzz_corpus("tabular") {
            if let Some((&pick, rest)) = bytes.split_first() {
                let path = Path::new(if pick % 2 == 0 {
                    "data.csv"
                } else {
                    "data.jsonl"
                });
                let _ = parse(rest.to_vec(), path);
            }
        }
    }

    /// Found by a large-input probe of the fuzz target (docs/reliability.md): checking a CSV header for repeated names
    /// and collecting JSON Lines keys compared every column with every other, so 100,000
    /// columns (0.9 MB) took a minute. 200,000 now take well under a second.
    #[test]
    fn wide_tables_are_read_in_linear_time() {
        let n = 200_000;
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let csv = format!("{}\n{}\n", names.join(","), vec!["1"; n].join(","));
        let t = crate::formats::test_util::within(60, move || {
            parse(csv.into_bytes(), Path::new("w.csv")).unwrap()
        });
        assert_eq!((t.columns.len(), t.columns[n - 1].as_str()), (n, "c199999"));
        let keys: Vec<String> = names.iter().map(|c| format!("\"{c}\": 1")).collect();
        let jsonl = format!("{{{}}}\n", keys.join(", "));
        let t = crate::formats::test_util::within(60, move || {
            parse(jsonl.into_bytes(), Path::new("w.jsonl")).unwrap()
        });
        assert_eq!((t.columns.len(), t.rows[0].len()), (n, n));
    }

    /// Found by a large-input probe of the fuzz target (docs/reliability.md): JSON Lines whose lines share no keys made
    /// a table of rows × columns cells, quadratic in the file (35 KB took 230 MB, 350 KB
    /// would take 23 GB). Such a table is refused; a merely sparse one still reads.
    #[test]
    fn jsonl_lines_without_common_keys_are_refused() {
        let lines: String = (0..3000).map(|i| format!("{{\"k{i}\": 1}}\n")).collect();
        let e = parse(lines.into_bytes(), Path::new("s.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.jsonl: 3000 rows × 3000 columns make 9000000 cells"),
            "{e}"
        );
        let sparse: String = (0..1000)
            .map(|i| match i % 3 {
                0 => format!("{{\"a\": {i}, \"b\": 1}}\n"),
                1 => format!("{{\"b\": {i}, \"c\": 2}}\n"),
                _ => format!("{{\"c\": {i}}}\n"),
            })
            .collect();
        let t = parse(sparse.into_bytes(), Path::new("s.jsonl")).unwrap();
        assert_eq!((t.rows.len(), t.columns.len()), (1000, 3));
        assert_eq!(t.rows[2], [Cell::Missing, Cell::Missing, Cell::Number(2.0)]);
    }
}
