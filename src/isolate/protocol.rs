//! The byte protocol between parity and a worker process: length-prefixed frames on
//! the worker's stdin/stdout, tensors as raw little-endian bytes (no temporary files,
//! nothing another process could read). Both ends are the same binary, so the format
//! needs no versioning; it still checks every length, so a truncated stream (a worker
//! that died mid-write) is an error, never a panic or a huge allocation.

use crate::backend::BackendError;
use crate::tensor::{checked_nbytes, DType, Tensor};
use std::io::{self, Read, Write};

/// Worker → parent: the model is loaded.
const LOADED: u8 = b'L';
/// Parent → worker: run these inputs.
const RUN: u8 = b'R';
/// Worker → parent: the outputs of a run.
const OUTPUTS: u8 = b'O';
/// Worker → parent: the engine refused (load or run), with its message.
const FAILED: u8 = b'E';

/// The largest rank a tensor in a frame may have (ONNX tensors stay far below).
const MAX_RANK: usize = 64;
/// The longest name or message in a frame.
const MAX_TEXT: usize = 1 << 20;

/// What the worker says back: loaded, outputs of a run, or the engine's error.
#[derive(Debug)]
pub enum Reply {
    /// The session is ready.
    Loaded,
    /// Named outputs of one run, in the session's output order.
    Outputs(Vec<(String, Tensor)>),
    /// The engine refused the model or the inputs (a clean error, not a crash).
    Failed(BackendError),
}

/// Writes the "loaded" reply.
pub fn write_loaded(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[LOADED])?;
    w.flush()
}

/// Writes an engine error.
pub fn write_failed(w: &mut impl Write, e: &BackendError) -> io::Result<()> {
    w.write_all(&[FAILED])?;
    write_text(w, &e.message)?;
    write_text(w, e.op.as_deref().unwrap_or(""))?;
    w.flush()
}

/// Writes the outputs of a run.
pub fn write_outputs(w: &mut impl Write, outputs: &[(String, Tensor)]) -> io::Result<()> {
    w.write_all(&[OUTPUTS])?;
    w.write_all(&(outputs.len() as u32).to_le_bytes())?;
    for (name, t) in outputs {
        write_text(w, name)?;
        write_tensor(w, t)?;
    }
    w.flush()
}

/// Writes a run request.
pub fn write_run(w: &mut impl Write, inputs: &[Tensor]) -> io::Result<()> {
    w.write_all(&[RUN])?;
    w.write_all(&(inputs.len() as u32).to_le_bytes())?;
    for t in inputs {
        write_tensor(w, t)?;
    }
    w.flush()
}

/// Reads a run request; `None` at a clean end of stream (the parent closed stdin).
pub fn read_run(r: &mut impl Read) -> io::Result<Option<Vec<Tensor>>> {
    let mut tag = [0u8; 1];
    if r.read(&mut tag)? == 0 {
        return Ok(None);
    }
    if tag[0] != RUN {
        return Err(bad(format!("unexpected frame tag {}", tag[0])));
    }
    let n = read_u32(r)? as usize;
    let mut inputs = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        inputs.push(read_tensor(r)?);
    }
    Ok(Some(inputs))
}

/// Reads one reply of the worker.
pub fn read_reply(r: &mut impl Read) -> io::Result<Reply> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    match tag[0] {
        LOADED => Ok(Reply::Loaded),
        FAILED => {
            let message = read_text(r)?;
            let op = read_text(r)?;
            Ok(Reply::Failed(BackendError {
                message,
                op: (!op.is_empty()).then_some(op),
            }))
        }
        OUTPUTS => {
            let n = read_u32(r)? as usize;
            let mut outputs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let name = read_text(r)?;
                outputs.push((name, read_tensor(r)?));
            }
            Ok(Reply::Outputs(outputs))
        }
        t => Err(bad(format!("unexpected frame tag {t}"))),
    }
}

fn write_text(w: &mut impl Write, s: &str) -> io::Result<()> {
    let s = &s.as_bytes()[..s.len().min(MAX_TEXT)];
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s)
}

fn read_text(r: &mut impl Read) -> io::Result<String> {
    let len = read_u32(r)? as usize;
    if len > MAX_TEXT {
        return Err(bad(format!("a text of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn write_tensor(w: &mut impl Write, t: &Tensor) -> io::Result<()> {
    w.write_all(&t.dtype().onnx_code().to_le_bytes())?;
    w.write_all(&(t.shape().len() as u32).to_le_bytes())?;
    for &d in t.shape() {
        w.write_all(&(d as u64).to_le_bytes())?;
    }
    w.write_all(t.bytes())
}

fn read_tensor(r: &mut impl Read) -> io::Result<Tensor> {
    let mut code = [0u8; 4];
    r.read_exact(&mut code)?;
    let code = i32::from_le_bytes(code);
    let dtype =
        DType::from_onnx_code(code).ok_or_else(|| bad(format!("unknown dtype code {code}")))?;
    let rank = read_u32(r)? as usize;
    if rank > MAX_RANK {
        return Err(bad(format!("a tensor of rank {rank}")));
    }
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        let mut d = [0u8; 8];
        r.read_exact(&mut d)?;
        let d = usize::try_from(u64::from_le_bytes(d)).map_err(|_| bad("a dim too large"))?;
        shape.push(d);
    }
    let len = checked_nbytes(dtype, &shape)
        .ok_or_else(|| bad(format!("a tensor of shape {shape:?} overflows")))?;
    // Read through `take` so a lying length cannot make us allocate more than arrives.
    let mut bytes = Vec::new();
    r.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended inside a tensor",
        ));
    }
    Tensor::from_bytes(dtype, shape, bytes).map_err(|e| bad(e.to_string()))
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let a = Tensor::from_vec(vec![2, 3], vec![1.0f32, f32::NAN, -0.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Tensor::from_bools(vec![0], &[]).unwrap();
        let mut buf = Vec::new();
        write_run(&mut buf, &[a.clone(), b.clone()]).unwrap();
        let got = read_run(&mut buf.as_slice()).unwrap().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].shape(), &[2, 3]);
        assert_eq!(got[0].bytes(), a.bytes());
        assert_eq!(got[1].dtype(), DType::Bool);
        assert_eq!(got[1].shape(), &[0]);

        let mut buf = Vec::new();
        write_outputs(&mut buf, &[("y".to_string(), a.clone())]).unwrap();
        match read_reply(&mut buf.as_slice()).unwrap() {
            Reply::Outputs(o) => {
                assert_eq!(o[0].0, "y");
                assert_eq!(o[0].1.bytes(), a.bytes());
            }
            other => panic!("{other:?}"),
        }
        let mut buf = Vec::new();
        write_failed(&mut buf, &BackendError::unsupported_op("Foo", "no")).unwrap();
        match read_reply(&mut buf.as_slice()).unwrap() {
            Reply::Failed(e) => {
                assert_eq!(e.op.as_deref(), Some("Foo"));
                assert_eq!(e.message, "unsupported op Foo: no");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_frames_are_errors() {
        let a = Tensor::from_vec(vec![4], vec![1.0f64; 4]).unwrap();
        let mut buf = Vec::new();
        write_outputs(&mut buf, &[("y".to_string(), a)]).unwrap();
        for cut in 0..buf.len() {
            assert!(read_reply(&mut &buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_run(&mut &[][..]).unwrap().is_none());
        assert!(read_run(&mut &[b'X'][..]).is_err());
    }
}
