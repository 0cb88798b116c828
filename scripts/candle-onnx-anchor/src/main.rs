//! `candle-onnx-anchor SUITE_DIR QUERIES`: loads SUITE_DIR/model.onnx with candle-onnx,
//! feeds it SUITE_DIR/test_data_set_0/input_*.pb (matched to the graph inputs by name, or
//! in order when a file has no name), runs `simple_eval` 3 times untimed and then QUERIES
//! times, and prints `p50_ms=X p90_ms=Y queries=N` on one line. On any error it prints
//! `error=...` and exits 1. Threads: set RAYON_NUM_THREADS (the script sets 1).

use candle_onnx::onnx::TensorProto;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

fn run(dir: &Path, queries: usize) -> Result<(f64, f64), String> {
    let model = candle_onnx::read_file(dir.join("model.onnx")).map_err(|e| e.to_string())?;
    let graph = model.graph.as_ref().ok_or("model has no graph")?;
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let names: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !inits.contains(n))
        .collect();
    let mut inputs = HashMap::new();
    for (i, default) in names.iter().enumerate() {
        let path = dir.join(format!("test_data_set_0/input_{i}.pb"));
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t = TensorProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
        let name = if t.name.is_empty() { default.to_string() } else { t.name.clone() };
        let tensor = candle_onnx::eval::get_tensor(&t, &name).map_err(|e| e.to_string())?;
        inputs.insert(name, tensor);
    }
    for _ in 0..3 {
        candle_onnx::simple_eval(&model, inputs.clone()).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries {
        let start = Instant::now();
        let out = candle_onnx::simple_eval(&model, inputs.clone()).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(out);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.9)))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: candle-onnx-anchor SUITE_DIR QUERIES");
        std::process::exit(2);
    };
    match run(Path::new(dir), n) {
        Ok((p50, p90)) => println!("p50_ms={p50:.5} p90_ms={p90:.5} queries={n}"),
        Err(e) => {
            println!("error={}", e.lines().next().unwrap_or("").trim());
            std::process::exit(1);
        }
    }
}
