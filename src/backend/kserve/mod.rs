//! `kserve+http://HOST:PORT/v2/models/NAME[/versions/V][?timeout=S&binary=BYTES]`: a
//! deployed model behind the Open Inference Protocol (KServe v2 REST: Triton, KServe,
//! MLServer, OpenVINO Model Server) checked like any local backend.
//!
//! The probe asks the server and the model whether they are ready; loading reads the
//! model's metadata (or, when the server declares no tensors, the suite's `model.onnx`);
//! each run is one `POST .../infer` whose response is read strictly
//! ([`protocol::response`]). Failures of the exchange (refused, reset, timed out, HTTP
//! 4xx/5xx, a response that is not a consistent v2 message) are errors of that case;
//! a consistent response with the wrong shape, datatype or a missing output comes back
//! as it was sent, so the comparison fails it. See docs/remote.md.

mod http;
pub mod protocol;

use super::{
    check_inputs, Availability, Backend, BackendError, Dim, IoSpec, Knobs, LoadOptions, Session,
};
use crate::tensor::Tensor;
use http::Client;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The URL scheme that selects this backend.
pub const SCHEME: &str = "kserve+http://";

/// Per-request timeout when the URL sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `?binary` without a size: tensors of at least this many bytes travel as binary data.
const DEFAULT_BINARY_FROM: usize = 4096;

/// Refuses a malformed `kserve+http://` name as a usage error (exit 2) saying what is
/// wrong; any other name passes.
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    match name.starts_with(SCHEME) {
        true => KServe::parse(name).map(drop).map_err(crate::Error::Usage),
        false => Ok(()),
    }
}

/// The backend for a `kserve+http://` name; `None` for any other name (or a URL
/// [`check_name`] refuses).
pub fn backend(name: &str) -> Option<Box<dyn Backend>> {
    if !name.starts_with(SCHEME) {
        return None;
    }
    KServe::parse(name)
        .ok()
        .map(|k| Box::new(k) as Box<dyn Backend>)
}

/// One Open Inference Protocol model endpoint, named by its URL.
#[derive(Debug, Clone)]
pub struct KServe {
    url: String,
    authority: String,
    /// `/v2/models/NAME` or `/v2/models/NAME/versions/V`.
    model_path: String,
    timeout: Duration,
    binary_from: Option<usize>,
}

impl KServe {
    /// Parses a `kserve+http://` URL; the message says what is wrong with it.
    pub fn parse(url: &str) -> Result<KServe, String> {
        let bad = |why: &str| {
            format!("backend `{url}`: {why} (expected {SCHEME}HOST:PORT/v2/models/NAME[/versions/V][?timeout=SECONDS&binary[=BYTES]])")
        };
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("not a kserve+http URL"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no model path"))?;
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(bad("HOST:PORT with a port number is required"));
        }
        let parts: Vec<&str> = path.split('/').collect();
        let named = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let ok = match parts.as_slice() {
            ["v2", "models", name] => named(name),
            ["v2", "models", name, "versions", v] => named(name) && named(v),
            _ => false,
        };
        if !ok {
            return Err(bad(
                "the path must be /v2/models/NAME or /v2/models/NAME/versions/V",
            ));
        }
        let mut timeout = DEFAULT_TIMEOUT;
        let mut binary_from = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("timeout", s) => {
                    timeout = s
                        .parse::<f64>()
                        .ok()
                        .filter(|t| *t > 0.0)
                        .and_then(|t| Duration::try_from_secs_f64(t).ok())
                        .ok_or_else(|| {
                            bad(&format!("timeout `{s}` is not a number of seconds > 0"))
                        })?;
                }
                ("binary", "") => binary_from = Some(DEFAULT_BINARY_FROM),
                ("binary", s) => {
                    binary_from = Some(
                        s.parse::<usize>()
                            .map_err(|_| bad(&format!("binary `{s}` is not a byte count")))?,
                    )
                }
                (k, _) => {
                    return Err(bad(&format!(
                        "unknown option `{k}` (known: timeout, binary)"
                    )))
                }
            }
        }
        Ok(KServe {
            url: url.to_string(),
            authority: authority.to_string(),
            model_path: format!("/{path}"),
            timeout,
            binary_from,
        })
    }

    fn client(&self) -> Client {
        Client::new(&self.authority, self.timeout)
    }

    /// `GET path` expecting 200 and a JSON body.
    fn get_json(&self, client: &mut Client, path: &str) -> Result<Value, String> {
        let r = client.request("GET", path, &[], b"")?;
        if r.status != 200 {
            return Err(format!("GET {path}: HTTP {}: {}", r.status, r.excerpt()));
        }
        serde_json::from_slice(&r.body)
            .map_err(|e| format!("GET {path}: not JSON ({e}): {}", r.excerpt()))
    }

    /// Server and model readiness, then the server's name and version.
    fn ready(&self) -> Result<String, String> {
        let mut client = self.client();
        for path in [
            "/v2/health/ready".to_string(),
            format!("{}/ready", self.model_path),
        ] {
            let r = client.request("GET", &path, &[], b"")?;
            if r.status != 200 {
                return Err(format!(
                    "GET {path}: HTTP {} (not ready): {}",
                    r.status,
                    r.excerpt()
                ));
            }
        }
        let server = self.get_json(&mut client, "/v2").unwrap_or(Value::Null);
        let field = |k: &str| {
            server
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let version = format!("{} {}", field("name"), field("version"));
        Ok(match version.trim() {
            "" => "unknown server".to_string(),
            v => v.to_string(),
        })
    }
}

