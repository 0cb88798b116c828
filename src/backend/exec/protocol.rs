//! The words of the `parity-exec/1` line protocol (docs/exec-backend.md), without any
//! process around them: the runner's handshake line, parity's request lines and the
//! runner's reply lines. Pure functions, so every malformed line has a unit test.

use serde::Deserialize;
use serde_json::json;
use std::path::Path;

/// The protocol name and version a runner's first line starts with.
pub const PROTOCOL: &str = "parity-exec/1";

/// Longest excerpt of a runner's line quoted back in an error message.
const EXCERPT: usize = 120;

/// What a runner says about itself in its handshake line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The runtime, e.g. `onnxruntime` or `tensorrt`.
    pub name: String,
    /// The runtime's version.
    pub version: String,
    /// The device that runs the model, e.g. `cpu` or `cuda:0`.
    pub device: String,
}

/// Parses the runner's first line: `parity-exec/1 {"name":…,"version":…,"device":…}`.
pub fn parse_hello(line: &str) -> Result<Hello, String> {
    let Some(rest) = line.strip_prefix(PROTOCOL) else {
        return Err(format!(
            "the runner's first line is `{}`, not a `{PROTOCOL} {{...}}` handshake",
            excerpt(line)
        ));
    };
    let hello: Hello = serde_json::from_str(rest.trim())
        .map_err(|e| format!("the runner's handshake `{}` is invalid: {e}", excerpt(line)))?;
    for (field, value) in [
        ("name", &hello.name),
        ("version", &hello.version),
        ("device", &hello.device),
    ] {
        if value.trim().is_empty() || value.contains(['\n', '\r']) {
            return Err(format!(
                "the runner's handshake has an empty or multi-line `{field}`"
            ));
        }
    }
    Ok(hello)
}

/// The `load` request: the model file and the intra-op threads (`null`: the runtime's choice).
pub fn load_request(model: &Path, threads: Option<usize>) -> String {
    format!(
        "load {}\n",
        json!({ "model": model.to_string_lossy(), "threads": threads })
    )
}

/// The `run` request: where parity wrote the inputs and where the runner writes the outputs.
pub fn run_request(inputs: &Path, outputs: &Path) -> String {
    format!(
        "run {}\n",
        json!({ "inputs": inputs.to_string_lossy(), "outputs": outputs.to_string_lossy() })
    )
}

/// A well-formed reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ok`: the request was done.
    Ok,
    /// `error MESSAGE`: the runner could not do it (that case's error); MESSAGE may be empty.
    Error(String),
}

/// Reads a reply line: `ok`, or `error MESSAGE`. Anything else breaks the protocol and
/// comes back as `Err`, quoting what was sent.
pub fn parse_reply(line: &str, request: &str) -> Result<Reply, String> {
    match line.split_once(' ') {
        None if line == "ok" => Ok(Reply::Ok),
        None if line == "error" => Ok(Reply::Error(String::new())),
        Some(("error", message)) => Ok(Reply::Error(message.trim().to_string())),
        _ => Err(format!(
            "the runner answered `{request}` with `{}`, not `ok` or `error MESSAGE` ({PROTOCOL})",
            excerpt(line)
        )),
    }
}

/// A line cut to a readable length, on a character boundary.
pub fn excerpt(line: &str) -> String {
    cut(line, EXCERPT)
}

/// Reports quote at most this many characters of a runner's `error MESSAGE`.
const MESSAGE_CHARS: usize = 1000;

/// A runner's error message as a report quotes it: control characters (a stray `\r`)
/// as spaces so it stays one line, cut to [`MESSAGE_CHARS`] characters.
pub fn message_excerpt(message: &str) -> String {
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(&clean, MESSAGE_CHARS)
}

/// `s` cut to `chars` characters on a character boundary, `…` marking a cut.
fn cut(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_is_the_protocol_then_json() {
        let hello = parse_hello(
            r#"parity-exec/1 {"name": "onnxruntime", "version": "1.31.1", "device": "cpu"}"#,
        )
        .unwrap();
        assert_eq!(
            hello,
            Hello {
                name: "onnxruntime".into(),
                version: "1.31.1".into(),
                device: "cpu".into()
            }
        );
    }

    #[test]
    fn bad_handshakes_say_what_was_sent() {
        let err = parse_hello("Traceback (most recent call last):").unwrap_err();
        assert_eq!(
            err,
            "the runner's first line is `Traceback (most recent call last):`, not a `parity-exec/1 {...}` handshake"
        );
        let err = parse_hello(r#"parity-exec/1 {"name": "x", "version": "1"}"#).unwrap_err();
        assert!(err.contains("missing field `device`"), "{err}");
        let err = parse_hello(
            r#"parity-exec/1 {"name": "x", "version": "1", "device": "cpu", "extra": 1}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown field `extra`"), "{err}");
        let err = parse_hello(r#"parity-exec/1 {"name": " ", "version": "1", "device": "cpu"}"#)
            .unwrap_err();
        assert_eq!(
            err,
            "the runner's handshake has an empty or multi-line `name`"
        );
        assert!(parse_hello("parity-exec/2 {}").is_err());
    }

    #[test]
    fn requests_are_one_json_line() {
        let load = load_request(Path::new("/m dir/model.onnx"), Some(2));
        assert_eq!(
            load,
            "load {\"model\":\"/m dir/model.onnx\",\"threads\":2}\n"
        );
        assert_eq!(
            load_request(Path::new("m.onnx"), None),
            "load {\"model\":\"m.onnx\",\"threads\":null}\n"
        );
        let run = run_request(Path::new("/t/in.npz"), Path::new("/t/out.npz"));
        assert_eq!(
            run,
            "run {\"inputs\":\"/t/in.npz\",\"outputs\":\"/t/out.npz\"}\n"
        );
        assert_eq!(run.matches('\n').count(), 1);
    }

    #[test]
    fn replies_are_ok_or_error() {
        assert_eq!(parse_reply("ok", "run"), Ok(Reply::Ok));
        assert_eq!(
            parse_reply("error shape mismatch in Gemm ", "run"),
            Ok(Reply::Error("shape mismatch in Gemm".into()))
        );
        assert_eq!(
            parse_reply("error", "load"),
            Ok(Reply::Error(String::new()))
        );
        let err = parse_reply("okay", "run").unwrap_err();
        assert_eq!(
            err,
            "the runner answered `run` with `okay`, not `ok` or `error MESSAGE` (parity-exec/1)"
        );
        assert!(parse_reply("ok extra", "run").is_err());
        assert!(parse_reply("errors 1", "run").is_err());
        assert!(parse_reply("", "run").is_err());
    }

    #[test]
    fn excerpts_cut_long_lines_on_char_boundaries() {
        let long = "é".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
        assert_eq!(message_excerpt("no kernel\rfor Gemm"), "no kernel for Gemm");
        let message = message_excerpt(&"z".repeat(70_000));
        assert_eq!(message.chars().count(), MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    /// The fuzzer's kept inputs (fuzz/corpus/exec_protocol) read as lines or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (_, bytes) in crate::formats::test_util::fuzz_corpus("exec_protocol") {
            for line in String::from_utf8_lossy(&bytes).lines() {
                let _ = (parse_hello(line), excerpt(line));
                if let Ok(Reply::Error(message)) = parse_reply(line, "run") {
                    let _ = message_excerpt(&message);
                }
            }
        }
    }
}
