//! The Open Inference Protocol (KServe v2) REST messages: datatype names, an inference
//! request with JSON or binary tensors, and a strict reading of the response. Pure
//! functions over bytes, so every rule is tested without a server.

use crate::tensor::{DType, Tensor};
use half::{bf16, f16};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The protocol's name of a dtype (`FP32`, `INT64`, `BOOL`...).
pub fn datatype(d: DType) -> &'static str {
    match d {
        DType::F32 => "FP32",
        DType::F64 => "FP64",
        DType::F16 => "FP16",
        DType::BF16 => "BF16",
        DType::I8 => "INT8",
        DType::I16 => "INT16",
        DType::I32 => "INT32",
        DType::I64 => "INT64",
        DType::U8 => "UINT8",
        DType::U16 => "UINT16",
        DType::U32 => "UINT32",
        DType::U64 => "UINT64",
        DType::Bool => "BOOL",
    }
}

/// The dtype of a protocol datatype name; `None` for `BYTES` and unknown names.
pub fn dtype_of(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| datatype(*d) == name)
}

/// A request body and the extra header a binary one needs.
pub struct Request {
    pub body: Vec<u8>,
    /// `Inference-Header-Content-Length` when some tensor travels as binary data.
    pub json_len: Option<usize>,
}

/// Builds `POST .../infer`: each input as JSON `data`, or (binary extension) as raw
/// little-endian bytes after the JSON header when it has at least `binary_from` bytes;
/// `outputs` are requested by name, as binary data when `binary_from` is set.
pub fn request(
    inputs: &[(&str, &Tensor)],
    outputs: &[&str],
    binary_from: Option<usize>,
) -> Request {
    let mut tail = Vec::new();
    let entries: Vec<Value> = inputs
        .iter()
        .map(|(name, t)| {
            let mut e = Map::new();
            e.insert("name".into(), json!(name));
            e.insert("shape".into(), json!(t.shape()));
            e.insert("datatype".into(), json!(datatype(t.dtype())));
            if binary_from.is_some_and(|min| t.bytes().len() >= min) {
                e.insert(
                    "parameters".into(),
                    json!({ "binary_data_size": t.bytes().len() }),
                );
                tail.extend_from_slice(t.bytes());
            } else {
                e.insert("data".into(), Value::Array(json_values(t)));
            }
            Value::Object(e)
        })
        .collect();
    let outs: Vec<Value> = outputs
        .iter()
        .map(|n| match binary_from {
            Some(_) => json!({ "name": n, "parameters": { "binary_data": true } }),
            None => json!({ "name": n }),
        })
        .collect();
    let mut body =
        serde_json::to_vec(&json!({ "inputs": entries, "outputs": outs })).unwrap_or_default();
    let json_len = (!tail.is_empty()).then_some(body.len());
    body.extend_from_slice(&tail);
    Request { body, json_len }
}

/// A tensor's elements as JSON values, flat in row-major order (the protocol's `data`).
fn json_values(t: &Tensor) -> Vec<Value> {
    if let Some(b) = t.bools() {
        return b.iter().map(|&v| Value::Bool(v)).collect();
    }
    let d = t.dtype();
    t.bytes()
        .chunks_exact(d.size())
        .map(|c| match d {
            DType::I64 => json!(i64::from_le_bytes(c.try_into().unwrap_or_default())),
            DType::U64 => json!(u64::from_le_bytes(c.try_into().unwrap_or_default())),
            DType::I8 | DType::I16 | DType::I32 => json!(d.decode_f64(c) as i64),
            DType::U8 | DType::U16 | DType::U32 => json!(d.decode_f64(c) as u64),
            _ => json!(d.decode_f64(c)),
        })
        .collect()
}