impl Backend for KServe {
    fn name(&self) -> &str {
        &self.url
    }

    fn probe(&self) -> Availability {
        match self.ready() {
            Ok(version) => Availability::Available {
                version,
                device: format!("remote {}", self.authority),
            },
            Err(reason) => Availability::Unavailable { reason },
        }
    }

    fn knobs(&self) -> Knobs {
        // A deployed endpoint: loading connects to the same server-side session, and
        // its threads and graph optimisations are the server's.
        Knobs::default()
    }

    fn load(&self, model: &Path, _: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let mut client = self.client();
        let meta = self
            .get_json(&mut client, &self.model_path)
            .map_err(BackendError::new)?;
        let declared = |key: &str| {
            metadata_specs(meta.get(key))
                .map_err(|e| BackendError::new(format!("GET {}: `{key}`: {e}", self.model_path)))
        };
        let (inputs, outputs) = (declared("inputs")?, declared("outputs")?);
        let local = model
            .is_file()
            .then(|| crate::formats::onnx_model::inspect(model))
            .transpose()
            .map_err(|e| BackendError::new(e.to_string()))?;
        let (inputs, outputs) = match (local, inputs.is_empty() || outputs.is_empty()) {
            // The server declares nothing (MLServer without a declared signature):
            // the model file's schema names the tensors.
            (Some(info), true) => (info.inputs, info.outputs),
            (None, true) => {
                return Err(BackendError::new(format!(
                "GET {} declares no inputs/outputs and there is no model file to learn them from",
                self.model_path
            )))
            }
            (Some(info), false) => {
                same_names("inputs", &inputs, &info.inputs, model)?;
                same_names("outputs", &outputs, &info.outputs, model)?;
                (inputs, outputs)
            }
            (None, false) => (inputs, outputs),
        };
        Ok(Box::new(Remote {
            client,
            infer_path: format!("{}/infer", self.model_path),
            inputs,
            outputs,
            binary_from: self.binary_from,
        }))
    }
}

/// The tensors a metadata response declares (`name`, `datatype`, `shape` with -1 for a
/// dynamic dim); an absent list is empty.
fn metadata_specs(list: Option<&Value>) -> Result<Vec<IoSpec>, String> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or("not a list")?;
    list.iter()
        .map(|t| {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or("an entry has no name")?;
            let datatype = t.get("datatype").and_then(Value::as_str).unwrap_or("");
            let dims = t.get("shape").and_then(Value::as_array).map(|dims| {
                dims.iter()
                    .map(|d| match d.as_u64() {
                        Some(n) => Dim::Fixed(n as usize),
                        None => Dim::Unknown,
                    })
                    .collect()
            });
            Ok(IoSpec {
                name: name.to_string(),
                dtype: protocol::dtype_of(datatype),
                dims,
            })
        })
        .collect()
}

/// The server's model and the local model file must name the same tensors: otherwise
/// the endpoint serves another model than the suite's.
fn same_names(
    what: &str,
    server: &[IoSpec],
    local: &[IoSpec],
    model: &Path,
) -> Result<(), BackendError> {
    let names = |s: &[IoSpec]| {
        let mut n: Vec<String> = s.iter().map(|s| s.name.clone()).collect();
        n.sort();
        n
    };
    if names(server) != names(local) {
        return Err(BackendError::new(format!(
            "the server's model declares {what} [{}], {} declares [{}]",
            names(server).join(", "),
            model.display(),
            names(local).join(", ")
        )));
    }
    Ok(())
}

/// A loaded remote model: its own connection, so bench workers never share one.
struct Remote {
    client: Client,
    infer_path: String,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    binary_from: Option<usize>,
}

impl Session for Remote {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        check_inputs(&self.inputs, inputs)?;
        let named: Vec<(&str, &Tensor)> = self
            .inputs
            .iter()
            .map(|s| s.name.as_str())
            .zip(inputs)
            .collect();
        let wanted: Vec<&str> = self.outputs.iter().map(|s| s.name.as_str()).collect();
        let req = protocol::request(&named, &wanted, self.binary_from);
        let mut headers = vec![(
            "Content-Type",
            if req.json_len.is_some() {
                "application/octet-stream"
            } else {
                "application/json"
            }
            .to_string(),
        )];
        if let Some(n) = req.json_len {
            headers.push(("Inference-Header-Content-Length", n.to_string()));
        }
        let r = self
            .client
            .request("POST", &self.infer_path, &headers, &req.body)
            .map_err(BackendError::new)?;
        if r.status != 200 {
            return Err(BackendError::new(format!(
                "POST {}: HTTP {}: {}",
                self.infer_path,
                r.status,
                r.excerpt()
            )));
        }
        let json_len = match r.header("inference-header-content-length") {
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                BackendError::new(format!(
                    "POST {}: bad Inference-Header-Content-Length `{v}`",
                    self.infer_path
                ))
            })?),
            None => None,
        };
        let sent = protocol::response(&r.body, json_len)
            .map_err(|e| BackendError::new(format!("POST {}: {e}", self.infer_path)))?;
        if let Some((stray, _)) = sent.iter().find(|(n, _)| !wanted.contains(&n.as_str())) {
            return Err(BackendError::new(format!(
                "POST {}: the server sent output `{stray}`, which the model does not declare (declared: {})",
                self.infer_path,
                wanted.join(", ")
            )));
        }
        // The model's order; an output the server left out is reported missing by the
        // comparison.
        let mut sent = sent;
        let mut ordered = Vec::with_capacity(sent.len());
        for name in wanted {
            if let Some(i) = sent.iter().position(|(n, _)| n == name) {
                ordered.push(sent.swap_remove(i));
            }
        }
        Ok(ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_what_is_wrong() {
        let k = KServe::parse("kserve+http://127.0.0.1:8080/v2/models/mlp").unwrap();
        assert_eq!(
            (k.authority.as_str(), k.model_path.as_str()),
            ("127.0.0.1:8080", "/v2/models/mlp")
        );
        assert_eq!((k.timeout, k.binary_from), (DEFAULT_TIMEOUT, None));
        let k =
            KServe::parse("kserve+http://h:1/v2/models/m/versions/2?timeout=0.5&binary").unwrap();
        assert_eq!(k.model_path, "/v2/models/m/versions/2");
        assert_eq!(
            (k.timeout, k.binary_from),
            (Duration::from_millis(500), Some(4096))
        );
        assert_eq!(
            KServe::parse("kserve+http://h:1/v2/models/m?binary=0")
                .unwrap()
                .binary_from,
            Some(0)
        );
        for (url, why) in [
            (
                "kserve+http://h/v2/models/m",
                "HOST:PORT with a port number is required",
            ),
            (
                "kserve+http://h:x/v2/models/m",
                "HOST:PORT with a port number is required",
            ),
            ("kserve+http://h:1", "no model path"),
            ("kserve+http://h:1/v1/models/m", "the path must be"),
            ("kserve+http://h:1/v2/models/", "the path must be"),
            (
                "kserve+http://h:1/v2/models/m?timeout=-1",
                "timeout `-1` is not",
            ),
            (
                "kserve+http://h:1/v2/models/m?retries=2",
                "unknown option `retries`",
            ),
        ] {
            let e = KServe::parse(url).unwrap_err();
            assert!(e.starts_with(&format!("backend `{url}`: {why}")), "{e}");
        }
    }

    #[test]
    fn metadata_dims_and_datatypes() {
        let v: Value =
            serde_json::from_str(r#"[{"name":"x","datatype":"FP32","shape":[-1,4]}]"#).unwrap();
        let specs = metadata_specs(Some(&v)).unwrap();
        assert_eq!(specs[0].dtype, Some(crate::tensor::DType::F32));
        assert_eq!(specs[0].dims, Some(vec![Dim::Unknown, Dim::Fixed(4)]));
        assert!(metadata_specs(None).unwrap().is_empty());
    }
}