/// Reads an inference response strictly: JSON (or the binary extension's JSON header
/// plus data), an `outputs` list whose every entry has a name, a known datatype, a
/// shape and exactly shape-product elements of that datatype. Returns the outputs as
/// the server sent them, in its order; the caller compares them with the model's.
pub fn response(body: &[u8], json_len: Option<usize>) -> Result<Vec<(String, Tensor)>, String> {
    let (head, mut binary) = match json_len {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(format!(
                "Inference-Header-Content-Length {n} is longer than the {}-byte body",
                body.len()
            ))
        }
        None => (body, &[][..]),
    };
    let doc: Value = serde_json::from_slice(head).map_err(|e| {
        format!(
            "the response is not JSON ({e}): {}",
            super::http::excerpt(head)
        )
    })?;
    let outputs = doc
        .get("outputs")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!(
                "the response has no `outputs` list: {}",
                super::http::excerpt(head)
            )
        })?;
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    // Names seen so far, looked up rather than compared with every output before: a
    // response of n outputs is checked in n steps, not n²/2 (50,000 took minutes).
    let mut names: HashSet<&str> = HashSet::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        let name = out
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("outputs[{i}] has no name"))?;
        let (dtype, shape) = header(out).map_err(|e| format!("output `{name}`: {e}"))?;
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let numel = numel.ok_or_else(|| format!("output `{name}`: shape {shape:?} overflows"))?;
        let size = out
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"))
            .map(|v| v.as_u64().map(|n| n as usize));
        let bytes = match size {
            Some(None) => return Err(format!("output `{name}`: binary_data_size is not a count")),
            Some(Some(n)) => {
                if n > binary.len() {
                    return Err(format!(
                        "output `{name}`: binary_data_size {n} but only {} binary bytes remain",
                        binary.len()
                    ));
                }
                let (mine, rest) = binary.split_at(n);
                binary = rest;
                let want = numel.checked_mul(dtype.size());
                if want != Some(n) {
                    return Err(format!(
                        "output `{name}`: {n} binary bytes for shape {shape:?} of {} ({} expected)",
                        datatype(dtype),
                        want.map_or("more than memory holds".to_string(), |w| w.to_string())
                    ));
                }
                mine.to_vec()
            }
            None => {
                let data = out.get("data").ok_or_else(|| {
                    format!("output `{name}` has neither data nor binary_data_size")
                })?;
                let mut flat = Vec::new();
                flatten(data, &mut flat);
                if flat.len() != numel {
                    return Err(format!(
                        "output `{name}`: {} data values for shape {shape:?} ({numel} expected)",
                        flat.len()
                    ));
                }
                encode(dtype, &flat).map_err(|e| format!("output `{name}`: {e}"))?
            }
        };
        if !names.insert(name) {
            return Err(format!("output `{name}` appears twice in the response"));
        }
        let t =
            Tensor::from_bytes(dtype, shape, bytes).map_err(|e| format!("output `{name}`: {e}"))?;
        tensors.push((name.to_string(), t));
    }
    if !binary.is_empty() {
        return Err(format!(
            "{} binary bytes follow the outputs unclaimed",
            binary.len()
        ));
    }
    Ok(tensors)
}

/// An output's datatype and shape, both required.
fn header(out: &Value) -> Result<(DType, Vec<usize>), String> {
    let name = out
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or("no datatype")?;
    let dtype =
        dtype_of(name).ok_or_else(|| format!("datatype `{name}` is not a numeric or BOOL type"))?;
    let shape = out
        .get("shape")
        .and_then(Value::as_array)
        .ok_or("no shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("shape {} is not a list of sizes", out["shape"]))?;
    Ok((dtype, shape))
}

/// The protocol allows `data` flat or nested row-major; parity reads both.
fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// JSON values as little-endian bytes of `dtype`, refusing any value the type cannot
/// hold (a string, a fraction for an integer, a number for BOOL).
fn encode(dtype: DType, values: &[&Value]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(values.len() * dtype.size());
    for (i, v) in values.iter().enumerate() {
        let bad = || format!("data[{i}] = {v} is not a {} value", datatype(dtype));
        match dtype {
            DType::Bool => out.push(u8::from(v.as_bool().ok_or_else(bad)?)),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
                let x = v.as_f64().ok_or_else(bad)?;
                match dtype {
                    DType::F32 => out.extend((x as f32).to_le_bytes()),
                    DType::F64 => out.extend(x.to_le_bytes()),
                    DType::F16 => out.extend(f16::from_f64(x).to_le_bytes()),
                    _ => out.extend(bf16::from_f64(x).to_le_bytes()),
                }
            }
            DType::U64 => out.extend(v.as_u64().ok_or_else(bad)?.to_le_bytes()),
            _ => {
                let x = v.as_i64().ok_or_else(bad)?;
                let fits = |lo: i64, hi: i64| (lo..=hi).contains(&x);
                match dtype {
                    DType::I8 if fits(i8::MIN.into(), i8::MAX.into()) => out.push(x as i8 as u8),
                    DType::I16 if fits(i16::MIN.into(), i16::MAX.into()) => {
                        out.extend((x as i16).to_le_bytes())
                    }
                    DType::I32 if fits(i32::MIN.into(), i32::MAX.into()) => {
                        out.extend((x as i32).to_le_bytes())
                    }
                    DType::I64 => out.extend(x.to_le_bytes()),
                    DType::U8 if fits(0, u8::MAX.into()) => out.push(x as u8),
                    DType::U16 if fits(0, u16::MAX.into()) => out.extend((x as u16).to_le_bytes()),
                    DType::U32 if fits(0, u32::MAX.into()) => out.extend((x as u32).to_le_bytes()),
                    _ => return Err(bad()),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t32(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    #[test]
    fn json_request_and_response_round_trip() {
        let x = t32(vec![1, 3], vec![1.5, -2.0, 0.25]);
        let r = request(&[("x", &x)], &["y"], None);
        assert_eq!(r.json_len, None);
        let doc: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            doc,
            json!({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1.5,-2.0,0.25]}],
                   "outputs":[{"name":"y"}]})
        );
        let body = br#"{"outputs":[{"name":"y","datatype":"INT64","shape":[2,1],"data":[[3],[-4]]},
                        {"name":"b","datatype":"BOOL","shape":[1],"data":[true]}]}"#;
        let got = response(body, None).unwrap();
        assert_eq!(got[0].0, "y");
        assert_eq!(got[0].1.values::<i64>().unwrap().as_ref(), &[3, -4]);
        assert_eq!(got[0].1.shape(), &[2, 1]);
        assert_eq!(got[1].1.bools().unwrap(), &[true]);
    }

    #[test]
    fn binary_tensors_follow_the_json_header() {
        let x = t32(vec![2], vec![1.0, 2.0]);
        let small = t32(vec![1], vec![9.0]);
        let r = request(&[("x", &x), ("s", &small)], &["y"], Some(8));
        let n = r.json_len.unwrap();
        let doc: Value = serde_json::from_slice(&r.body[..n]).unwrap();
        assert_eq!(doc["inputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(doc["inputs"][1]["data"], json!([9.0]));
        assert_eq!(doc["outputs"][0]["parameters"]["binary_data"], true);
        assert_eq!(&r.body[n..], x.bytes());
        let head = br#"{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(x.bytes());
        let got = response(&body, Some(head.len())).unwrap();
        assert_eq!(got[0].1.values::<f32>().unwrap().as_ref(), &[1.0, 2.0]);
        let huge = br#"{"outputs":[{"name":"y","datatype":"FP64","shape":[4611686018427387904],"parameters":{"binary_data_size":8}}]}"#;
        let mut body2 = huge.to_vec();
        body2.extend_from_slice(x.bytes());
        let e = response(&body2, Some(huge.len())).unwrap_err();
        assert_eq!(e, "output `y`: 8 binary bytes for shape [4611686018427387904] of FP64 (more than memory holds expected)");
        let e = response(&body[..body.len() - 1], Some(head.len())).unwrap_err();
        assert_eq!(
            e,
            "output `y`: binary_data_size 8 but only 7 binary bytes remain"
        );
    }

    #[test]
    fn inconsistent_responses_say_what_the_server_sent() {
        let cases: [(&[u8], &str); 7] = [
            (b"<html>oops</html>", "the response is not JSON (expected value at line 1 column 1): <html>oops</html>"),
            (br#"{"error":"x"}"#, "the response has no `outputs` list: {\"error\":\"x\"}"),
            (br#"{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1]}]}"#,
             "output `y`: 1 data values for shape [2] (2 expected)"),
            (br#"{"outputs":[{"name":"y","datatype":"BYTES","shape":[1],"data":["a"]}]}"#,
             "output `y`: datatype `BYTES` is not a numeric or BOOL type"),
            (br#"{"outputs":[{"name":"y","datatype":"INT8","shape":[1],"data":[300]}]}"#,
             "output `y`: data[0] = 300 is not a INT8 value"),
            (br#"{"outputs":[{"name":"y","datatype":"FP32","shape":[-1],"data":[1]}]}"#,
             "output `y`: shape [-1] is not a list of sizes"),
            (br#"{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[1]},{"name":"y","datatype":"FP32","shape":[1],"data":[1]}]}"#,
             "output `y` appears twice in the response"),
        ];
        for (body, want) in cases {
            assert_eq!(response(body, None).unwrap_err(), want);
        }
    }

    #[test]
    fn every_dtype_has_a_protocol_name() {
        for d in DType::ALL {
            assert_eq!(dtype_of(datatype(d)), Some(d));
        }
        assert_eq!(dtype_of("BYTES"), None);
    }

    /// The fuzzer's kept inputs (fuzz/corpus/kserve_response: two bytes of
    /// `Inference-Header-Content-Length`, 0xFFFF for none, then the body) read as
    /// outputs or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (_, bytes) in crate::formats::test_util::fuzz_corpus("kserve_response") {
            if let Some((len, body)) = bytes.split_first_chunk::<2>() {
                let json_len = match u16::from_le_bytes(*len) {
                    u16::MAX => None,
                    n => Some(usize::from(n)),
                };
                let _ = response(body, json_len);
            }
        }
    }

    /// Found by a large-input probe of the fuzz target (docs/reliability.md): the
    /// repeated-name check compared every output with every one before it, so a 3 MB
    /// response of 50,000 outputs took minutes (the body limit is 1 GiB).
    #[test]
    fn many_outputs_are_read_in_linear_time() {
        let n = 200_000;
        let outputs: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("o{i}"), "datatype": "BOOL", "shape": [0], "data": []}))
            .collect();
        let body = serde_json::to_vec(&json!({ "outputs": outputs })).unwrap();
        let read = crate::formats::test_util::within(60, move || response(&body, None).unwrap());
        assert_eq!((read.len(), read[n - 1].0.as_str()), (n, "o199999"));
    }
}
